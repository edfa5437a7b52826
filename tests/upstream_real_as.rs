//! The broker as an OAuth client of authorization servers written by others, run for real on
//! 127.0.0.1: FastMCP's own built-in authorization server (Python, the MCP Python SDK's token
//! endpoint: Basic needs `client_id` in the body, registration scopes checked) and the official
//! TypeScript SDK v1's `mcpAuthRouter` (form-only client authentication). For each: sign-in
//! through the (auto-approving) authorization page, a `tools/call` through `/{server}/mcp`, a
//! broker restart that keeps the tokens, and a refresh once the upstream forgets the access token.

mod gateway_common;
mod support;

use std::sync::Arc;

use gateway_common::{api_key, initialize, post, tool_call};
use mcp_auth_broker::vault::{MemoryStore, TokenStore};
use serde_json::json;
use support::*;

/// `initialize` (keeping the session the upstream may open), then `echo` with `text`; returns
/// the answer's body.
async fn echo(broker: &TestBroker, key: &str, text: &str) -> String {
    let url = broker.client_url("real");
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
