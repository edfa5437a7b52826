//! Reading from an upstream of a link: the answer to one request (JSON or an event stream, with
//! the notifications on the way), and the GET stream the link follows for list changes.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

use super::link::{protocol, LinkError, Wire, MAX_MESSAGE};
use crate::config::ServerConfig;
use crate::protocol::sse::SseParser;
use crate::upstream::http::{describe_reqwest, unreachable};

/// Failed GET-stream connects in a row before the link stops listening.
const MAX_RECONNECTS: u32 = 6;

/// Reads the answer with JSON-RPC `id` from a JSON or SSE response. `out`: where notifications
/// and the upstream's passed-on requests go while the answer streams, and the link they came on
/// (none during `initialize`, when they are dropped).
pub(super) async fn read_answer(
    cfg: &ServerConfig,
    response: reqwest::Response,
    id: u64,
    out: Option<(&mpsc::Sender<Value>, &Arc<Wire>)>,
) -> Result<Value, LinkError> {
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut stream = response.bytes_stream();
    let sse = content_type.starts_with("text/event-stream");
    if !sse && !content_type.starts_with("application/json") {
        return Err(protocol(cfg, format!("the upstream answered with content type \"{content_type}\" instead of JSON or an event stream")).into());
    }
    let mut parser = SseParser::default();
    let mut json = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            unreachable(
                cfg,
                format!("the answer broke off: {}", describe_reqwest(&e)),
            )
        })?;
        if !sse {
            json.extend_from_slice(&chunk);
            if json.len() > MAX_MESSAGE {
                return Err(protocol(
                    cfg,
                    format!("the answer is larger than {MAX_MESSAGE} bytes"),
                )
                .into());
            }
            continue;
        }
        for event in parser.push(&chunk) {
            let Ok(message) = serde_json::from_str::<Value>(&event.data) else {
                continue;
            };
            if is_answer(&message, id) {
                return Ok(message);
            }
            let Some((out, wire)) = out else { continue };
            let passed = match (message.get("id"), message.get("method")) {
                (Some(_), Some(_)) => wire.on_request(&message),
                (Some(_), None) => None, // an answer to some other request
                (None, _) => wire.on_note(message),
            };
            if let Some(message) = passed {
                let _ = out.send(message).await;
            }
        }
        if parser.buffered() > MAX_MESSAGE {
            return Err(protocol(
                cfg,
                format!("an event of the answer is larger than {MAX_MESSAGE} bytes"),
            )
            .into());
        }
    }
    if sse {
        return Err(protocol(cfg, "the event stream ended without the answer".into()).into());
    }
    let message: Value = serde_json::from_slice(&json)
        .map_err(|e| protocol(cfg, format!("the answer is not JSON ({e})")))?;
    let found = match message {
        Value::Array(items) => items.into_iter().find(|m| is_answer(m, id)),
        m => is_answer(&m, id).then_some(m),
    };
    found.ok_or_else(|| {
        protocol(
            cfg,
            "the answer is not the JSON-RPC response to the request".into(),
        )
        .into()
    })
}

fn is_answer(message: &Value, id: u64) -> bool {
    message.get("id").and_then(Value::as_u64) == Some(id)
        && (message.get("result").is_some() || message.get("error").is_some())
}

/// Follows the upstream's GET stream and passes its notifications to the client session.
/// Reconnects with backoff (at least 2 s after a stream that was open); stops on 405 (no stream
/// offered), a forgotten session, or after [`MAX_RECONNECTS`] failed connects in a row.
pub(super) async fn listen(wire: Arc<Wire>, changes: broadcast::Sender<Value>) {
    let upstream = wire.broker.upstream();
    let mut failures = 0;
    while failures < MAX_RECONNECTS {
        if failures > 0 {
            tokio::time::sleep(Duration::from_secs(1 << failures.min(5))).await;
        }
        failures += 1;
        let Ok(credential) = upstream.credential(&wire.cfg).await else {
            continue;
        };
        let Ok(headers) = wire.headers(&credential, "text/event-stream") else {
            return;
        };
        let Ok(response) = upstream
            .http()
            .get(wire.cfg.url.clone())
            .headers(headers)
            .send()
            .await
        else {
            continue;
        };
        match response.status() {
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_FOUND => return,
            StatusCode::UNAUTHORIZED => {
                let _ = upstream.after_rejection(&wire.cfg, &credential).await;
                continue;
            }
            s if !s.is_success() => continue,
            _ => failures = 1,
        }
        let mut parser = SseParser::default();
        let mut stream = response.bytes_stream();
        while let Some(Ok(chunk)) = stream.next().await {
            for event in parser.push(&chunk) {
                let Ok(message) = serde_json::from_str::<Value>(&event.data) else {
                    continue;
                };
                let passed = match (message.get("id"), message.get("method")) {
                    (Some(_), Some(_)) => wire.on_request(&message),
                    (Some(_), None) => None, // an answer replayed for a request already read
                    (None, _) => wire.on_note(message),
                };
                if let Some(message) = passed {
                    let _ = changes.send(message);
                }
            }
            if parser.buffered() > MAX_MESSAGE {
                break;
            }
        }
    }
}
