//! The older HTTP+SSE transport on the test upstream: `GET /sse` opens the stream and names the
//! message endpoint (`/messages?sessionId=…`); POSTs there answer 202 and the responses travel
//! on the stream.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::mcp::{answer, check_auth, priming_frame, result, sse_body, sse_frame};
use super::random_token;
use super::upstream::{ResponseMode, UpstreamState};

pub(crate) async fn stream(State(s): State<Arc<UpstreamState>>, headers: HeaderMap) -> Response {
    if let Err(r) = check_auth(&s, ("GET", "/sse"), &headers) {
        return *r;
    }
    let id = random_token();
    let (tx, rx) = mpsc::channel(16);
    let endpoint = Bytes::from(format!(
        "event: endpoint\ndata: /messages?sessionId={id}\n\n"
    ));
    tx.send(endpoint).await.expect("fresh channel");
    s.legacy.lock().unwrap().insert(id, tx);
    (
        [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
        ],
        sse_body(rx),
    )
        .into_response()
}

pub(crate) async fn message(
    State(s): State<Arc<UpstreamState>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = check_auth(&s, ("POST", "/messages"), &headers) {
        return *r;
    }
    let tx = q
        .get("sessionId")
        .and_then(|id| s.legacy.lock().unwrap().get(id).cloned());
    let Some(tx) = tx else {
        return (StatusCode::NOT_FOUND, "unknown session").into_response();
    };
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let (Some(method), Some(id)) = (
        msg.get("method").and_then(Value::as_str),
        msg.get("id").cloned(),
    ) else {
        s.counters.notifications.fetch_add(1, Ordering::SeqCst);
        return StatusCode::ACCEPTED.into_response();
    };
    let reply = if method == "initialize" {
        s.counters.initialize.fetch_add(1, Ordering::SeqCst);
        result(
            &id,
            json!({"protocolVersion": "2024-11-05", "capabilities": {"tools": {}}, "serverInfo": {"name": "test-upstream-legacy", "version": "1.0.0"}}),
        )
    } else {
        answer(&s, method, &id, &msg)
    };
    if *s.response.lock().unwrap() == ResponseMode::SsePrimed {
        let _ = tx.send(priming_frame()).await;
    }
    let _ = tx.send(sse_frame(&reply)).await;
    StatusCode::ACCEPTED.into_response()
}
