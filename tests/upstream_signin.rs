//! The broker as an OAuth client of a real upstream + AS on 127.0.0.1: discovery, DCR,
//! authorization code + PKCE through the replaceable opener, the callback page, refresh with
//! rotation, invalid_grant, sign-out with revocation.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_auth_broker::broker::Event;
use mcp_auth_broker::config::ServerConfig;
use mcp_auth_broker::opener::Opener;
use mcp_auth_broker::upstream::{CallbackQuery, FailureKind, Flow};
use serde_json::json;
use support::*;
use url::Url;

const WAIT: Duration = Duration::from_secs(20);

async fn setup(
    options: UpstreamOptions,
    extra: serde_json::Value,
) -> (TestUpstream, TestBroker, ServerConfig) {
    let up = TestUpstream::start(options).await;
    let mut entry = json!({ "url": up.mcp_url });
    entry
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let broker = TestBroker::start(json!({ "mcp_servers": { "demo": entry } })).await;
    let server = broker.broker.server("demo").unwrap();
    (up, broker, server)
}

async fn sign_in(broker: &TestBroker, server: &ServerConfig) {
    let s = broker
        .broker
        .upstream()
        .sign_in(server, &broker.browser.opener())
        .await
        .expect("sign-in starts");
    let done = tokio::time::timeout(WAIT, s.done)
        .await
        .expect("sign-in finishes in time")
        .expect("done is sent");
    assert_eq!(done, Ok(()));
}

#[tokio::test]
async fn sign_in_registers_opens_the_browser_and_stores_an_audience_bound_token() {
    let (up, broker, server) = setup(UpstreamOptions::oauth(), json!({})).await;
    let mut events = broker.broker.events();
    sign_in(&broker, &server).await;

    let followed = tokio::time::timeout(WAIT, broker.browser.wait_followed(1))
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
    let (_up, broker, server) = setup(UpstreamOptions::oauth(), json!({})).await;
    sign_in(&broker, &server).await;
    let followed = tokio::time::timeout(WAIT, broker.browser.wait_followed(1))
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
    let (up, broker, server) = setup(UpstreamOptions::oauth(), json!({})).await;
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
    assert!(tokio::time::timeout(WAIT, s.done)
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
    let (up, broker, server) = setup(UpstreamOptions::oauth(), json!({})).await;
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

#[tokio::test]
async fn an_as_without_pkce_s256_is_refused_before_the_browser_opens() {
    let mut options = UpstreamOptions::oauth();
    options.auth_server.advertise_pkce = false;
    let (up, broker, server) = setup(options, json!({})).await;
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
async fn refresh_rotates_once_per_burst_and_persists_the_new_refresh_token() {
    let (up, broker, server) = setup(UpstreamOptions::oauth(), json!({})).await;
    sign_in(&broker, &server).await;
    let upstream = broker.broker.upstream().clone();
    for round in 1..=2 {
        let old = upstream.credential(&server).await.unwrap();
        up.oauth().expire_access_tokens();
        let mut tasks = vec![];
        for _ in 0..20 {
            let (u, s, o) = (upstream.clone(), server.clone(), old.clone());
            tasks.push(tokio::spawn(async move { u.after_rejection(&s, &o).await }));
        }
        let mut tokens = std::collections::HashSet::new();
        for t in tasks {
            tokens.insert(
                t.await
                    .unwrap()
                    .unwrap()
                    .bearer
                    .unwrap()
                    .expose()
                    .to_string(),
            );
        }
        assert_eq!(tokens.len(), 1, "every caller gets the same new token");
        assert_eq!(
            count(&up.oauth().counters.token_refresh),
            round,
            "one refresh per burst"
        );
        let new = tokens.into_iter().next().unwrap();
        assert_ne!(new, old.bearer.unwrap().expose());
        assert!(up.oauth().validate(&new).is_some());
    }
    let facts = upstream.token_facts(&server.name).await;
    assert!(facts.last_refresh.unwrap().ok);
}

#[tokio::test]
async fn invalid_grant_means_sign_in_once_and_no_retry_loop() {
    let (up, broker, server) = setup(UpstreamOptions::oauth(), json!({})).await;
    sign_in(&broker, &server).await;
    let mut events = broker.broker.events();
    let upstream = broker.broker.upstream();
    let old = upstream.credential(&server).await.unwrap();
    up.oauth().revoke_all();
    for _ in 0..3 {
        let err = upstream.after_rejection(&server, &old).await.unwrap_err();
        assert_eq!(err.kind(), FailureKind::NeedsSignIn, "{err}");
    }
    assert_eq!(
        count(&up.oauth().counters.token_refresh),
        1,
        "a refused refresh token is not tried again"
    );
    let mut needs = 0;
    while let Ok(e) = events.try_recv() {
        if matches!(e, Event::NeedsSignIn { .. }) {
            needs += 1;
        }
    }
    assert_eq!(needs, 1, "NeedsSignIn is sent once");
    assert!(!upstream.token_facts(&server.name).await.has_refresh_token);
    // Signing in again fixes it.
    sign_in(&broker, &server).await;
    assert!(upstream.credential(&server).await.unwrap().bearer.is_some());
}

#[tokio::test]
async fn sign_out_revokes_and_deletes_even_when_revocation_fails() {
    let (up, broker, server) = setup(UpstreamOptions::oauth(), json!({})).await;
    let upstream = broker.broker.upstream();
    sign_in(&broker, &server).await;
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

    sign_in(&broker, &server).await;
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
    let (up, broker, server) = setup(
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
    sign_in(&broker, &server).await;
    assert_eq!(count(&up.oauth().counters.register), 0);
    let q: std::collections::HashMap<String, String> = broker.browser.opened()[0]
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["client_id"], "m2m-client");
}

#[tokio::test]
async fn credential_and_rejection_never_open_a_browser() {
    let (_up, broker, server) = setup(UpstreamOptions::oauth(), json!({})).await;
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

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Rewrites the stored token's absolute expiry, as if the machine slept until shortly before it.
async fn set_expiry(broker: &TestBroker, server: &str, obtained_at: u64, expires_at: u64) {
    let key = format!("upstream/{server}/meta");
    let vault = broker.broker.vault();
    let mut meta: serde_json::Value =
        serde_json::from_str(vault.get(&key).await.unwrap().unwrap().expose()).unwrap();
    meta["obtained_at"] = json!(obtained_at);
    meta["expires_at"] = json!(expires_at);
    vault
        .set(&key, mcp_auth_broker::secret::Secret::new(meta.to_string()))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_token_near_its_absolute_expiry_is_refreshed_before_use_without_a_401() {
    let (up, broker, server) = setup(UpstreamOptions::oauth(), json!({})).await;
    sign_in(&broker, &server).await;
    let upstream = broker.broker.upstream();
    let before = upstream.credential(&server).await.unwrap().bearer.unwrap();
    assert_eq!(
        count(&up.oauth().counters.token_refresh),
        0,
        "a fresh token is used as is"
    );
    let now = unix_now();
    set_expiry(&broker, "demo", now - 3590, now + 10).await;
    let after = upstream.credential(&server).await.unwrap().bearer.unwrap();
    assert_eq!(count(&up.oauth().counters.token_refresh), 1);
    assert_ne!(after, before);
    assert!(up.oauth().validate(after.expose()).is_some());
    assert!(upstream.token_facts(&server.name).await.expires_at.unwrap() > now + 3000);
}

#[tokio::test]
async fn transient_refresh_failures_back_off_instead_of_retrying_every_call() {
    let (up, broker, server) = setup(UpstreamOptions::oauth(), json!({})).await;
    sign_in(&broker, &server).await;
    let upstream = broker.broker.upstream();
    let now = unix_now();
    set_expiry(&broker, "demo", now - 3590, now + 10).await;
    up.oauth().set_fault(TokenFault::ServerError);
    let mut events = broker.broker.events();
    for _ in 0..5 {
        // The old token is still valid for a few seconds: callers keep getting it.
        assert!(upstream.credential(&server).await.unwrap().bearer.is_some());
    }
    assert_eq!(
        count(&up.oauth().counters.token_refresh),
        1,
        "one attempt, then backoff"
    );
    let facts = upstream.token_facts(&server.name).await;
    let last = facts.last_refresh.unwrap();
    assert!(!last.ok && last.detail.unwrap().contains("HTTP 500"));
    assert!(
        facts.has_refresh_token,
        "a transient failure keeps the refresh token"
    );
    assert!(matches!(events.try_recv(), Ok(Event::RefreshFailed { .. })));
}

#[tokio::test]
async fn a_changed_redirect_uri_means_a_new_registration() {
    let (up, broker, server) = setup(UpstreamOptions::oauth(), json!({})).await;
    sign_in(&broker, &server).await;
    sign_in(&broker, &server).await;
    assert_eq!(
        count(&up.oauth().counters.register),
        1,
        "the registration is reused"
    );
    let record = broker.dir.path().join("data/upstream/demo.json");
    let text = std::fs::read_to_string(&record)
        .unwrap()
        .replace("/oauth/callback", "/old/callback");
    std::fs::write(&record, text).unwrap();
    sign_in(&broker, &server).await;
    assert_eq!(count(&up.oauth().counters.register), 2);
}

#[tokio::test]
async fn invalid_client_at_the_token_endpoint_drops_the_dynamic_registration() {
    let (up, broker, server) = setup(UpstreamOptions::oauth(), json!({})).await;
    up.oauth().set_fault(TokenFault::Status(
        401,
        json!({"error": "invalid_client", "error_description": "unknown client"}),
    ));
    let s = broker
        .broker
        .upstream()
        .sign_in(&server, &broker.browser.opener())
        .await
        .unwrap();
    let done = tokio::time::timeout(WAIT, s.done).await.unwrap().unwrap();
    let why = done.unwrap_err();
    assert!(
        why.contains("invalid_client") && why.contains("HTTP 401"),
        "{why}"
    );
    up.oauth().set_fault(TokenFault::None);
    sign_in(&broker, &server).await;
    assert_eq!(
        count(&up.oauth().counters.register),
        2,
        "a fresh registration after invalid_client"
    );
}

#[tokio::test]
async fn a_token_is_never_sent_to_a_changed_server_url() {
    let (_up, broker, server) = setup(UpstreamOptions::oauth(), json!({})).await;
    sign_in(&broker, &server).await;
    let other = TestUpstream::start(UpstreamOptions::oauth()).await;
    broker
        .write_config(json!({"mcp_servers": {"demo": {"url": other.mcp_url}}}))
        .await;
    let moved = broker.broker.server("demo").unwrap();
    let err = broker
        .broker
        .upstream()
        .credential(&moved)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::NeedsSignIn);
    assert!(err.to_string().contains("URL changed"), "{err}");
    // Signing in to the new URL replaces the old token.
    sign_in(&broker, &moved).await;
    let token = broker
        .broker
        .upstream()
        .credential(&moved)
        .await
        .unwrap()
        .bearer
        .unwrap();
    assert!(other.oauth().validate(token.expose()).is_some());
}

#[tokio::test]
async fn a_server_that_moved_to_another_authorization_server_needs_a_new_sign_in_and_registration()
{
    let (up, broker, server) = setup(UpstreamOptions::oauth(), json!({})).await;
    sign_in(&broker, &server).await;
    let old = broker.broker.upstream().credential(&server).await.unwrap();
    let new_as = TestAs::start(AsOptions::default()).await;
    up.set_authorization_server(&new_as.issuer);
    let err = broker
        .broker
        .upstream()
        .after_rejection(&server, &old)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::NeedsSignIn);
    assert!(err.to_string().contains(&new_as.issuer), "{err}");
    assert_eq!(
        count(&up.oauth().counters.token_refresh),
        0,
        "the old AS's refresh token is not used"
    );
    sign_in(&broker, &server).await;
    assert_eq!(
        count(&new_as.state.counters.register),
        1,
        "registered afresh at the new AS"
    );
    let q: std::collections::HashMap<String, String> = broker
        .browser
        .opened()
        .last()
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_ne!(
        q["client_id"],
        broker.browser.opened()[0]
            .query_pairs()
            .find(|(k, _)| k == "client_id")
            .unwrap()
            .1
    );
}
