//! The broker as an OAuth client of a real upstream + AS on 127.0.0.1: discovery, DCR,
//! authorization code + PKCE through the replaceable opener, the callback page, the issuer and
//! PKCE checks, sign-out with revocation. What happens to the token afterwards is in
//! `upstream_token_lifecycle.rs`.

use crate::support;

use std::sync::{Arc, Mutex};

use mcp_auth_broker::config::ServerConfig;
use mcp_auth_broker::events::Event;
use mcp_auth_broker::opener::Opener;
use mcp_auth_broker::upstream::{CallbackQuery, FailureKind, Flow};
use serde_json::json;
use support::*;
use url::Url;

#[tokio::test]
async fn what_a_sign_in_leaves_on_disk_is_owner_only() {
    let (_up, broker, _server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    broker.sign_in("demo").await;
    broker
        .broker
        .issuer()
        .create_api_key("script", None)
        .unwrap();
    let data = broker.dir.path().join("data");
    let files = assert_owner_only(&data);
    for expected in ["upstream/demo.json", "issuer.json", "admin.token"] {
        assert!(
            files.contains(&data.join(expected)),
            "{expected}: {files:?}"
        );
    }
    // A config written into a folder that did not exist: the folder and the file too.
    let nested = broker.dir.path().join("new/folder/config.json");
    let raw = mcp_auth_broker::config::file::read(&broker.config_path)
        .unwrap()
        .raw;
    mcp_auth_broker::config::file::write(&nested, &raw).unwrap();
    assert_eq!(
        assert_owner_only(&broker.dir.path().join("new")),
        vec![nested]
    );
}

#[tokio::test]
async fn sign_in_registers_opens_the_browser_and_stores_an_audience_bound_token() {
    let (up, broker, server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    let mut events = broker.broker.events();
    broker.sign_in("demo").await;

    let followed = tokio::time::timeout(SIGN_IN_WAIT, broker.browser.wait_followed(1))
        .await
        .unwrap();
    let (status, body) = followed[0].outcome.clone().unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("You are signed in to <b>demo</b>"), "{body}");
    let opened = &followed[0].opened;
    let q: std::collections::HashMap<String, String> = opened.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["resource"], up.mcp_url);
    assert_eq!(q["scope"], "mcp:read", "the challenge scope wins");
    assert_eq!(
        q["redirect_uri"],
        format!("{}/oauth/callback", broker.base_url)
    );

    let s = &up.oauth().counters;
    assert_eq!(count(&s.register), 1);
    assert_eq!(count(&s.authorize), 1);
    assert_eq!(count(&s.token_authorization_code), 1);

    let cred = broker.broker.upstream().credential(&server).await.unwrap();
    let token = cred.bearer.expect("a bearer token");
    let issued = up
        .oauth()
        .validate(token.expose())
        .expect("the AS issued this token");
    assert_eq!(issued.resource.as_deref(), Some(up.mcp_url.as_str()));
    let facts = broker.broker.upstream().token_facts(&server.name).await;
    assert!(facts.has_token && facts.has_refresh_token && facts.expires_at.is_some());

    let mut seen = vec![];
    while let Ok(e) = events.try_recv() {
        seen.push(e);
    }
    assert!(
        seen.contains(&Event::SignInFinished {
            server: server.name.clone()
        }),
        "{seen:?}"
    );
    assert!(!format!("{facts:?}").contains(token.expose()));
}

#[tokio::test]
async fn callback_state_is_single_use() {
    let (_up, broker, _server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    broker.sign_in("demo").await;
    let followed = tokio::time::timeout(SIGN_IN_WAIT, broker.browser.wait_followed(1))
        .await
        .unwrap();
    let callback = followed[0].hops.last().unwrap().clone();
    assert_eq!(callback.path(), "/oauth/callback");
    let replay = reqwest::get(callback).await.unwrap();
    assert_eq!(replay.status(), 400);
    assert_eq!(replay.headers()["cache-control"], "no-store");
    assert_eq!(replay.headers()["referrer-policy"], "no-referrer");
    assert!(replay.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let body = replay.text().await.unwrap();
    assert!(body.contains("already used"), "{body}");
    // In a person's words, the raw cause behind Details.
    assert!(
        body.contains("The sign-in did not complete — start it again"),
        "{body}"
    );
    assert!(body.contains("<details>"), "{body}");
}

fn capturing_opener() -> (Opener, Arc<Mutex<Vec<Url>>>) {
    let seen = Arc::new(Mutex::new(vec![]));
    let s = seen.clone();
    (
        Opener::Custom(Arc::new(move |u: Url| s.lock().unwrap().push(u))),
        seen,
    )
}

fn state_of(url: &Url) -> String {
    url.query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn a_response_from_another_issuer_is_discarded_without_acting_on_its_error() {
    let (up, broker, server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    let (opener, seen) = capturing_opener();
    let s = broker
        .broker
        .upstream()
        .sign_in(&server, &opener)
        .await
        .unwrap();
    let state = state_of(&seen.lock().unwrap()[0]);
    assert_eq!(s.authorize_url, seen.lock().unwrap()[0]);
    let q = CallbackQuery {
        state: Some(state.clone()),
        code: Some("x".into()),
        iss: Some("https://evil.example".into()),
        error: Some("access_denied".into()),
        ..Default::default()
    };
    let err = broker.broker.upstream().callback(&q).await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::AuthRejected);
    assert!(
        err.to_string().contains("mix-up") && !err.to_string().contains("access_denied"),
        "{err}"
    );
    assert!(tokio::time::timeout(SIGN_IN_WAIT, s.done)
        .await
        .unwrap()
        .unwrap()
        .is_err());
    // The state is spent: the genuine answer cannot be replayed into it either.
    let q = CallbackQuery {
        state: Some(state),
        code: Some("x".into()),
        iss: Some(up.oauth().issuer.clone()),
        ..Default::default()
    };
    assert!(broker.broker.upstream().callback(&q).await.is_err());
    assert_eq!(count(&up.oauth().counters.token), 0);
}

#[tokio::test]
async fn a_missing_iss_is_refused_when_the_as_promises_it() {
    let (up, broker, server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    let (opener, seen) = capturing_opener();
    broker
        .broker
        .upstream()
        .sign_in(&server, &opener)
        .await
        .unwrap();
    let state = state_of(&seen.lock().unwrap()[0]);
    let q = CallbackQuery {
        state: Some(state),
        code: Some("x".into()),
        ..Default::default()
    };
    let err = broker.broker.upstream().callback(&q).await.unwrap_err();
    assert!(err.to_string().contains("RFC 9207"), "{err}");
    assert_eq!(count(&up.oauth().counters.token), 0);
}

/// An upstream whose protected resource metadata names an authorization server that publishes
/// no metadata but sends RFC 9207 `iss`: the endpoints and client come from the config.
async fn server_naming_an_as_without_metadata() -> (TestUpstream, TestBroker, ServerConfig) {
    std::env::set_var("UPSTREAM_SIGNIN_NO_METADATA_SECRET", "m2m-secret");
    let mut options = UpstreamOptions::oauth();
    options.auth_server.metadata = false;
    options.auth_server.registration = false;
    let up = TestUpstream::start(options).await;
    let entry = json!({
        "url": up.mcp_url, "auth_type": "oauth2", "oauth_flow": "authorization_code",
        "client_id": "m2m-client", "client_secret": "os.environ/UPSTREAM_SIGNIN_NO_METADATA_SECRET",
        "authorization_url": format!("{}/authorize", up.as_url), "token_url": up.auth_server.token_url(),
    });
    let broker = TestBroker::start(json!({ "mcp_servers": { "demo": entry } })).await;
    let server = broker.broker.server("demo").unwrap();
    (up, broker, server)
}

#[tokio::test]
async fn an_as_without_metadata_is_expected_as_the_issuer_of_its_answer() {
    let (up, broker, server) = server_naming_an_as_without_metadata().await;
    assert_ne!(
        Url::parse(&up.as_url).unwrap().origin(),
        Url::parse(&up.mcp_url).unwrap().origin()
    );
    broker.sign_in("demo").await;
    let followed = tokio::time::timeout(SIGN_IN_WAIT, broker.browser.wait_followed(1))
        .await
        .unwrap();
    let callback = followed[0].hops.last().unwrap().clone();
    assert!(
        callback
            .query_pairs()
            .any(|(k, v)| k == "iss" && v == up.as_url),
        "the AS sends its own iss: {callback}"
    );
    assert!(broker
        .issued(server.name.as_str(), up.oauth())
        .await
        .is_some());
}

#[tokio::test]
async fn an_answer_naming_the_mcp_server_as_issuer_is_refused_when_the_as_publishes_no_metadata() {
    let (up, broker, server) = server_naming_an_as_without_metadata().await;
    let (opener, seen) = capturing_opener();
    let s = broker
        .broker
        .upstream()
        .sign_in(&server, &opener)
        .await
        .unwrap();
    let state = state_of(&seen.lock().unwrap()[0]);
    let mcp_origin = Url::parse(&up.mcp_url)
        .unwrap()
        .origin()
        .ascii_serialization();
    let q = CallbackQuery {
        state: Some(state),
        code: Some("x".into()),
        iss: Some(mcp_origin),
        ..Default::default()
    };
    let err = broker.broker.upstream().callback(&q).await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::AuthRejected);
    assert!(err.to_string().contains("mix-up"), "{err}");
    assert!(tokio::time::timeout(SIGN_IN_WAIT, s.done)
        .await
        .unwrap()
        .unwrap()
        .is_err());
    assert_eq!(count(&up.oauth().counters.token), 0);
}

#[tokio::test]
async fn an_as_without_pkce_s256_is_refused_before_the_browser_opens() {
    let mut options = UpstreamOptions::oauth();
    options.auth_server.advertise_pkce = false;
    let (up, broker, server) = demo_server(options, json!({})).await;
    let err = broker
        .broker
        .upstream()
        .sign_in(&server, &broker.browser.opener())
        .await
        .err()
        .expect("refused");
    assert_eq!(err.kind(), FailureKind::Setup);
    assert!(err.to_string().contains("PKCE S256"), "{err}");
    assert!(broker.browser.opened().is_empty());
    assert_eq!(count(&up.oauth().counters.register), 0);
}

#[tokio::test]
async fn sign_out_revokes_and_deletes_even_when_revocation_fails() {
    let (up, broker, server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    let upstream = broker.broker.upstream();
    broker.sign_in("demo").await;
    upstream.sign_out(&server).await.unwrap();
    assert_eq!(
        count(&up.oauth().counters.revoke),
        2,
        "refresh token and access token revoked"
    );
    assert!(!upstream.token_facts(&server.name).await.has_token);
    assert!(
        upstream.credential(&server).await.unwrap().bearer.is_none(),
        "no token is attached after sign-out"
    );

    broker.sign_in("demo").await;
    up.auth_server.stop();
    upstream
        .sign_out(&server)
        .await
        .expect("sign-out succeeds locally with the AS down");
    assert!(!upstream.token_facts(&server.name).await.has_token);
}

#[tokio::test]
async fn github_style_config_is_interactive_even_though_discovery_finds_a_token_url() {
    std::env::set_var("UPSTREAM_SIGNIN_GH_SECRET", "m2m-secret");
    let (up, broker, server) = demo_server(
        UpstreamOptions::oauth(),
        json!({"auth_type": "oauth2", "client_id": "m2m-client", "client_secret": "os.environ/UPSTREAM_SIGNIN_GH_SECRET"}),
    )
    .await;
    let c = broker.broker.upstream().classify(&server).await.unwrap();
    assert_eq!(c.flow, Some(Flow::AuthorizationCode), "{:?}", c.evidence);
    assert!(
        c.evidence
            .iter()
            .any(|e| e.contains("discovery found a token endpoint")),
        "{:?}",
        c.evidence
    );
    let err = broker
        .broker
        .upstream()
        .credential(&server)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::NeedsSignIn);
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 0);
    // Pre-registered client: no DCR, secret sent at the token endpoint.
    broker.sign_in("demo").await;
    assert_eq!(count(&up.oauth().counters.register), 0);
    let q: std::collections::HashMap<String, String> = broker.browser.opened()[0]
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["client_id"], "m2m-client");
}

#[tokio::test]
async fn credential_and_rejection_never_open_a_browser() {
    let (_up, broker, server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    let upstream = broker.broker.upstream();
    assert!(
        upstream.credential(&server).await.unwrap().bearer.is_none(),
        "nothing configured, nothing stored"
    );
    let err = upstream
        .after_rejection(&server, &Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::NeedsSignIn);
    assert!(broker.browser.opened().is_empty());
}

#[tokio::test]
async fn sign_in_asks_for_offline_access_when_the_authorization_server_lists_it() {
    let mut options = UpstreamOptions::oauth();
    options.auth_server.scopes = vec!["mcp:read".into(), "offline_access".into()];
    let (_up, broker, _server) = demo_server(options, json!({})).await;
    broker.sign_in("demo").await;
    let opened = broker.browser.opened();
    let scope = opened[0]
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    assert_eq!(
        scope, "mcp:read offline_access",
        "a refresh token is asked for where the authorization server offers one"
    );
}

fn authorize_query(opened: &Url) -> std::collections::HashMap<String, String> {
    opened.query_pairs().into_owned().collect()
}

#[tokio::test]
async fn registration_carries_the_sign_in_scope_so_a_scope_checked_server_accepts_it() {
    let mut options = UpstreamOptions::oauth();
    options.auth_server.registered_scopes = true;
    options.auth_server.scopes = vec!["mcp:read".into(), "offline_access".into()];
    let (up, broker, server) = demo_server(options, json!({"scopes": ["api/.default"]})).await;
    broker.sign_in("demo").await;
    let asked = authorize_query(&broker.browser.opened()[0])["scope"].clone();
    assert_eq!(
        asked, "mcp:read api/.default offline_access",
        "the challenge scope, extended by the configured scopes and offline_access the AS lists"
    );
    let registered = up.oauth().registrations.lock().unwrap()[0].clone();
    assert_eq!(registered["scope"], asked);
    assert_eq!(
        registered["token_endpoint_auth_method"], "none",
        "a public client where allowed"
    );
    assert!(broker
        .broker
        .upstream()
        .credential(&server)
        .await
        .unwrap()
        .bearer
        .is_some());

    // A wider scope later (a config change here) is not asked with the old client: the
    // broker registers one for it instead of meeting `invalid_scope`.
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&broker.config_path).unwrap()).unwrap();
    config["mcp_servers"]["demo"]["scopes"] = json!(["api/.default", "api/write"]);
    broker.write_config(config).await;
    broker.sign_in("demo").await;
    assert_eq!(count(&up.oauth().counters.register), 2);
    broker.sign_in("demo").await;
    assert_eq!(count(&up.oauth().counters.register), 2, "then reused");
}

#[tokio::test]
async fn a_scope_checked_server_refuses_scopes_a_client_was_not_registered_with() {
    // The fixture's own check, as the MCP SDKs word it: what the broker avoids above.
    let mut options = UpstreamOptions::oauth();
    options.auth_server.registered_scopes = true;
    let up = TestUpstream::start(options).await;
    let reg: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/register", up.as_url))
        .json(&json!({"redirect_uris": ["http://127.0.0.1:1/cb"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/authorize", up.as_url))
        .query(&[
            ("client_id", reg["client_id"].as_str().unwrap()),
            ("redirect_uri", "http://127.0.0.1:1/cb"),
            ("response_type", "code"),
            ("code_challenge", "x"),
            ("code_challenge_method", "S256"),
            ("scope", "mcp:read"),
        ])
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.contains("invalid_scope")
            && location.contains("not+registered+with+scope+mcp%3Aread"),
        "{location}"
    );
}

#[tokio::test]
async fn a_server_that_wants_client_id_next_to_basic_signs_in_and_refreshes() {
    // FastMCP's shape: no `none` in the metadata (so the broker's client gets a secret and uses
    // Basic), and "Missing client_id" unless the body names the client.
    let mut options = UpstreamOptions::oauth();
    options.auth_server.client_auth = ClientAuthRule::ClientIdInBody;
    options.auth_server.auth_methods = Some(vec![
        "client_secret_post".into(),
        "client_secret_basic".into(),
    ]);
    let (up, broker, server) = demo_server(options, json!({})).await;
    broker.sign_in("demo").await;
    let upstream = broker.broker.upstream();
    let old = upstream.credential(&server).await.unwrap();
    up.oauth().expire_access_tokens();
    let new = upstream.after_rejection(&server, &old).await.unwrap();
    assert!(up.oauth().validate(new.bearer.unwrap().expose()).is_some());
    let tokens = up.oauth().recorder.to_path("/token");
    assert_eq!(
        tokens.len(),
        2,
        "code exchange and refresh, each accepted first time"
    );
    assert!(tokens
        .iter()
        .all(|t| t.authorization().is_some_and(|a| a.starts_with("Basic "))));
    assert_eq!(count(&up.oauth().counters.register), 1);
}
