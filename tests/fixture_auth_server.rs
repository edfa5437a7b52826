//! The shared OAuth authorization server fixture ([`support::TestAs`]) works: authorization
//! code with PKCE, refresh rotation, client credentials and injected token-endpoint faults.

mod support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::*;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn post_form(url: &str, form: Vec<(&'static str, String)>) -> reqwest::Response {
    client().post(url).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn fixture_as_runs_authorization_code_with_pkce_and_rotates_refresh_tokens() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let verifier = "a-verifier-that-is-long-enough-for-pkce-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let redirect = "http://127.0.0.1:9/oauth/callback";
    let mut authorize = url::Url::parse(&format!("{}/authorize", up.as_url)).unwrap();
    authorize.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", "public-app"),
        ("redirect_uri", redirect),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", "st"),
        ("resource", &up.mcp_url),
    ]);
    let resp = client().get(authorize).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let back = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st");
    assert_eq!(q["iss"], up.as_url);
    let token_url = up.auth_server.token_url();
    let token = |form: Vec<(&'static str, String)>| post_form(&token_url, form);
    let wrong = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", q["code"].clone()),
        ("client_id", "public-app".into()),
        ("redirect_uri", redirect.into()),
        ("code_verifier", "wrong".into()),
    ])
    .await;
    assert_eq!(
        wrong.status(),
        400,
        "a wrong verifier fails (and burns the code)"
    );
    // A fresh code, redeemed properly.
    let mut again = url::Url::parse(&format!("{}/authorize", up.as_url)).unwrap();
    again.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", "public-app"),
        ("redirect_uri", redirect),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let loc = client().get(again).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let code = url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let ok: Value = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code),
        ("client_id", "public-app".into()),
        ("redirect_uri", redirect.into()),
        ("code_verifier", verifier.into()),
    ])
    .await
    .json()
    .await
    .unwrap();
    assert!(up
        .oauth()
        .validate(ok["access_token"].as_str().unwrap())
        .is_some());
    let rt = ok["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: String| {
        post_form(
            &token_url,
            vec![
                ("grant_type", "refresh_token".into()),
                ("refresh_token", rt),
                ("client_id", "public-app".into()),
            ],
        )
    };
    let rotated: Value = refresh(rt.clone()).await.json().await.unwrap();
    assert_ne!(rotated["refresh_token"], json!(rt));
    assert_eq!(
        refresh(rt).await.status(),
        400,
        "reuse of a rotated refresh token is invalid_grant"
    );
    up.oauth().revoke_all();
    let revoked = refresh(rotated["refresh_token"].as_str().unwrap().into()).await;
    assert_eq!(
        revoked.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    assert!(up
        .oauth()
        .validate(ok["access_token"].as_str().unwrap())
        .is_none());
    assert_eq!(count(&up.oauth().counters.token_refresh), 3);
}

#[tokio::test]
async fn fixture_as_injects_token_endpoint_faults() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    up.oauth().set_fault(TokenFault::Html);
    let resp = client()
        .post(up.auth_server.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "m2m-client"),
            ("client_secret", "m2m-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/html");
    up.oauth().set_fault(TokenFault::None);
    let wrong = client()
        .post(up.auth_server.token_url())
        .basic_auth("m2m-client", Some("nope"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    up.auth_server.stop();
    let down = client()
        .post(up.auth_server.token_url())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await;
    assert!(down.is_err(), "a stopped AS refuses connections");
}

/// One authorization code from `as_url` for the Entra fixture's client, with `extra` parameters.
async fn entra_code(as_url: &str, extra: &[(&str, &str)], verifier: &str) -> url::Url {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut authorize = url::Url::parse(&format!("{as_url}/authorize")).unwrap();
    authorize.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", providers::ENTRA_CLIENT_ID),
        ("redirect_uri", "http://127.0.0.1:9/oauth/callback"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    authorize.query_pairs_mut().extend_pairs(extra);
    let resp = client().get(authorize).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap()
}

#[tokio::test]
async fn the_entra_shaped_as_hides_pkce_refuses_resource_and_refreshes_only_offline_access() {
    let up = providers::entra().await;
    let meta: Value = reqwest::get(format!("{}/.well-known/openid-configuration", up.as_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(meta.get("code_challenge_methods_supported").is_none());
    assert!(meta.get("registration_endpoint").is_none());

    let verifier = "a-verifier-that-is-long-enough-for-pkce-0123456789";
    let refused = entra_code(&up.as_url, &[("resource", &up.mcp_url)], verifier).await;
    let q: std::collections::HashMap<_, _> = refused.query_pairs().into_owned().collect();
    assert_eq!(q["error"], "invalid_target");
    assert!(
        q["error_description"].contains("AADSTS901002") && q["error_description"].contains("\r\n")
    );

    let token_url = up.auth_server.token_url();
    for (scope, refresh) in [
        (providers::ENTRA_SCOPE.to_string(), false),
        (format!("{} offline_access", providers::ENTRA_SCOPE), true),
    ] {
        let back = entra_code(&up.as_url, &[("scope", &scope)], verifier).await;
        let code = back
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code),
            ("client_id", providers::ENTRA_CLIENT_ID.into()),
            ("redirect_uri", "http://127.0.0.1:9/oauth/callback".into()),
            ("code_verifier", verifier.into()),
        ];
        let with_resource = [form.clone(), vec![("resource", up.mcp_url.clone())]].concat();
        let r = post_form(&token_url, with_resource).await;
        assert_eq!(r.status(), 400);
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_target");
        // The code was not spent by the refused request.
        let body: Value = post_form(&token_url, form).await.json().await.unwrap();
        assert!(body["access_token"].is_string(), "{body}");
        assert_eq!(
            body.get("refresh_token").is_some(),
            refresh,
            "scope {scope}: {body}"
        );
    }
}
