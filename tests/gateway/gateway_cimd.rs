//! Client ID metadata documents: a client whose `client_id` is the URL of its metadata is
//! fetched (URL, size and time guards), checked, shown on the consent page, and gets tokens.
//! Its errors before consent are a page, never a redirect, and documents are fetched only from
//! https URLs off loopback. Tests serve documents over plain http on 127.0.0.1 (no TLS server
//! here), which only the issuer's explicit test-only allowance admits.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use support::*;

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "http://127.0.0.1:50007/callback";

/// Serves `/good.json` (a valid document for its own URL), `/liar.json` (claims another
/// client_id) and `/huge.json` (over the size cap), counting requests. Returns the base URL.
async fn document_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let good = json!({"client_id": format!("{base}/good.json"), "client_name": "Metadata Client", "redirect_uris": [REDIRECT]});
    let liar = json!({"client_id": "https://someone-else.example/client.json", "client_name": "Liar", "redirect_uris": [REDIRECT]});
    let huge = json!({"client_id": format!("{base}/huge.json"), "client_name": "x".repeat(100_000), "redirect_uris": [REDIRECT]});
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new()
        .route("/good.json", get(move || async move { Json(good) }))
        .route("/liar.json", get(move || async move { Json(liar) }))
        .route("/huge.json", get(move || async move { Json(huge) }))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                counted.fetch_add(1, Ordering::SeqCst);
                next.run(req)
            },
        ));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hits)
}

/// A broker whose issuer admits plain-http loopback documents (the test-only allowance).
async fn broker_for_local_documents(config: Value) -> TestBroker {
    let b = TestBroker::start(config).await;
    b.broker
        .issuer()
        .allow_plain_loopback_metadata_documents_for_tests();
    b
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn authorize(b: &TestBroker, client_id: &str) -> String {
    authorize_with(b, client_id, &[])
}

/// `/authorize` for `client_id`, with `changes` replacing (or, with an empty value, removing)
/// the well-formed request's parameters.
fn authorize_with(b: &TestBroker, client_id: &str, changes: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&format!("{}/authorize", b.base_url)).unwrap();
    let base = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "s"),
    ];
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in base {
            let v = changes.iter().find(|(c, _)| *c == k).map_or(v, |(_, v)| v);
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        for (k, v) in changes
            .iter()
            .filter(|(c, _)| !base.iter().any(|(b, _)| b == c))
        {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

#[tokio::test]
async fn a_client_known_by_its_metadata_document_is_fetched_shown_and_authorized() {
    let (docs, _) = document_server().await;
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = broker_for_local_documents(json!({"mcp_servers": {"demo": {"url": up.mcp_url}}})).await;
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
    let (docs, _) = document_server().await;
    let b = broker_for_local_documents(json!({"mcp_servers": {}})).await;
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

#[tokio::test]
async fn errors_before_consent_for_a_metadata_document_client_are_a_page_never_a_redirect() {
    let (docs, _) = document_server().await;
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = broker_for_local_documents(json!({"mcp_servers": {"demo": {"url": up.mcp_url}}})).await;
    let client_id = format!("{docs}/good.json");
    let broken = [
        ("response_type", "token"),
        ("code_challenge", ""),
        ("code_challenge_method", "plain"),
        ("code_challenge", "short"),
        ("resource", "https://elsewhere.example/mcp"),
    ];
    for change in broken {
        let r = http()
            .get(authorize_with(&b, &client_id, &[change]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{change:?}");
        assert!(
            r.headers().get("location").is_none(),
            "{change:?} redirected"
        );
        let page = r.text().await.unwrap();
        assert!(
            page.contains("<html") || page.contains("<!DOCTYPE"),
            "{page}"
        );
    }
    // A registered client keeps the RFC 6749 §4.1.2.1 error redirect.
    let registered: Value = http()
        .post(format!("{}/register", b.base_url))
        .json(&json!({"client_name": "local", "redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let registered = registered["client_id"].as_str().unwrap();
    let r = http()
        .get(authorize_with(
            &b,
            registered,
            &[("response_type", "token")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT) && location.contains("unsupported_response_type"));
}

#[tokio::test]
async fn metadata_documents_are_fetched_only_from_https_urls_off_loopback() {
    let (docs, hits) = document_server().await;
    let b = TestBroker::start(json!({"mcp_servers": {}})).await;
    let port = docs.rsplit(':').next().unwrap();
    for client_id in [
        format!("{docs}/good.json"),
        format!("https://127.0.0.1:{port}/good.json"),
        format!("https://localhost:{port}/good.json"),
        format!("https://[::1]:{port}/good.json"),
        format!("https://[::ffff:127.0.0.1]:{port}/good.json"),
        format!("https://2130706433:{port}/good.json"),
        "https://169.254.169.254/latest/meta-data/x.json".to_string(),
        "https://100.100.100.200/x.json".to_string(),
    ] {
        let r = http().get(authorize(&b, &client_id)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{client_id}");
        assert!(r.headers().get("location").is_none(), "{client_id}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no document was fetched");
}
