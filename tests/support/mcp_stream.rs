//! The test upstream's event streams: SSE frames, a response as JSON or as a one-event stream,
//! a 2025 session's GET stream and its DELETE.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use tokio::sync::mpsc;

use super::mcp::{check_auth, session_ok};
use super::upstream::{ResponseMode, UpstreamEra, UpstreamState};

pub(crate) fn sse_frame(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

/// The TypeScript SDK's priming event, byte for byte: an id, a retry and empty data.
pub(crate) fn priming_frame() -> Bytes {
    Bytes::from(format!(
        "id: {}\nretry: 1000\ndata: \n\n",
        super::random_token()
    ))
}

/// One JSON-RPC response, as JSON or as a one-event SSE stream.
pub(crate) fn reply(mode: ResponseMode, message: Value, session: Option<&str>) -> Response {
    let mut response = match mode {
        ResponseMode::Json => Json(message).into_response(),
        ResponseMode::Sse | ResponseMode::SsePrimed => {
            let mut body = Vec::new();
            if mode == ResponseMode::SsePrimed {
                body.extend_from_slice(&priming_frame());
            }
            body.extend_from_slice(&sse_frame(&message));
            (
                [
                    ("content-type", "text/event-stream"),
                    ("cache-control", "no-cache"),
                ],
                body,
            )
                .into_response()
        }
    };
    if let Some(id) = session {
        response
            .headers_mut()
            .insert("mcp-session-id", id.parse().unwrap());
    }
    response
}

pub(crate) fn sse_body(rx: mpsc::Receiver<Bytes>) -> Body {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Body::from_stream(stream)
}

pub(crate) async fn get(State(s): State<Arc<UpstreamState>>, headers: HeaderMap) -> Response {
    if let Err(r) = check_auth(&s, ("GET", "/mcp"), &headers) {
        return *r;
    }
    if s.era == UpstreamEra::Modern {
        return super::modern::not_allowed();
    }
    if !s.get_stream {
        return (StatusCode::METHOD_NOT_ALLOWED, [("allow", "POST, DELETE")]).into_response();
    }
    if let Err(r) = session_ok(&s, &headers) {
        return *r;
    }
    let mut changes = s.notes.subscribe();
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        while let Ok(note) = changes.recv().await {
            if tx.send(sse_frame(&note)).await.is_err() {
                return;
            }
        }
    });
    s.counters.get_streams.fetch_add(1, Ordering::SeqCst);
    (
        [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
        ],
        sse_body(rx),
    )
        .into_response()
}

pub(crate) async fn delete(State(s): State<Arc<UpstreamState>>, headers: HeaderMap) -> Response {
    if let Err(r) = check_auth(&s, ("DELETE", "/mcp"), &headers) {
        return *r;
    }
    if s.era == UpstreamEra::Modern {
        return super::modern::not_allowed();
    }
    let id = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if s.sessions.lock().unwrap().remove(id) {
        StatusCode::OK.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}
