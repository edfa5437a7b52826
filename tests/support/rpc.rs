//! A client's side of Streamable HTTP through the broker, as plain `reqwest` calls with an API
//! key: `initialize`, a session, `tools/call` of `echo`. Import explicitly
//! (`use support::rpc::{…}`), so test files keep their own helpers of the same names.

use serde_json::{json, Value};

/// An `initialize` request at protocol version 2025-11-25.
pub fn init() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "fault-test", "version": "1"}}})
}

/// A `tools/call` of `echo` with the text "still here".
pub fn call(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "still here"}}})
}

/// POSTs `body` to `url` with `key` as the bearer, outside any session.
pub async fn post(url: &str, key: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .json(body)
        .send()
        .await
        .expect("the broker answers")
}

/// POSTs `body` to `url` with `key` as the bearer, inside `session`.
pub async fn post_in(url: &str, key: &str, session: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(body)
        .send()
        .await
        .expect("the broker answers")
}

/// Initializes an MCP session through the broker; returns its id.
pub async fn session(url: &str, key: &str) -> String {
    let resp = post(url, key, &init()).await;
    assert_eq!(resp.status(), 200, "initialize via {url}");
    resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string()
}
