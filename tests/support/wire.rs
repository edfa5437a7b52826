//! Talking to an MCP endpoint by hand, in either era, for tests that must see the wire: modern
//! requests with `_meta` and exactly the headers a conforming client sends (each overridable),
//! `subscriptions/listen` streams, legacy sessions and their server→client elicitation.

use futures_util::StreamExt;
use mcp_auth_broker::protocol::sse::SseParser;
use mcp_auth_broker::protocol::{headers, meta, MODERN_VERSION};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

/// How long the helpers wait for one message.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A plain HTTP client (no redirects followed beyond reqwest's default).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::new()
}

/// A modern request body with `_meta` (and elicitation declared when `elicit`).
pub fn modern_request(id: u64, method: &str, params: Value, elicit: bool) -> Value {
    let caps = if elicit {
        json!({"elicitation": {}})
    } else {
        json!({})
    };
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": meta::with_modern_meta(params, &caps)})
}

/// POSTs `body` with the headers a conforming modern client sends, then `extra` (which may
/// override them; an empty value removes the header).
pub async fn modern_post(url: &str, body: &Value, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        "accept",
        "application/json, text/event-stream".parse().unwrap(),
    );
    h.insert(headers::PROTOCOL_VERSION, MODERN_VERSION.parse().unwrap());
    for (name, value) in headers::standard(body) {
        h.insert(name, value.parse().unwrap());
    }
    for (name, value) in extra {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap();
        if value.is_empty() {
            h.remove(&name);
        } else {
            h.insert(name, value.parse().unwrap());
        }
    }
    http_client()
        .post(url)
        .headers(h)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The JSON-RPC message of a JSON response, or the JSON-RPC response (`result`/`error`) among
/// the events of an SSE one (events without data and notifications before it are skipped).
pub async fn read_message(resp: reqwest::Response) -> Value {
    let sse = resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream");
    let text = resp.text().await.unwrap();
    if !sse {
        return serde_json::from_str(&text).unwrap();
    }
    let mut parser = SseParser::default();
    let messages: Vec<Value> = parser
        .push(format!("{text}\n\n").as_bytes())
        .into_iter()
        .filter_map(|e| serde_json::from_str(&e.data).ok())
        .collect();
    let answer = messages
        .iter()
        .find(|m| m.get("result").is_some() || m.get("error").is_some());
    answer
        .or(messages.last())
        .cloned()
        .unwrap_or_else(|| panic!("no JSON-RPC message in the event stream: {text}"))
}

/// Status and JSON-RPC error code of a refused request.
pub async fn refusal(resp: reqwest::Response) -> (u16, i64, Value) {
    let status = resp.status().as_u16();
    let m: Value = resp.json().await.unwrap();
    (
        status,
        m["error"]["code"].as_i64().unwrap(),
        m["error"].clone(),
    )
}

/// Opens `subscriptions/listen` and returns the event stream's messages as they arrive.
pub async fn listen(url: &str, id: u64, filter: Value) -> UnboundedReceiver<Value> {
    let body = modern_request(
        id,
        "subscriptions/listen",
        json!({"notifications": filter}),
        false,
    );
    let resp = modern_post(url, &body, &[]).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    stream_messages(resp)
}

/// The JSON-RPC messages of an SSE response, as they arrive (events without JSON skipped); the
/// channel closes when the stream ends.
pub fn stream_messages(resp: reqwest::Response) -> UnboundedReceiver<Value> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut parser = SseParser::default();
        let mut stream = resp.bytes_stream();
        while let Some(Ok(chunk)) = stream.next().await {
            for event in parser.push(&chunk) {
                if let Ok(message) = serde_json::from_str::<Value>(&event.data) {
                    let _ = tx.send(message);
                }
            }
        }
    });
    rx
}

/// The next message of a [`listen`] or [`stream_messages`] channel (panics after [`WAIT`] or when the stream ended).
pub async fn next_message(rx: &mut UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a message in time")
        .expect("stream open")
}

/// A legacy session on `url`: `initialize` (declaring elicitation); returns the session id.
pub async fn legacy_session(url: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {"elicitation": {}}, "clientInfo": {"name": "c", "version": "1"}}});
    let resp = http_client()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let session = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        read_message(resp).await["result"]["protocolVersion"],
        "2025-11-25"
    );
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let resp = legacy_post(url, &session, &initialized).await;
    assert_eq!(resp.status(), 202);
    session
}

/// POSTs `body` in a legacy session (with `Mcp-Session-Id` and `MCP-Protocol-Version: 2025-11-25`).
pub async fn legacy_post(url: &str, session: &str, body: &Value) -> reqwest::Response {
    http_client()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Calls `ask_user` in a legacy session, answers its `elicitation/create` with `answer`, and
/// returns (the elicitation request, the call's result).
pub async fn legacy_ask_user(url: &str, session: &str, answer: &str) -> (Value, Value) {
    let call = json!({"jsonrpc": "2.0", "id": 40, "method": "tools/call", "params": {"name": "ask_user", "arguments": {"question": "Deploy?"}}});
    let resp = legacy_post(url, session, &call).await;
    let mut stream = resp.bytes_stream();
    let mut parser = SseParser::default();
    let mut asked = Value::Null;
    loop {
        let chunk = tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("an event in time")
            .expect("the stream stays open")
            .unwrap();
        for e in parser.push(&chunk) {
            let Ok(m) = serde_json::from_str::<Value>(&e.data) else {
                continue;
            };
            if m["method"] == "elicitation/create" {
                let reply = json!({"jsonrpc": "2.0", "id": m["id"], "result": {"action": "accept", "content": {"answer": answer}}});
                let posted = legacy_post(url, session, &reply).await;
                assert_eq!(posted.status(), 202);
                asked = m;
            } else if m["id"] == 40 {
                return (asked, m["result"].clone());
            }
        }
    }
}

/// The first JSON-RPC message on a GET stream.
pub async fn first_on_get_stream(resp: reqwest::Response) -> Value {
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut parser = SseParser::default();
    tokio::time::timeout(WAIT, async {
        loop {
            let chunk = stream.next().await.unwrap().unwrap();
            let events = parser.push(&chunk).into_iter();
            if let Some(m) = events
                .filter_map(|e| serde_json::from_str(&e.data).ok())
                .next()
            {
                return m;
            }
        }
    })
    .await
    .expect("a message on the GET stream")
}
