//! The lifetime of an upstream token the broker got by signing in (real upstream + AS on
//! 127.0.0.1): refresh with rotation and backoff, expiry before use, invalid_grant, and the
//! changes (redirect URI, server URL, authorization server, client) that void a token or a
//! registration.

use crate::support;

use mcp_auth_broker::events::Event;
use mcp_auth_broker::upstream::FailureKind;
use serde_json::json;
use support::*;

#[tokio::test]
async fn refresh_rotates_once_per_burst_and_persists_the_new_refresh_token() {
    let (up, broker, server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    broker.sign_in("demo").await;
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
async fn odd_expires_in_at_sign_in_gives_a_token_used_without_a_refresh_per_call() {
    let (up, broker, server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    let upstream = broker.broker.upstream();
    for expires_in in [
        json!("3600"),
        json!(0),
        json!(-5),
        json!(3.7),
        json!(1e300),
        json!("soon"),
        serde_json::Value::Null,
    ] {
        up.oauth().set_expires_in(expires_in.clone());
        broker.sign_in("demo").await;
        let signed_in = upstream.credential(&server).await.unwrap();
        for _ in 0..3 {
            let again = upstream.credential(&server).await;
            let again = again.unwrap_or_else(|e| panic!("expires_in {expires_in}: {e}"));
            assert_eq!(again.bearer, signed_in.bearer, "expires_in {expires_in}");
        }
        assert_eq!(
            count(&up.oauth().counters.token_refresh),
            0,
            "expires_in {expires_in}: no refresh until the token is due or refused"
        );
    }
}

#[tokio::test]
async fn invalid_grant_means_sign_in_once_and_no_retry_loop() {
    let (up, broker, server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    broker.sign_in("demo").await;
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
    broker.sign_in("demo").await;
    assert!(upstream.credential(&server).await.unwrap().bearer.is_some());
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
    let (up, broker, server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    broker.sign_in("demo").await;
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
    let (up, broker, server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    broker.sign_in("demo").await;
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
    let (up, broker, _server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    broker.sign_in("demo").await;
    broker.sign_in("demo").await;
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
    broker.sign_in("demo").await;
    assert_eq!(count(&up.oauth().counters.register), 2);
}

#[tokio::test]
async fn invalid_client_at_the_token_endpoint_drops_the_dynamic_registration() {
    let (up, broker, server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
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
    let done = tokio::time::timeout(SIGN_IN_WAIT, s.done)
        .await
        .unwrap()
        .unwrap();
    let why = done.unwrap_err();
    assert!(
        why.contains("invalid_client") && why.contains("HTTP 401"),
        "{why}"
    );
    up.oauth().set_fault(TokenFault::None);
    broker.sign_in("demo").await;
    assert_eq!(
        count(&up.oauth().counters.register),
        2,
        "a fresh registration after invalid_client"
    );
}

#[tokio::test]
async fn a_token_is_never_sent_to_a_changed_server_url() {
    let (_up, broker, _server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    broker.sign_in("demo").await;
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
    broker.sign_in("demo").await;
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
    let (up, broker, server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    broker.sign_in("demo").await;
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
    broker.sign_in("demo").await;
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

#[tokio::test]
async fn a_refused_client_is_registered_anew_once_then_the_error_says_what_to_do() {
    let (up, broker, server) = demo_server(UpstreamOptions::oauth(), json!({})).await;
    up.oauth().set_fault(TokenFault::Status(
        401,
        json!({"error": "invalid_client", "error_description": "unknown client"}),
    ));
    let mut why = Vec::new();
    for _ in 0..3 {
        let s = broker
            .broker
            .upstream()
            .sign_in(&server, &broker.browser.opener())
            .await
            .unwrap();
        let done = tokio::time::timeout(SIGN_IN_WAIT, s.done)
            .await
            .unwrap()
            .unwrap();
        why.push(done.unwrap_err());
    }
    assert_eq!(
        count(&up.oauth().counters.register),
        2,
        "one re-registration, never a loop"
    );
    assert!(!why[0].contains("token_endpoint_auth_method"), "{}", why[0]);
    for w in &why[1..] {
        assert!(
            w.contains("invalid_client") && w.contains("token_endpoint_auth_method"),
            "{w}"
        );
    }
    // Fixed on the server's side: the kept client signs in, and a later refusal may re-register.
    up.oauth().set_fault(TokenFault::None);
    broker.sign_in("demo").await;
    assert_eq!(count(&up.oauth().counters.register), 2);
}

/// An upstream whose authorization server binds tokens to DPoP keys (and checks each proof).
fn dpop_upstream() -> UpstreamOptions {
    UpstreamOptions {
        auth_server: AsOptions {
            dpop: true,
            ..AsOptions::default()
        },
        ..UpstreamOptions::oauth()
    }
}

#[tokio::test]
async fn logout_deletes_the_dpop_key_with_the_tokens_and_the_next_sign_in_binds_to_a_new_key() {
    let (up, broker, server) = demo_server(dpop_upstream(), json!({})).await;
    broker.sign_in("demo").await;
    let upstream = broker.broker.upstream();
    let first = upstream.token_facts(&server.name).await.dpop_jkt;
    let first = first.expect("the sign-in's token is DPoP-bound");
    let issued = broker.issued("demo", up.oauth()).await.expect("issued");
    assert_eq!(issued.jkt.as_deref(), Some(first.as_str()), "cnf.jkt");
    let vault = broker.broker.vault();
    assert!(vault.get("upstream/demo/dpop_key").await.unwrap().is_some());
    // A refresh proves the same key (the refresh token is bound to it).
    let old = upstream.credential(&server).await.unwrap();
    up.oauth().expire_access_tokens();
    upstream
        .after_rejection(&server, &old)
        .await
        .expect("refreshed");
    let issued = broker.issued("demo", up.oauth()).await.expect("issued");
    assert_eq!(issued.jkt.as_deref(), Some(first.as_str()));

    let out = Cli::of(&broker).run(&["logout", "demo"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", cli::text(&out));
    assert!(
        vault.get("upstream/demo/dpop_key").await.unwrap().is_none(),
        "the key went with the tokens"
    );
    let steps = upstream.timeline(&server.name);
    assert!(
        steps.iter().any(|s| s.detail.contains("DPoP key deleted")),
        "{steps:?}"
    );

    broker.sign_in("demo").await;
    let second = upstream.token_facts(&server.name).await.dpop_jkt;
    let second = second.expect("bound again");
    assert_ne!(second, first, "a new key for the new sign-in");
    let issued = broker.issued("demo", up.oauth()).await.expect("issued");
    assert_eq!(issued.jkt, Some(second.clone()));
    let proofs = up.oauth().dpop_proofs.lock().unwrap().clone();
    assert_eq!(
        proofs,
        vec![first.clone(), first, second],
        "the code exchange and the refresh proved the first key, the next sign-in a new one"
    );
}

#[tokio::test]
async fn a_self_registered_private_key_jwt_client_signs_its_refresh_as_it_signed_the_code_exchange()
{
    let method = json!({"token_endpoint_auth_method": "private_key_jwt"});
    let (up, broker, server) = demo_server(UpstreamOptions::oauth(), method).await;
    broker.sign_in("demo").await;
    let registrations = up.oauth().registrations.lock().unwrap().clone();
    assert_eq!(registrations.len(), 1, "{registrations:?}");
    assert_eq!(
        registrations[0]["token_endpoint_auth_method"],
        "private_key_jwt"
    );
    let client = registrations[0]["client_id"].as_str().unwrap().to_string();
    assert_eq!(up.oauth().verified_assertions(), vec![client.clone()]);

    let upstream = broker.broker.upstream();
    let old = upstream.credential(&server).await.unwrap();
    up.oauth().expire_access_tokens();
    let new = upstream.after_rejection(&server, &old).await;
    let new = new.expect("the refresh is accepted");
    assert_ne!(new.bearer, old.bearer);
    assert_eq!(count(&up.oauth().counters.token_refresh), 1);
    assert_eq!(
        up.oauth().verified_assertions(),
        vec![client.clone(), client],
        "the refresh carried a client assertion signed with the registered key"
    );
}
