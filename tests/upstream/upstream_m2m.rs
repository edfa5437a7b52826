//! Client credentials against a real AS on 127.0.0.1: one token request per burst, the cache
//! TTL, basic vs post client auth, and every token-endpoint fault giving a named error.

use crate::gateway_common;
#[path = "upstream_m2m/keys.rs"]
mod keys;
use crate::support;

use gateway_common::{api_key, initialize, open_session, post, tool_call};
use std::time::Duration;

use mcp_auth_broker::upstream::FailureKind;
use serde_json::json;
use support::*;

fn m2m(up: &TestUpstream, secret_var: &str) -> serde_json::Value {
    json!({
        "url": up.mcp_url, "auth_type": "oauth2", "client_id": "m2m-client",
        "client_secret": format!("os.environ/{secret_var}"), "token_url": up.auth_server.token_url()
    })
}

#[tokio::test]
async fn two_hundred_concurrent_calls_on_a_cold_cache_make_exactly_one_token_request() {
    std::env::set_var("UPSTREAM_M2M_BURST", "m2m-secret");
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let broker =
        TestBroker::start(json!({"mcp_servers": {"svc": m2m(&up, "UPSTREAM_M2M_BURST")}})).await;
    let server = broker.broker.server("svc").unwrap();
    let upstream = broker.broker.upstream().clone();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (u, s) = (upstream.clone(), server.clone());
        tasks.push(tokio::spawn(async move { u.credential(&s).await }));
    }
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        tokens.insert(
            t.await
                .unwrap()
                .expect("credential")
                .bearer
                .expect("bearer")
                .expose()
                .to_string(),
        );
    }
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 1);
    assert_eq!(tokens.len(), 1);
    let token = tokens.into_iter().next().unwrap();
    let issued = up.oauth().validate(&token).unwrap();
    assert_eq!(issued.grant, "client_credentials");
    assert_eq!(
        issued.resource.as_deref(),
        Some(up.mcp_url.as_str()),
        "resource is sent"
    );
    // Warm cache: no further request.
    upstream.credential(&server).await.unwrap();
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 1);
    // The token is persisted: a new broker over the same store would find it (facts say so).
    assert!(upstream.token_facts(&server.name).await.has_token);
}

#[tokio::test]
async fn a_short_expires_in_is_cached_for_part_of_its_life_not_refetched_per_call() {
    std::env::set_var("UPSTREAM_M2M_TINY", "m2m-secret");
    let mut options = UpstreamOptions::oauth();
    options.auth_server.expires_in = json!(5);
    let up = TestUpstream::start(options).await;
    let broker =
        TestBroker::start(json!({"mcp_servers": {"svc": m2m(&up, "UPSTREAM_M2M_TINY")}})).await;
    let server = broker.broker.server("svc").unwrap();
    for _ in 0..5 {
        broker.broker.upstream().credential(&server).await.unwrap();
    }
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 1);
}

#[tokio::test]
async fn odd_expires_in_values_each_give_a_working_cached_token() {
    std::env::set_var("UPSTREAM_M2M_ODD", "m2m-secret");
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let odd = [
        ("as-string", json!("3600")),
        ("zero", json!(0)),
        ("negative", json!(-5)),
        ("fraction", json!(3.7)),
        ("huge", json!(1e300)),
        ("words", json!("soon")),
        ("object", json!({"seconds": 60})),
        ("absent", serde_json::Value::Null),
    ];
    let servers: serde_json::Map<String, serde_json::Value> = odd
        .iter()
        .map(|(n, _)| (n.to_string(), m2m(&up, "UPSTREAM_M2M_ODD")))
        .collect();
    let broker = TestBroker::start(json!({ "mcp_servers": servers })).await;
    for (name, expires_in) in odd {
        up.oauth().set_expires_in(expires_in.clone());
        let before = count(&up.oauth().counters.token_client_credentials);
        let server = broker.broker.server(name).unwrap();
        for _ in 0..3 {
            let cred = broker.broker.upstream().credential(&server).await;
            let cred = cred.unwrap_or_else(|e| panic!("expires_in {expires_in}: {e}"));
            let token = cred.bearer.expect("bearer");
            // The fixture AS lets a token with a 0 or negative lifetime expire at once (its
            // upstream then refuses it, and a refused token is replaced); any other is valid.
            if expires_in.as_i64().is_none_or(|s| s > 0) {
                assert!(up.oauth().validate(token.expose()).is_some(), "{name}");
            }
        }
        // A token without a lifetime (0 or negative) is never served from the cache.
        let dead = expires_in.as_i64().is_some_and(|s| s <= 0);
        assert_eq!(
            count(&up.oauth().counters.token_client_credentials) - before,
            if dead { 3 } else { 1 },
            "expires_in {expires_in}: one token request, then the cache"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_machine_token_living_two_seconds_is_never_sent_expired_and_fetched_once_per_cache_period(
) {
    std::env::set_var("UPSTREAM_M2M_SHORT", "m2m-secret");
    let mut options = UpstreamOptions::oauth();
    options.auth_server.expires_in = json!(2);
    let up = TestUpstream::start(options).await;
    let broker =
        TestBroker::start(json!({"mcp_servers": {"svc": m2m(&up, "UPSTREAM_M2M_SHORT")}})).await;
    let key = api_key(&broker).await;
    let url = broker.client_url("svc");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = std::time::Instant::now();
    let mut clients = Vec::new();
    for c in 0..8u64 {
        let (url, key, stop) = (url.clone(), key.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let sid = open_session(&url, &key).await;
            let mut calls = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let text = format!("client {c} call {calls}");
                let r = post(
                    &url,
                    &key,
                    Some(&sid),
                    &tool_call(calls, "echo", json!({"text": text})),
                )
                .await;
                assert_eq!(r.status(), 200);
                let body = r.text().await.unwrap();
                assert!(body.contains(&text), "{body}");
                calls += 1;
            }
            calls
        }));
    }
    // Real expiry must pass here: wait until the AS handed out its fourth token (three
    // renewals under load), an event, not a fixed time.
    let tokens_fetched =
        |n: usize| move |r: &[Recorded]| r.iter().filter(|r| r.path == "/token").count() >= n;
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        up.oauth().recorder.wait_until(tokens_fetched(4)),
    )
    .await
    .expect("the broker renews the token under load");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut calls = 0;
    for c in clients {
        calls += c.await.expect("every call succeeded");
    }
    let elapsed = started.elapsed().as_secs();
    let fetched = count(&up.oauth().counters.token_client_credentials);
    assert_eq!(
        count(&up.counters().unauthorized),
        0,
        "no call reached the upstream with an expired token ({calls} calls, {fetched} tokens)"
    );
    // A two-second token is served for at most its first second (whole Unix seconds): one
    // request per second of the run at most, never a burst per expiry.
    assert!(
        fetched as u64 <= elapsed + 2,
        "{fetched} token requests in {elapsed} s ({calls} calls)"
    );
}

#[tokio::test]
async fn a_rejected_m2m_token_is_replaced_once() {
    std::env::set_var("UPSTREAM_M2M_REJECT", "m2m-secret");
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let broker =
        TestBroker::start(json!({"mcp_servers": {"svc": m2m(&up, "UPSTREAM_M2M_REJECT")}})).await;
    let server = broker.broker.server("svc").unwrap();
    let upstream = broker.broker.upstream();
    let old = upstream.credential(&server).await.unwrap();
    up.oauth().revoke_all();
    let new = upstream.after_rejection(&server, &old).await.unwrap();
    assert_ne!(
        new.bearer.as_ref().unwrap().expose(),
        old.bearer.unwrap().expose()
    );
    assert!(up.oauth().validate(new.bearer.unwrap().expose()).is_some());
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 2);
}

#[tokio::test]
async fn explicit_client_credentials_without_token_url_discovers_the_token_endpoint_and_prefers_basic_auth(
) {
    std::env::set_var("UPSTREAM_M2M_DISC", "m2m-secret");
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let broker = TestBroker::start(json!({"mcp_servers": {"svc": {
        "url": up.mcp_url, "auth_type": "oauth2", "oauth_flow": "client_credentials",
        "client_id": "m2m-client", "client_secret": "os.environ/UPSTREAM_M2M_DISC"
    }}}))
    .await;
    let server = broker.broker.server("svc").unwrap();
    let cred = broker.broker.upstream().credential(&server).await.unwrap();
    assert!(up.oauth().validate(cred.bearer.unwrap().expose()).is_some());
    let token_calls = up.oauth().recorder.to_path("/token");
    assert_eq!(token_calls.len(), 1);
    let auth = token_calls[0]
        .headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(
        auth.unwrap_or_default().starts_with("Basic "),
        "client_secret_basic is preferred when offered"
    );
}

#[tokio::test]
async fn every_token_endpoint_fault_names_server_url_status_and_cause() {
    std::env::set_var("UPSTREAM_M2M_FAULT", "m2m-secret");
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let cases: Vec<(&str, TokenFault, FailureKind, &str)> = vec![
        (
            "f-html",
            TokenFault::Html,
            FailureKind::Protocol,
            "HTTP 200 with an HTML page",
        ),
        (
            "f-empty",
            TokenFault::Empty,
            FailureKind::Protocol,
            "HTTP 200 with an empty body",
        ),
        (
            "f-notjson",
            TokenFault::NotJson,
            FailureKind::Protocol,
            "HTTP 200 with text that is not JSON",
        ),
        (
            "f-noat",
            TokenFault::NoAccessToken,
            FailureKind::Protocol,
            "HTTP 200 with JSON without an access_token",
        ),
        (
            "f-500",
            TokenFault::ServerError,
            FailureKind::Unreachable,
            "HTTP 500",
        ),
        (
            "f-401",
            TokenFault::Status(
                401,
                json!({"error": "invalid_client", "error_description": "bad secret"}),
            ),
            FailureKind::AuthRejected,
            "HTTP 401 with OAuth error \"invalid_client\" (bad secret)",
        ),
    ];
    let mut servers: serde_json::Map<String, serde_json::Value> = cases
        .iter()
        .map(|(n, ..)| (n.to_string(), m2m(&up, "UPSTREAM_M2M_FAULT")))
        .collect();
    let plain = TestUpstream::start(UpstreamOptions::default()).await;
    servers.insert("plain".into(), json!({ "url": plain.mcp_url }));
    let broker = TestBroker::start(json!({ "mcp_servers": servers })).await;
    for (name, fault, kind, words) in cases {
        up.oauth().set_fault(fault);
        let server = broker.broker.server(name).unwrap();
        let err = broker
            .broker
            .upstream()
            .credential(&server)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), kind, "{name}: {text}");
        assert!(text.contains(&format!("server \"{name}\"")), "{text}");
        assert!(text.contains(&up.auth_server.token_url()), "{text}");
        assert!(text.contains(words), "{name}: {text}");
        assert!(
            !text.to_lowercase().contains("expected value at line"),
            "no bare JSON parse error: {text}"
        );
    }
    // A failure is remembered briefly: a burst against a failing AS is not a storm.
    let server = broker.broker.server("f-401").unwrap();
    let before = count(&up.oauth().counters.token);
    for _ in 0..10 {
        assert!(broker.broker.upstream().credential(&server).await.is_err());
    }
    assert_eq!(count(&up.oauth().counters.token), before);

    // Through the gateway meanwhile: a client of a failing server gets the named error (not a
    // 500), and a server that needs no token endpoint answers as usual.
    let key = api_key(&broker).await;
    let r = post(&broker.client_url("f-401"), &key, None, &initialize()).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("invalid_client"), "{body}");
    let url = broker.client_url("plain");
    let sid = open_session(&url, &key).await;
    let r = post(
        &url,
        &key,
        Some(&sid),
        &tool_call(2, "echo", json!({"text": "served"})),
    )
    .await;
    assert!(r.text().await.unwrap().contains("served"));
}

#[tokio::test]
async fn static_tokens_and_configured_headers_are_attached() {
    std::env::set_var("UPSTREAM_STATIC_TOKEN", "tok-123");
    std::env::set_var("UPSTREAM_STATIC_KEY", "key-456");
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let broker = TestBroker::start(json!({"mcp_servers": {
        "bearer": {"url": up.mcp_url, "auth_type": "bearer_token", "auth_value": "os.environ/UPSTREAM_STATIC_TOKEN", "headers": {"X-Tenant": "acme"}},
        "apikey": {"url": up.mcp_url, "auth_type": "api_key", "auth_value": "os.environ/UPSTREAM_STATIC_KEY"},
        "apikey-own": {"url": up.mcp_url, "auth_type": "api_key", "auth_value": "os.environ/UPSTREAM_STATIC_KEY", "headers": {"X-API-Key": "os.environ/UPSTREAM_STATIC_TOKEN"}}
    }}))
    .await;
    let u = broker.broker.upstream();
    let c = u
        .credential(&broker.broker.server("bearer").unwrap())
        .await
        .unwrap();
    assert_eq!(c.bearer.unwrap().expose(), "tok-123");
    assert_eq!(c.headers.len(), 1);
    assert_eq!(
        (c.headers[0].0.as_str(), c.headers[0].1.expose()),
        ("x-tenant", "acme")
    );
    let c = u
        .credential(&broker.broker.server("apikey").unwrap())
        .await
        .unwrap();
    assert!(c.bearer.is_none());
    assert_eq!(
        (c.headers[0].0.as_str(), c.headers[0].1.expose()),
        ("x-api-key", "key-456")
    );
    let c = u
        .credential(&broker.broker.server("apikey-own").unwrap())
        .await
        .unwrap();
    assert_eq!(
        c.headers.len(),
        1,
        "configured x-api-key wins; auth_value is not added twice"
    );
    assert_eq!(c.headers[0].1.expose(), "tok-123");
    let err = u
        .after_rejection(
            &broker.broker.server("bearer").unwrap(),
            &Default::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::AuthRejected);
}

#[tokio::test]
async fn an_m2m_token_survives_a_broker_restart_through_the_store() {
    std::env::set_var("UPSTREAM_M2M_RESTART", "m2m-secret");
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let store: std::sync::Arc<dyn mcp_auth_broker::vault::TokenStore> =
        std::sync::Arc::new(mcp_auth_broker::vault::MemoryStore::default());
    let config = json!({"mcp_servers": {"svc": m2m(&up, "UPSTREAM_M2M_RESTART")}});
    let first = TestBroker::start_with(
        config.clone(),
        BrokerOptions {
            store: store.clone(),
            ..Default::default()
        },
    )
    .await;
    let token = first
        .broker
        .upstream()
        .credential(&first.broker.server("svc").unwrap())
        .await
        .unwrap()
        .bearer
        .unwrap();
    drop(first);
    let second = TestBroker::start_with(
        config,
        BrokerOptions {
            store,
            ..Default::default()
        },
    )
    .await;
    let again = second
        .broker
        .upstream()
        .credential(&second.broker.server("svc").unwrap())
        .await
        .unwrap()
        .bearer
        .unwrap();
    assert_eq!(again, token);
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 1);
}

/// LiteLLM's documented M2M mock: a token endpoint that reads `client_id` / `client_secret` only
/// as form fields (FastAPI's 422 otherwise), an MCP server that answers a bare 401 (no
/// challenge), and no metadata anywhere.
fn litellm_mock() -> UpstreamOptions {
    let mut options = UpstreamOptions::oauth();
    options.bare_401 = true;
    options.auth_server.metadata = false;
    options.auth_server.registration = false;
    options.auth_server.client_auth = ClientAuthRule::FormOnly;
    options
}

/// The config block of LiteLLM's docs, as is (the secret as `os.environ/VAR`).
fn litellm_entry(up: &TestUpstream, var: &str) -> serde_json::Value {
    json!({
        "url": up.mcp_url, "auth_type": "oauth2", "client_id": "m2m-client",
        "client_secret": format!("os.environ/{var}"), "token_url": up.auth_server.token_url()
    })
}

fn basic_sent(r: &Recorded) -> bool {
    r.authorization().is_some_and(|a| a.starts_with("Basic "))
}

#[tokio::test]
async fn the_litellm_docs_m2m_recipe_works_through_the_broker_and_the_accepted_method_survives_a_restart(
) {
    std::env::set_var("UPSTREAM_M2M_LITELLM", "m2m-secret");
    let up = TestUpstream::start(litellm_mock()).await;
    let config = json!({"mcp_servers": {"litellm": litellm_entry(&up, "UPSTREAM_M2M_LITELLM")}});
    let data = tempfile::tempdir().unwrap();
    let data_dir = Some(data.path().to_path_buf());
    let broker =
        TestBroker::start_in(config.clone(), BrokerOptions::default(), data_dir.clone()).await;
    let key = api_key(&broker).await;
    let url = broker.client_url("litellm");
    let sid = open_session(&url, &key).await;
    let r = post(
        &url,
        &key,
        Some(&sid),
        &tool_call(2, "echo", json!({"text": "via litellm recipe"})),
    )
    .await;
    assert!(r.text().await.unwrap().contains("via litellm recipe"));
    let tokens = up.oauth().recorder.to_path("/token");
    assert_eq!(
        tokens.len(),
        2,
        "client_secret_basic refused with 422, then client_secret_post once"
    );
    assert!(basic_sent(&tokens[0]) && !basic_sent(&tokens[1]));
    let server = broker.broker.server("litellm").unwrap();
    let c = broker.broker.upstream().classify(&server).await.unwrap();
    assert!(
        c.evidence
            .iter()
            .any(|e| e.contains("client authentication client_secret_post")),
        "the flow evidence names the method: {:?}",
        c.evidence
    );
    let timeline = broker.broker.upstream().timeline(&server.name);
    assert!(
        timeline.iter().any(|s| s
            .detail
            .contains("with client authentication client_secret_post")),
        "{timeline:?}"
    );
    drop(broker);

    // A restart with an empty keychain: the next token request goes straight to form fields.
    let again = TestBroker::start_in(config, BrokerOptions::default(), data_dir).await;
    let server = again.broker.server("litellm").unwrap();
    let cred = again.broker.upstream().credential(&server).await.unwrap();
    assert!(up.oauth().validate(cred.bearer.unwrap().expose()).is_some());
    let tokens = up.oauth().recorder.to_path("/token");
    assert_eq!(tokens.len(), 3, "remembered: no second refusal");
    assert!(!basic_sent(&tokens[2]));
}

#[tokio::test]
async fn a_configured_token_endpoint_auth_method_is_used_alone() {
    std::env::set_var("UPSTREAM_M2M_CONFIGURED", "m2m-secret");
    let up = TestUpstream::start(litellm_mock()).await;
    let mut basic = litellm_entry(&up, "UPSTREAM_M2M_CONFIGURED");
    basic["token_endpoint_auth_method"] = json!("client_secret_basic");
    let mut post_only = litellm_entry(&up, "UPSTREAM_M2M_CONFIGURED");
    post_only["token_endpoint_auth_method"] = json!("client_secret_post");
    let broker =
        TestBroker::start(json!({"mcp_servers": {"basic": basic, "post": post_only}})).await;
    let u = broker.broker.upstream();
    let err = u
        .credential(&broker.broker.server("basic").unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HTTP 422"), "{err}");
    assert_eq!(
        up.oauth().recorder.to_path("/token").len(),
        1,
        "no fallback when configured"
    );
    u.credential(&broker.broker.server("post").unwrap())
        .await
        .unwrap();
    let tokens = up.oauth().recorder.to_path("/token");
    assert_eq!(tokens.len(), 2);
    assert!(!basic_sent(&tokens[1]));
}

#[tokio::test]
async fn a_token_endpoint_that_wants_client_id_in_the_body_accepts_basic_at_once() {
    std::env::set_var("UPSTREAM_M2M_CLIENT_ID", "m2m-secret");
    let mut options = UpstreamOptions::oauth();
    options.auth_server.client_auth = ClientAuthRule::ClientIdInBody;
    let up = TestUpstream::start(options).await;
    let broker =
        TestBroker::start(json!({"mcp_servers": {"svc": m2m(&up, "UPSTREAM_M2M_CLIENT_ID")}}))
            .await;
    let server = broker.broker.server("svc").unwrap();
    broker.broker.upstream().credential(&server).await.unwrap();
    let tokens = up.oauth().recorder.to_path("/token");
    assert_eq!(
        tokens.len(),
        1,
        "Basic with client_id in the body: accepted first time"
    );
    assert!(basic_sent(&tokens[0]));
}

/// Machine tokens can be DPoP-bound too: oidc-provider issues client-credentials tokens only
/// with a proof (and its nonce), and the upstream takes them only with a proof of the same key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_tokens_from_oidc_provider_are_dpop_bound_and_sent_with_proofs() {
    use mcp_auth_broker::health::HealthState;
    use mcp_auth_broker::protocol::client::Client;
    use mcp_auth_broker::upstream::exchange::Endpoint;
    let up = oidc::DpopUpstream::start().await;
    std::env::set_var("UPSTREAM_M2M_DPOP", "m2m-secret");
    let config = json!({"mcp_servers": {"bot": {
        "url": up.url.replace("/mcp", "/m2m/mcp"), "auth_type": "oauth2",
        "oauth_flow": "client_credentials", "client_id": "broker-dpop-m2m",
        "client_secret": "os.environ/UPSTREAM_M2M_DPOP"}}});
    let background = BrokerOptions {
        background: true,
        ..Default::default()
    };
    let b = TestBroker::start_with(config, background).await;
    let server = b.broker.server("bot").unwrap();
    let upstream = b.broker.upstream().clone();
    let endpoint = Endpoint::new(upstream.clone(), server.clone());
    let client = Client::connect(endpoint, json!({}), Duration::from_secs(20))
        .await
        .unwrap();
    let answer = client
        .request(
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "machine"}}),
            &mut |_| {},
        )
        .await
        .unwrap();
    let jkt = upstream
        .token_facts(&server.name)
        .await
        .dpop_jkt
        .expect("the machine token is DPoP-bound");
    assert_eq!(
        answer["result"]["content"][0]["text"],
        format!("machine (DPoP-bound to {jkt})"),
        "{answer}"
    );
    let steps = upstream.timeline(&server.name);
    let bound = format!("DPoP-bound (key thumbprint {jkt})");
    assert!(
        steps.iter().any(|s| s.detail.ends_with(&bound)),
        "{steps:?}"
    );
    // Health probes send proofs too (and answer the upstream's nonce): the server is healthy,
    // and its status says the token is bound.
    let s = health::wait_status(&mut b.broker.status(), "bot", |s| {
        matches!(s.state, HealthState::Healthy { tools: 1, .. })
    })
    .await;
    assert_eq!(s.token.dpop_jkt.as_deref(), Some(jkt.as_str()));
    let stats = up.stats().await;
    assert_eq!(stats["refused"], json!([]), "{stats}");
}
