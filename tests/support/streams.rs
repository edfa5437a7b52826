//! The test upstream's tools whose answers stream: `slow_stream` (progress events released by
//! the test) and `ask_client` (requests to the client, e.g. `sampling/createMessage`, sent on the
//! answer's event stream; the result lists the client's answers).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::mcp::{result, sse_body, sse_frame, text_result};
use super::upstream::UpstreamState;

/// How long `ask_client` waits for each answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(20);

/// The `ask_client` tool for a tool list: arguments `{"requests": [{"method", "params"}...]}`.
pub fn ask_client_tool() -> Value {
    json!({"name": "ask_client", "description": "Sends each request to the client and returns its answers", "inputSchema": {"type": "object", "properties": {"requests": {"type": "array"}}, "required": ["requests"]}})
}

fn event_stream(rx: mpsc::Receiver<axum::body::Bytes>) -> Response {
    (
        [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
        ],
        sse_body(rx),
    )
        .into_response()
}

/// An SSE response with `steps` progress notifications, each waiting for
/// [`super::TestUpstream::release_event`], then the result (with `resultType` when `modern`).
pub(crate) fn slow_stream(
    s: Arc<UpstreamState>,
    id: Value,
    msg: &Value,
    steps: u64,
    modern: bool,
) -> Response {
    let token = msg
        .pointer("/params/_meta/progressToken")
        .cloned()
        .unwrap_or(json!("slow"));
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        for i in 1..=steps {
            let Ok(permit) = s.gate.acquire().await else {
                return;
            };
            permit.forget();
            let note = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, "progress": i, "total": steps}});
            if tx.send(sse_frame(&note)).await.is_err() {
                return;
            }
            s.counters.stream_events.fetch_add(1, Ordering::SeqCst);
        }
        let mut done = text_result(&format!("streamed {steps}"));
        if modern {
            done["resultType"] = json!("complete");
        }
        let _ = tx.send(sse_frame(&result(&id, done))).await;
    });
    event_stream(rx)
}

/// Sends each request of the call to the client on the answer's event stream (ids `ask-N`) and
/// waits for its answer (POSTed back, see [`answered`]); the result's text is the JSON array of
/// the answers (`null` for one that did not come within [`ASK_TIMEOUT`]).
pub(crate) fn ask_client(s: Arc<UpstreamState>, id: Value, msg: &Value) -> Response {
    let requests = msg
        .pointer("/params/arguments/requests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut answers = Vec::new();
        for r in requests {
            let n = s.counters.asked.fetch_add(1, Ordering::SeqCst);
            let ask_id = format!("ask-{n}");
            let (done, answer) = oneshot::channel();
            s.asks.lock().unwrap().insert(ask_id.clone(), done);
            let request = json!({"jsonrpc": "2.0", "id": ask_id, "method": r["method"], "params": r["params"]});
            if tx.send(sse_frame(&request)).await.is_err() {
                return;
            }
            let got = tokio::time::timeout(ASK_TIMEOUT, answer).await;
            answers.push(got.ok().and_then(Result::ok).unwrap_or(Value::Null));
        }
        let text = Value::Array(answers).to_string();
        let _ = tx.send(sse_frame(&result(&id, text_result(&text)))).await;
    });
    event_stream(rx)
}

/// A client's answer to an `ask_client` request: handed to the waiting call.
pub(crate) fn answered(s: &UpstreamState, answer: &Value) {
    let Some(id) = answer.get("id").and_then(Value::as_str) else {
        return;
    };
    if let Some(waiting) = s.asks.lock().unwrap().remove(id) {
        let _ = waiting.send(answer.clone());
    }
}
