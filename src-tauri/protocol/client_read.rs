//! Reading a server's answer to one request: a JSON body or an event stream (capped), the
//! messages that come before the answer handed to the caller, and where a legacy stream stood
//! when it ended without the answer (so [`super::Client`] can resume it).

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

use super::super::envelope;
use super::super::raw::{Answer, RawResult};
use super::super::sse::{SseEvent, SseParser};
use super::ClientError;

/// The most read of one answer (JSON body, or the events of an SSE answer).
pub const MAX_ANSWER: usize = 4 * 1024 * 1024;
/// How many times a legacy event stream is resumed before the answer counts as lost.
pub const MAX_RESUMES: usize = 3;
/// The reconnection delay when a stream named none (the EventSource default is a few seconds;
/// one keeps a request's wait short).
pub const DEFAULT_RETRY_MS: u64 = 1000;

/// Where an event stream stood when it ended without the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    /// The last event ID the stream named (sent back as `Last-Event-ID`).
    pub last_event_id: Option<String>,
    /// The reconnection time the stream asked for (`retry:`), in milliseconds.
    pub retry_ms: Option<u64>,
}

pub(super) fn ended(what: &str) -> ClientError {
    ClientError::Protocol(format!("the {what} event stream ended without the answer"))
}

/// Reads the answer to `id` from a JSON or SSE response.
pub async fn read_answer(
    response: reqwest::Response,
    id: &Value,
    what: &str,
    on_message: &mut (dyn FnMut(Value) + Send),
) -> Result<Value, ClientError> {
    let mut resume = Resume::default();
    read_resumable(response, id, what, on_message, &mut resume)
        .await?
        .ok_or_else(|| ended(what))
}

/// [`read_answer`], except that an event stream ending before the answer is `Ok(None)` with
/// `resume` saying where it stood (a stream that broke off too, once it has named an event ID).
pub async fn read_resumable(
    response: reqwest::Response,
    id: &Value,
    what: &str,
    on_message: &mut (dyn FnMut(Value) + Send),
    resume: &mut Resume,
) -> Result<Option<Value>, ClientError> {
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        return read_json(response, id, what).await.map(Some);
    }
    if !content_type.starts_with("text/event-stream") {
        return Err(ClientError::Protocol(format!(
            "{what} answered with content type \"{content_type}\" instead of application/json or text/event-stream"
        )));
    }
    read_events(response, id, what, on_message, resume).await
}

/// The JSON-RPC response to `id` in a JSON body.
async fn read_json(
    response: reqwest::Response,
    id: &Value,
    what: &str,
) -> Result<Value, ClientError> {
    let body = read_body(response, MAX_ANSWER).await?;
    answer_in(&body, id, what)
}

/// [`read_answer`], except that a plain result in a JSON body is kept as the text the server
/// wrote ([`RawResult`]), for a caller that passes it on.
pub async fn read_answer_raw(
    response: reqwest::Response,
    id: &Value,
    what: &str,
    on_message: &mut (dyn FnMut(Value) + Send),
) -> Result<Answer, ClientError> {
    let json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !json {
        // Boxed: an event stream's reader is large, and inline it would make every caller's
        // future (moved, and copied when boxed, on every request) as large as it.
        let streamed = Box::pin(read_answer(response, id, what, on_message));
        return streamed.await.map(Answer::Value);
    }
    let body = read_body(response, MAX_ANSWER).await?;
    answer_from(body, id, what)
}

/// A JSON answer's whole body (at most [`MAX_ANSWER`] bytes), for a caller that passes it on as
/// it is when it can ([`crate::protocol::raw::must_be_read`]) and else reads it with
/// [`answer_from`].
pub async fn read_json_body(response: reqwest::Response) -> Result<Bytes, ClientError> {
    read_body(response, MAX_ANSWER).await
}

/// The answer to `id` in a JSON body, as [`read_answer_raw`] reads it.
pub fn answer_from(body: Bytes, id: &Value, what: &str) -> Result<Answer, ClientError> {
    if let Some(raw) = RawResult::read(body.clone(), id) {
        return Ok(Answer::Raw(raw));
    }
    answer_in(&body, id, what).map(Answer::Value)
}

/// The JSON-RPC response to `id` in a JSON body (read as UTF-8, lossy).
fn answer_in(body: &[u8], id: &Value, what: &str) -> Result<Value, ClientError> {
    let text = String::from_utf8_lossy(body);
    let body: Value = serde_json::from_str(&text)
        .map_err(|e| ClientError::Protocol(format!("{what} answered invalid JSON ({e})")))?;
    envelope::find_answer(body, id).ok_or_else(|| {
        ClientError::Protocol(format!(
            "{what} answered JSON that is not the JSON-RPC response to it"
        ))
    })
}

/// The response to `id` from an event stream; other messages go to `on_message`.
async fn read_events(
    response: reqwest::Response,
    id: &Value,
    what: &str,
    on_message: &mut (dyn FnMut(Value) + Send),
    resume: &mut Resume,
) -> Result<Option<Value>, ClientError> {
    let mut parser = SseParser::default();
    let mut stream = response.bytes_stream();
    let mut read = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(_) if parser.last_event_id().is_some() => break,
            Err(e) => {
                return Err(ClientError::Unreachable(format!(
                    "the {what} event stream broke off: {e}"
                )))
            }
        };
        read += chunk.len();
        if read > MAX_ANSWER {
            return Err(ClientError::Protocol(format!(
                "the {what} event stream exceeded {MAX_ANSWER} bytes without the answer"
            )));
        }
        let events = parser.push(&chunk);
        for event in events.into_iter().filter(SseEvent::carries_message) {
            let Ok(message) = serde_json::from_str::<Value>(&event.data) else {
                continue;
            };
            if envelope::answers(&message, id) {
                return Ok(Some(message));
            }
            on_message(message);
        }
    }
    if let Some(last) = parser.last_event_id() {
        resume.last_event_id = Some(last.to_string());
    }
    resume.retry_ms = parser.reconnection_ms().or(resume.retry_ms);
    Ok(None)
}

/// Reads at most `cap` bytes of a body as text (lossy).
pub async fn read_capped(response: reqwest::Response, cap: usize) -> Result<String, ClientError> {
    let body = read_body(response, cap).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Reads a whole body of at most `cap` bytes, then yields once.
///
/// Reading a body to its end wakes the connection's own task (the connection goes back to the
/// pool). Without the yield that task runs on this worker after the caller has written its
/// answer; with it, the connection's work is done first. The proxy benchmark's `/mcp` rows
/// measure the difference (docs/benchmarks.md): in session 21 the added p50 (1.31–1.36× the
/// floor's without it, 1.21–1.25× with it); in session 24, once request bodies were read by a
/// task of their own, the requests/s at c=32 (2025-11-25 0.77–0.84× without it, 0.86–0.89× with
/// it; 2026-07-28 0.81–0.82× against 0.84–0.87×), the added p50 even.
async fn read_body(response: reqwest::Response, cap: usize) -> Result<Bytes, ClientError> {
    let body = read_whole(response, cap).await;
    tokio::task::yield_now().await;
    body
}

/// A whole body of at most `cap` bytes; one that came in one piece is not copied.
async fn read_whole(response: reqwest::Response, cap: usize) -> Result<Bytes, ClientError> {
    let mut stream = response.bytes_stream();
    let mut first: Option<Bytes> = None;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ClientError::Unreachable(format!("the answer broke off: {e}")))?;
        match first.take() {
            None if out.is_empty() => first = Some(chunk),
            held => {
                out.extend_from_slice(&held.unwrap_or_default());
                out.extend_from_slice(&chunk);
            }
        }
        if out.len() + first.as_ref().map_or(0, Bytes::len) > cap {
            return Err(ClientError::Protocol(format!(
                "the answer is larger than {cap} bytes"
            )));
        }
    }
    Ok(first.unwrap_or_else(|| out.into()))
}

/// The error for a non-2xx answer to `what`, with the upstream's challenge and words.
pub(super) async fn failure(response: reqwest::Response, what: &str) -> ClientError {
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let text = read_capped(response, 2048).await.unwrap_or_default();
    ClientError::Status {
        what: what.to_string(),
        status,
        challenge,
        detail: text
            .chars()
            .take(300)
            .collect::<String>()
            .trim()
            .to_string(),
    }
}
