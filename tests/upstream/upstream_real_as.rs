//! The broker as an OAuth client of authorization servers written by others, run for real on
//! 127.0.0.1: FastMCP's own built-in authorization server (Python, the MCP Python SDK's token
//! endpoint: Basic needs `client_id` in the body, registration scopes checked) and the official
//! TypeScript SDK v1's `mcpAuthRouter` (form-only client authentication). For each: sign-in
//! through the (auto-approving) authorization page, a `tools/call` through `/{server}/mcp`, a
//! broker restart that keeps the tokens, and a refresh once the upstream forgets the access token.
//! And `oidc-provider` as a company identity provider (enterprise-managed authorization): one
//! company sign-in on its real pages serves two servers whose authorization servers take its
//! signed ID-JAGs, renews itself without the person, and after the company session ends one
//! sign-in brings both back.

use crate::gateway_common;
use crate::support;

use std::sync::Arc;

use gateway_common::{api_key, initialize, post, tool_call};
use mcp_auth_broker::config::ServerName;
use mcp_auth_broker::health::HealthState;
use mcp_auth_broker::opener::Opener;
use mcp_auth_broker::vault::{MemoryStore, TokenStore};
use serde_json::{json, Value};
use support::company_idp::CompanyIdp;
use support::*;

/// `initialize` (keeping the session the upstream may open), then `echo` with `text`; returns
/// the answer's body.
async fn echo(broker: &TestBroker, key: &str, text: &str) -> String {
    echo_on(broker, key, "real", text).await
}

/// [`echo`] through `/{server}/mcp`.
async fn echo_on(broker: &TestBroker, key: &str, server: &str, text: &str) -> String {
    let url = broker.client_url(server);
    let r = post(&url, key, None, &initialize()).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let sid = r
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    let _ = r.text().await;
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let n = post(&url, key, sid.as_deref(), &note).await;
    let status = n.status();
    assert_eq!(status, 202, "{}", n.text().await.unwrap());
    let r = post(
        &url,
        key,
        sid.as_deref(),
        &tool_call(2, "echo", json!({"text": text})),
    )
    .await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// Sign-in, call, restart, refresh against the upstream at `url` (its `/test/expire` forgets
/// every access token).
async fn sign_in_call_restart_refresh(url: &str) {
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::default());
    let data = tempfile::tempdir().unwrap();
    let config = json!({"mcp_servers": {"real": {"url": url}}});
    let start = || {
        let options = BrokerOptions {
            store: store.clone(),
            ..BrokerOptions::default()
        };
        TestBroker::start_in(config.clone(), options, Some(data.path().to_path_buf()))
    };
    let broker = start().await;
    broker.sign_in("real").await;
    let key = api_key(&broker).await;
    let answer = echo(&broker, &key, "first call").await;
    assert!(answer.contains("first call"), "{answer}");
    let record = std::fs::read_to_string(data.path().join("upstream/real.json")).unwrap();
    drop(broker);

    let broker = start().await;
    let key = api_key(&broker).await;
    let answer = echo(&broker, &key, "after a restart").await;
    assert!(answer.contains("after a restart"), "{answer}");
    assert!(
        broker.browser.opened().is_empty(),
        "no new sign-in after the restart"
    );

    let expired: serde_json::Value = reqwest::Client::new()
        .post(url.replace("/mcp", "/test/expire"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(expired["forgotten"].as_u64().unwrap() >= 1, "{expired}");
    let answer = echo(&broker, &key, "after a refresh").await;
    assert!(answer.contains("after a refresh"), "{answer}");
    let server = broker.broker.server("real").unwrap();
    let facts = broker.broker.upstream().token_facts(&server.name).await;
    let refreshed = facts.last_refresh.expect("a refresh happened");
    assert!(refreshed.ok, "{refreshed:?}");
    let now = std::fs::read_to_string(data.path().join("upstream/real.json")).unwrap();
    let client = |r: &str| {
        serde_json::from_str::<serde_json::Value>(r).unwrap()["registration"]["client_id"].clone()
    };
    assert_eq!(
        client(&now),
        client(&record),
        "the same registered client throughout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fastmcp_built_in_authorization_server_sign_in_call_restart_and_refresh() {
    let up = FastMcpServer::start().await;
    sign_in_call_restart_refresh(&up.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_v1_auth_router_sign_in_call_restart_and_refresh() {
    let up = JsServer::script("v1_auth_server.mjs", &[]).await;
    sign_in_call_restart_refresh(&up.url).await;
}

/// Waits until both enterprise servers' health satisfies `ok`.
async fn both(broker: &TestBroker, ok: impl Fn(&HealthState) -> bool) {
    let mut status = broker.broker.status();
    let wait = status.wait_for(|m| {
        ["docs", "tickets"]
            .iter()
            .all(|n| m.get(*n).is_some_and(|s| ok(&s.state)))
    });
    if tokio::time::timeout(SIGN_IN_WAIT, wait).await.is_err() {
        panic!(
            "both servers reach the state; now: {:?}",
            broker.broker.status().borrow()
        );
    }
}

fn needs_company(state: &HealthState) -> bool {
    matches!(state, HealthState::NeedsSignIn { reason } if reason.contains("needs company sign-in"))
}

/// The person signs in to the company once, on the provider's own pages.
async fn company_sign_in(broker: &TestBroker) {
    let company = broker.broker.config().enterprise.clone().unwrap();
    let upstream = broker.broker.upstream();
    let started = upstream.sign_in_company(&company, &Opener::Print).await;
    let started = started.expect("the company sign-in starts");
    let page = support::oidc::sign_in_at(started.authorize_url.as_str()).await;
    let done = tokio::time::timeout(SIGN_IN_WAIT, started.done).await;
    let done = done.expect("the callback arrives").expect("answered");
    assert_eq!(done, Ok(()), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_company_sign_in_at_oidc_provider_serves_two_servers_renews_itself_and_comes_back_after_the_session_ends(
) {
    let idp = CompanyIdp::start().await;
    let (docs, tickets) = (idp.server(false).await, idp.server(false).await);
    std::env::set_var("ACME_IDP_SECRET", CompanyIdp::CLIENT_SECRET);
    std::env::set_var("ACME_MCP_SECRET", "mcp-secret");
    let server = |up: &TestUpstream| {
        json!({"url": up.mcp_url, "oauth_flow": "enterprise",
        "client_id": CompanyIdp::JAG_CLIENT_ID, "client_secret": "os.environ/ACME_MCP_SECRET"})
    };
    let config = json!({
        "enterprise": {"name": "Acme", "issuer": idp.issuer, "client_id": CompanyIdp::CLIENT_ID,
                       "client_secret": "os.environ/ACME_IDP_SECRET"},
        "mcp_servers": {"docs": server(&docs), "tickets": server(&tickets)},
    });
    let options = BrokerOptions {
        background: true,
        ..BrokerOptions::default()
    };
    let broker = TestBroker::start_with(config, options).await;
    both(&broker, needs_company).await;

    company_sign_in(&broker).await;
    both(&broker, |s| matches!(s, HealthState::Healthy { .. })).await;
    let key = api_key(&broker).await;
    for (name, up) in [("docs", &docs), ("tickets", &tickets)] {
        let answer = echo_on(&broker, &key, name, &format!("hello {name}")).await;
        assert!(answer.contains(&format!("hello {name}")), "{answer}");
        let steps = broker
            .broker
            .upstream()
            .timeline(&broker.broker.server(name).unwrap().name);
        assert!(
            steps
                .iter()
                .any(|s| s.label == "token" && s.detail.contains("ID-JAG from Acme's sign-in")),
            "the timeline says how the token came: {steps:?}"
        );
        // Each server's token is for that server: the ID-JAG named it as the resource.
        let issued = up
            .oauth()
            .access
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect::<Vec<_>>();
        assert!(!issued.is_empty());
        for t in issued {
            assert_eq!(
                (t.grant, t.resource.as_deref()),
                ("jwt_bearer", Some(up.mcp_url.as_str()))
            );
        }
    }
    let status: Value = reqwest::get(format!("{}/api/status", broker.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["servers"]["docs"]["via"], "Acme");
    assert_eq!(
        status["enterprise"]["session"]["signed_in"], true,
        "{status}"
    );
    assert_eq!(
        status["enterprise"]["session"]["renewable"], true,
        "{status}"
    );

    // The ID tokens are no longer taken and the servers forget their tokens: the company
    // session renews itself (the provider's refresh token), nobody signs in.
    idp.control("expire-id-tokens").await;
    docs.oauth().expire_access_tokens();
    tickets.oauth().expire_access_tokens();
    for name in ["docs", "tickets"] {
        let answer = echo_on(&broker, &key, name, "renewed").await;
        assert!(answer.contains("renewed"), "{answer}");
    }
    let counts = idp.counts().await;
    assert_eq!(counts["sign_ins"], 1, "{counts}");
    assert!(counts["refreshes"].as_u64() >= Some(1), "{counts}");

    // The company session ends: both servers need company sign-in ...
    idp.control("end-sessions").await;
    docs.oauth().expire_access_tokens();
    tickets.oauth().expire_access_tokens();
    broker
        .broker
        .health()
        .check_now(&ServerName::parse("docs").unwrap());
    both(&broker, needs_company).await;

    // ... and one sign-in brings both back.
    company_sign_in(&broker).await;
    both(&broker, |s| matches!(s, HealthState::Healthy { .. })).await;
    for name in ["docs", "tickets"] {
        let answer = echo_on(&broker, &key, name, "back").await;
        assert!(answer.contains("back"), "{answer}");
    }
    assert_eq!(idp.counts().await["sign_ins"], 2);
}

/// A broker with one enterprise server `docs` at `docs`, signed in to the company `idp`.
async fn signed_in_to_acme_for(idp: &CompanyIdp, docs: &TestUpstream) -> TestBroker {
    std::env::set_var("ONE_IDP_SECRET", CompanyIdp::CLIENT_SECRET);
    std::env::set_var("ONE_MCP_SECRET", "mcp-secret");
    let config = json!({
        "enterprise": {"name": "Acme", "issuer": idp.issuer, "client_id": CompanyIdp::CLIENT_ID,
                       "client_secret": "os.environ/ONE_IDP_SECRET"},
        "mcp_servers": {"docs": {"url": docs.mcp_url, "oauth_flow": "enterprise",
            "client_id": CompanyIdp::JAG_CLIENT_ID, "client_secret": "os.environ/ONE_MCP_SECRET"}},
    });
    let broker = TestBroker::start(config).await;
    company_sign_in(&broker).await;
    broker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_enterprise_drops_the_servers_tokens_so_the_next_call_needs_company_sign_in() {
    let idp = CompanyIdp::start().await;
    let docs = idp.server(false).await;
    let broker = signed_in_to_acme_for(&idp, &docs).await;
    let key = api_key(&broker).await;
    let answer = echo_on(&broker, &key, "docs", "before").await;
    assert!(answer.contains("before"), "{answer}");
    let issued = || docs.oauth().access.lock().unwrap().len();
    let issued_before = issued();

    let out = cli::Cli::of(&broker).run(&["logout", "--enterprise"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", cli::text(&out));

    // The token the server issued is still valid there, but the broker no longer holds it.
    let r = post(&broker.client_url("docs"), &key, None, &initialize()).await;
    let status = r.status();
    let challenge = format!("{:?}", r.headers().get("www-authenticate"));
    let body = r.text().await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(
        format!("{challenge}{body}").contains("needs company sign-in"),
        "{challenge} {body}"
    );
    assert_eq!(
        issued(),
        issued_before,
        "no new token without a company session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_jag_is_redeemed_with_a_dpop_proof_where_the_servers_authorization_server_advertises_dpop(
) {
    let idp = CompanyIdp::start().await;
    let docs = idp.server(true).await;
    let broker = signed_in_to_acme_for(&idp, &docs).await;
    let server = broker.broker.server("docs").unwrap();
    let upstream = broker.broker.upstream();
    let fetched = upstream.credential(&server).await;
    fetched.expect("a token via the company sign-in");
    // The AS answers `token_type: DPoP` only to a request that carried a proof.
    let facts = upstream.token_facts(&server.name).await;
    assert!(
        facts.dpop_jkt.is_some(),
        "the token is kept bound: {facts:?}"
    );
    let steps = upstream.timeline(&server.name);
    assert!(
        steps
            .iter()
            .any(|s| s.detail.contains("ID-JAG from Acme's sign-in, DPoP-bound")),
        "{steps:?}"
    );
    // The AS checked the redemption's proof (signature, htm, htu, jti, iat) and bound the token
    // to its key; the upstream takes that token only with a proof of the same key.
    let jkt = facts.dpop_jkt.unwrap();
    let proofs = docs.oauth().dpop_proofs.lock().unwrap().clone();
    assert_eq!(proofs, vec![jkt.clone()]);
    let issued = broker.issued("docs", docs.oauth()).await.expect("issued");
    assert_eq!((issued.grant, issued.jkt), ("jwt_bearer", Some(jkt)));
    let key = api_key(&broker).await;
    let refused = count(&docs.counters().unauthorized);
    let answer = echo_on(&broker, &key, "docs", "bound").await;
    assert!(answer.contains("bound"), "{answer}");
    let refused = count(&docs.counters().unauthorized) - refused;
    assert_eq!(refused, 0, "every proof accepted at once");
}
