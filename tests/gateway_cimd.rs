//! Client ID metadata documents: a client whose `client_id` is the URL of its metadata is
//! fetched (URL, size and time guards), checked, shown on the consent page, and gets tokens.

mod support;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use support::*;

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "http://127.0.0.1:50007/callback";

/// Serves `/good.json` (a valid document for its own URL), `/liar.json` (claims another
/// client_id) and `/huge.json` (over the size cap). Returns the base URL.
async fn document_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let good = json!({"client_id": format!("{base}/good.json"), "client_name": "Metadata Client", "redirect_uris": [REDIRECT]});
    let liar = json!({"client_id": "https://someone-else.example/client.json", "client_name": "Liar", "redirect_uris": [REDIRECT]});
    let huge = json!({"client_id": format!("{base}/huge.json"), "client_name": "x".repeat(100_000), "redirect_uris": [REDIRECT]});
    let app = Router::new()
        .route("/good.json", get(move || async move { Json(good) }))
        .route("/liar.json", get(move || async move { Json(liar) }))
        .route("/huge.json", get(move || async move { Json(huge) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn authorize(b: &TestBroker, client_id: &str) -> String {
    let mut url = url::Url::parse(&format!("{}/authorize", b.base_url)).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "s");
    url.to_string()
}

#[tokio::test]
async fn a_client_known_by_its_metadata_document_is_fetched_shown_and_authorized() {
    let docs = document_server().await;
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"demo": {"url": up.mcp_url}}})).await;
    let client_id = format!("{docs}/good.json");
    let page = http().get(authorize(&b, &client_id)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Metadata Client") && html.contains(&client_id),
        "the page names the client and its document URL"
    );
    let r = submit_consent(&b.base_url, &html, "approve", &[]).await;
    let location = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let tokens: Value = http()
        .post(format!("{}/token", b.base_url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(tokens["access_token"].is_string(), "{tokens}");
}

#[tokio::test]
async fn metadata_documents_that_lie_or_are_too_large_or_unreachable_are_refused() {
    let docs = document_server().await;
    let b = TestBroker::start(json!({"mcp_servers": {}})).await;
    for client_id in [
        format!("{docs}/liar.json"),
        format!("{docs}/huge.json"),
        format!("{docs}/missing.json"),
        "http://evil.example/client.json".to_string(),
    ] {
        let r = http().get(authorize(&b, &client_id)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{client_id}");
        assert!(
            r.headers().get("location").is_none(),
            "never redirected for an unverified client"
        );
    }
}
