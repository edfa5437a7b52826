//! Upstreams on the older HTTP+SSE transport (2024-11-05) served to clients as Streamable HTTP.
//! The legacy upstream is a minimal one written here (GET `/sse` → `endpoint` event, POST
//! `/messages` → answers on the event stream).

use crate::support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use support::*;
use tokio::sync::mpsc;

#[derive(Clone, Default)]
struct Legacy {
    streams: Arc<Mutex<HashMap<String, mpsc::Sender<Bytes>>>>,
    /// What the `endpoint` event says (a relative path, or a foreign URL to test refusal).
    endpoint: Arc<Mutex<String>>,
}

async fn sse(State(l): State<Legacy>) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let id = random_token();
    let endpoint = l.endpoint.lock().unwrap().replace("{id}", &id);
    tx.send(Bytes::from(format!(
        "event: endpoint\ndata: {endpoint}\n\n"
    )))
    .await
    .unwrap();
    l.streams.lock().unwrap().insert(id, tx);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    (
        [("content-type", "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

async fn messages(
    State(l): State<Legacy>,
    Query(q): Query<HashMap<String, String>>,
    Json(msg): Json<Value>,
) -> StatusCode {
    let Some(tx) = q
        .get("session")
        .and_then(|s| l.streams.lock().unwrap().get(s).cloned())
    else {
        return StatusCode::NOT_FOUND;
    };
    let Some(id) = msg.get("id").cloned() else {
        return StatusCode::ACCEPTED;
    };
    let result = match msg["method"].as_str() {
        Some("initialize") => {
            json!({"protocolVersion": "2024-11-05", "capabilities": {"tools": {}}, "serverInfo": {"name": "legacy", "version": "1"}})
        }
        Some("tools/list") => {
            json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]})
        }
        Some("tools/call") => {
            json!({"content": [{"type": "text", "text": msg["params"]["arguments"]["text"]}]})
        }
        _ => json!({}),
    };
    // A notification first, so the bridge must tell answers from server messages.
    let note = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "working"}});
    let _ = tx
        .send(Bytes::from(format!("event: message\ndata: {note}\n\n")))
        .await;
    let answer = json!({"jsonrpc": "2.0", "id": id, "result": result});
    let _ = tx
        .send(Bytes::from(format!("event: message\ndata: {answer}\n\n")))
        .await;
    StatusCode::ACCEPTED
}

async fn legacy_upstream(endpoint: &str) -> (String, Legacy) {
    let state = Legacy::default();
    *state.endpoint.lock().unwrap() = endpoint.to_string();
    let app = Router::new()
        .route("/sse", get(sse))
        .route("/messages", post(messages))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("{base}/sse"), state)
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn rpc(b: &TestBroker, key: &str, session: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = http()
        .post(b.client_url("old"))
        .header("accept", "application/json, text/event-stream")
        .header("x-api-key", key)
        .json(&body);
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_legacy_sse_upstream_is_served_as_streamable_http() {
    let (url, _state) = legacy_upstream("/messages?session={id}").await;
    let b =
        TestBroker::start(json!({"mcp_servers": {"old": {"url": url, "transport": "sse"}}})).await;
    let key = b
        .broker
        .issuer()
        .create_api_key("t", None)
        .unwrap()
        .1
        .expose()
        .to_string();
    let init = rpc(&b, &key, None, json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})).await;
    assert_eq!(init.status(), 200);
    let sid = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let init: Value = init.json().await.unwrap();
    assert_eq!(init["result"]["serverInfo"]["name"], "legacy");
    assert_eq!(
        rpc(
            &b,
            &key,
            Some(&sid),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
        )
        .await
        .status(),
        202
    );
    let tools: Value = rpc(
        &b,
        &key,
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(tools["result"]["tools"][0]["name"], "echo");
    let call: Value = rpc(&b, &key, Some(&sid), json!({"jsonrpc": "2.0", "id": "c3", "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "old but gold"}}})).await.json().await.unwrap();
    assert_eq!(call["id"], "c3");
    assert_eq!(call["result"]["content"][0]["text"], "old but gold");
    let other = b
        .broker
        .issuer()
        .create_api_key("other", None)
        .unwrap()
        .1
        .expose()
        .to_string();
    assert_eq!(
        rpc(
            &b,
            &other,
            Some(&sid),
            json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"})
        )
        .await
        .status(),
        404,
        "sessions are bound to their client"
    );
    let deleted = http()
        .delete(b.client_url("old"))
        .header("x-api-key", &key)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        rpc(
            &b,
            &key,
            Some(&sid),
            json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"})
        )
        .await
        .status(),
        404
    );
}

#[tokio::test]
async fn a_legacy_endpoint_on_another_origin_is_refused() {
    let (url, _state) = legacy_upstream("http://127.0.0.2:9/steal?session={id}").await;
    let b =
        TestBroker::start(json!({"mcp_servers": {"old": {"url": url, "transport": "sse"}}})).await;
    let key = b
        .broker
        .issuer()
        .create_api_key("t", None)
        .unwrap()
        .1
        .expose()
        .to_string();
    let r = rpc(
        &b,
        &key,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not on the server's own origin"),
        "{body}"
    );
}

#[tokio::test]
async fn a_relayed_message_rejected_with_401_gets_one_fresh_credential_and_one_retry() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    std::env::set_var("GATEWAY_LEGACY_M2M_SECRET", "m2m-secret");
    let b = TestBroker::start(json!({"mcp_servers": {"old": {
        "url": up.sse_url, "transport": "sse", "auth_type": "oauth2",
        "oauth_flow": "client_credentials", "client_id": "m2m-client",
        "client_secret": "os.environ/GATEWAY_LEGACY_M2M_SECRET",
        "token_url": up.auth_server.token_url()}}}))
    .await;
    let key = b
        .broker
        .issuer()
        .create_api_key("t", None)
        .unwrap()
        .1
        .expose()
        .to_string();
    let init = rpc(&b, &key, None, json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})).await;
    assert_eq!(init.status(), 200);
    let sid = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 1);
    up.oauth().expire_access_tokens();
    let rejected = count(&up.counters().unauthorized);
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let tools: Value = rpc(&b, &key, Some(&sid), list).await.json().await.unwrap();
    assert!(tools["result"]["tools"].is_array(), "{tools}");
    assert_eq!(count(&up.counters().unauthorized), rejected + 1);
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 2);
}
