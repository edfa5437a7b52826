//! Per-server tool allow/deny lists (`allowed_tools`, `disallowed_tools`) on `/{server}/mcp`.
//! The rule is `ServerConfig::permits_tool` (exact names, deny wins); this module applies it.
//!
//! Only servers with lists ([`ServerConfig::filters_tools`]) pay anything: for them the proxy
//! parses the POSTed body once ([`plan`]); every other server keeps the zero-copy path.
//! - A `tools/call` of a hidden tool is answered here (JSON-RPC error -32602 naming tool, server
//!   and fix) and never forwarded.
//! - The answer to a `tools/list` is read whole, capped at [`MAX_LIST_ANSWER`] (over it: a
//!   JSON-RPC error, never a 500), and returned in its own content type without the hidden
//!   tools. SSE answers keep their other events, `id`, `event` and `retry`; reading stops once
//!   every awaited `tools/list` is answered. Answers the broker cannot parse carry no list a
//!   client could read, and are passed on as they came.
//! - Modern (2026-07-28) traffic takes the same path: a hidden tool in a modern `tools/call` is
//!   refused with the same JSON-RPC error (the protocol's own form for an unknown tool), and a
//!   modern list answer loses only hidden tools: `resultType`, `ttlMs`, `cacheScope` and
//!   `nextCursor` stay as the upstream sent them. `subscriptions/listen` streams carry no lists
//!   and pass as they come.
//! - Batches (JSON arrays, sent by 2025-03-26 clients): every `tools/list` in the batch is
//!   filtered; a batch with any hidden `tools/call` is refused whole (each request gets an
//!   error; the others say why they were not sent), because forwarding part of a batch would
//!   mean splitting it and re-joining the upstream's answers.
//!
//! Legacy HTTP+SSE upstreams (`legacy.rs`) get the same refusals from [`plan`] and filter their
//! `tools/list` answers with [`filter_answer`].
//! - A client's GET stream (which may replay answers after a dropped POST stream, without saying
//!   which request they answer) is rewritten event by event as it passes ([`filter_stream`]):
//!   every response carrying a tool list loses the hidden tools. SSE comments (keep-alives) do
//!   not pass on such a stream.

use std::fmt::Write as _;

use axum::body::{Body, Bytes};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::proxy::{unreachable, HEADERS_TIMEOUT};
use crate::config::ServerConfig;
use crate::protocol::sse::{SseEvent, SseParser};
use crate::upstream::UpstreamError;

/// Largest `tools/list` answer read to filter it (a list of hundreds of tools with big schemas
/// stays well below).
pub const MAX_LIST_ANSWER: usize = 8 * 1024 * 1024;
/// JSON-RPC "invalid params": what MCP servers answer for a tool they do not have.
const INVALID_PARAMS: i64 = -32602;

/// The ids of the `tools/list` requests in one forwarded body, whose answers get filtered.
#[derive(Debug)]
pub struct Lists {
    ids: Vec<Value>,
}

/// What the proxy does with one client request to `cfg`: `Ok(None)` forward it untouched,
/// `Ok(Some(lists))` forward it and filter the answer with [`Lists::rewrite`], `Err(answer)`
/// answer the client with this and send nothing upstream (boxed: the rare case).
pub fn plan(
    cfg: &ServerConfig,
    method: &Method,
    body: &Bytes,
) -> Result<Option<Lists>, Box<Response>> {
    if !cfg.filters_tools() || method != Method::POST {
        return Ok(None);
    }
    // Not JSON: the upstream answers the parse error; no tool runs.
    let Ok(message) = serde_json::from_slice::<Value>(body) else {
        return Ok(None);
    };
    let messages = match &message {
        Value::Array(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    if messages.iter().any(|m| hidden_call(cfg, m).is_some()) {
        return Err(Box::new(refuse(cfg, messages, message.is_array())));
    }
    let ids: Vec<Value> = messages
        .iter()
        .filter(|m| m.get("method").and_then(Value::as_str) == Some("tools/list"))
        .filter_map(|m| m.get("id").filter(|id| !id.is_null()).cloned())
        .collect();
    Ok((!ids.is_empty()).then_some(Lists { ids }))
}

/// Why `message` may not be sent, when it is a `tools/call` of a tool `cfg` hides.
fn hidden_call(cfg: &ServerConfig, message: &Value) -> Option<String> {
    if message.get("method").and_then(Value::as_str) != Some("tools/call") {
        return None;
    }
    let server = cfg.name.as_str();
    match message.pointer("/params/name").and_then(Value::as_str) {
        Some(tool) if cfg.permits_tool(tool) => None,
        Some(tool) => Some(format!(
            "tool \"{tool}\" is not available through the broker: its config for server \
             \"{server}\" hides it (allowed_tools/disallowed_tools). Use another tool, or ask \
             the broker's admin to allow it by editing allowed_tools/disallowed_tools for \
             \"{server}\" in the broker's config file"
        )),
        None => Some(format!(
            "tools/call needs params.name (a string): the broker checks it against \
             allowed_tools/disallowed_tools of server \"{server}\"; send the tool's name"
        )),
    }
}

/// The answer to a body with a hidden `tools/call`: an error for every request in it (a lone
/// notification or a batch of them gets 202, as the upstream would).
fn refuse(cfg: &ServerConfig, messages: &[Value], batch: bool) -> Response {
    let server = cfg.name.as_str();
    let answers: Vec<Value> = messages
        .iter()
        .filter(|m| m.get("method").is_some())
        .filter_map(|m| {
            let id = m.get("id").filter(|id| !id.is_null())?;
            let (message, tool) = match hidden_call(cfg, m) {
                Some(why) => (why, m.pointer("/params/name").cloned()),
                None => (format!("not sent to server \"{server}\": this batch also calls a tool the broker's config hides (allowed_tools/disallowed_tools); send the other requests without it"), None),
            };
            Some(json!({"jsonrpc": "2.0", "id": id, "error": {"code": INVALID_PARAMS, "message": message,
                "data": {"server": server, "tool": tool, "reason": "tool_hidden_by_broker_config"}}}))
        })
        .collect();
    tracing::info!(server, "refused a tools/call of a tool the config hides");
    match (batch, answers.len()) {
        (_, 0) => StatusCode::ACCEPTED.into_response(),
        (true, _) => Json(Value::Array(answers)).into_response(),
        (false, _) => Json(answers.into_iter().next().unwrap_or_default()).into_response(),
    }
}

/// Removes the tools `cfg` hides from a `tools/list` result (a tool without a name goes too).
/// For every path that serves a server's tools. True when the result carries a tool list: the
/// caller then sends the message re-serialised from what was checked, never the upstream's own
/// bytes, so a client whose JSON parser reads a duplicated key differently (the first one wins)
/// cannot see a hidden tool.
pub fn strip_hidden(cfg: &ServerConfig, result: &mut Value) -> bool {
    let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) else {
        return false;
    };
    tools.retain(|t| {
        t.get("name")
            .and_then(Value::as_str)
            .is_some_and(|name| cfg.permits_tool(name))
    });
    true
}

/// Filters `answer` when it answers `request`, a `tools/list` to a server with lists (the
/// legacy transport, which pairs requests and answers itself).
pub fn filter_answer(cfg: &ServerConfig, request: &Value, answer: &mut Value) {
    if cfg.filters_tools() && request.get("method").and_then(Value::as_str) == Some("tools/list") {
        if let Some(result) = answer.get_mut("result") {
            strip_hidden(cfg, result);
        }
    }
}

/// Filters every response in `message` (one or a batch) that carries a tool list, whatever it
/// answers (on a GET stream nothing says which request a replayed answer is for). True when one
/// carried a list (see [`strip_hidden`]).
fn strip_any(cfg: &ServerConfig, message: &mut Value) -> bool {
    match message {
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, m| strip_any(cfg, m) | changed),
        Value::Object(map) if !map.contains_key("method") => map
            .get_mut("result")
            .is_some_and(|result| strip_hidden(cfg, result)),
        _ => false,
    }
}

/// A client's GET stream from a server with lists, every replayed tool list filtered as it
/// passes: events are rewritten one at a time, never gathered, so the stream stays live. An
/// event over [`MAX_LIST_ANSWER`] ends the stream (the client reconnects).
pub fn filter_stream(cfg: &ServerConfig, method: &Method, response: Response) -> Response {
    if !cfg.filters_tools()
        || method != Method::GET
        || !response.status().is_success()
        || content_kind(&response).as_deref() != Some("text/event-stream")
    {
        return response;
    }
    let cfg = cfg.clone();
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    let mut parser = SseParser::default();
    let events = body.into_data_stream().map(move |chunk| {
        let mut out = String::new();
        for event in parser.push(&chunk?) {
            let rewritten = (event.event == "message")
                .then(|| serde_json::from_str::<Value>(&event.data).ok())
                .flatten()
                .and_then(|mut m| strip_any(&cfg, &mut m).then_some(m));
            match rewritten {
                Some(message) => write_event(&mut out, &event, &message.to_string()),
                None => write_event(&mut out, &event, &event.data),
            }
        }
        if parser.buffered() > MAX_LIST_ANSWER {
            return Err(axum::Error::new(format!(
                "an event on server \"{}\"'s stream is larger than {MAX_LIST_ANSWER} bytes",
                cfg.name
            )));
        }
        Ok(Bytes::from(out))
    });
    Response::from_parts(parts, Body::from_stream(events))
}

/// The media type of a response, lower-cased, without parameters.
fn content_kind(response: &Response) -> Option<String> {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
}

/// Filters every response in `message` (one or a batch) answering one of the awaited `ids`, a
/// repeated answer too; answered ids leave `pending`. True when one carried a tool list (see
/// [`strip_hidden`]).
fn strip_answers(
    cfg: &ServerConfig,
    message: &mut Value,
    ids: &[Value],
    pending: &mut Vec<Value>,
) -> bool {
    match message {
        Value::Array(items) => items.iter_mut().fold(false, |carried, m| {
            strip_answers(cfg, m, ids, pending) | carried
        }),
        Value::Object(map) if !map.contains_key("method") => {
            let Some(id) = map
                .get("id")
                .filter(|id| ids.iter().any(|a| same_id(a, id)))
            else {
                return false;
            };
            if let Some(at) = pending.iter().position(|p| same_id(p, id)) {
                pending.swap_remove(at);
            }
            map.get_mut("result")
                .is_some_and(|result| strip_hidden(cfg, result))
        }
        _ => false,
    }
}

/// Whether two JSON-RPC ids name the same request for a client: numbers by value (`1` and `1.0`
/// are one number in JavaScript), everything else exactly.
fn same_id(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

impl Lists {
    /// The upstream's answer (headers already filtered by the proxy) without the hidden tools,
    /// in the same content type. Errors are for the proxy's JSON-RPC failure answer.
    pub async fn rewrite(
        &self,
        cfg: &ServerConfig,
        response: Response,
    ) -> Result<Response, UpstreamError> {
        let sse = match content_kind(&response).as_deref() {
            Some("application/json") => false,
            Some("text/event-stream") => true,
            _ => return Ok(response),
        };
        if !response.status().is_success() {
            return Ok(response);
        }
        let (mut parts, body) = response.into_parts();
        parts.headers.remove(CONTENT_LENGTH);
        let read = async {
            if sse {
                self.rewrite_sse(cfg, body).await
            } else {
                self.rewrite_json(cfg, body).await
            }
        };
        let body = tokio::time::timeout(HEADERS_TIMEOUT, read)
            .await
            .map_err(|_| {
                unreachable(
                    cfg,
                    format!(
                        "the tools/list answer did not finish within {} s",
                        HEADERS_TIMEOUT.as_secs()
                    ),
                )
            })??;
        Ok(Response::from_parts(parts, Body::from(body)))
    }

    async fn rewrite_json(&self, cfg: &ServerConfig, body: Body) -> Result<Bytes, UpstreamError> {
        let mut bytes = Vec::new();
        read_capped(cfg, body, |chunk| {
            bytes.extend_from_slice(chunk);
            false
        })
        .await?;
        let Ok(mut message) = serde_json::from_slice::<Value>(&bytes) else {
            return Ok(bytes.into());
        };
        // The whole answer is read: no ids left to track.
        if !strip_answers(cfg, &mut message, &self.ids, &mut Vec::new()) {
            return Ok(bytes.into());
        }
        Ok(serde_json::to_vec(&message).unwrap_or(bytes).into())
    }

    async fn rewrite_sse(&self, cfg: &ServerConfig, body: Body) -> Result<Bytes, UpstreamError> {
        let mut parser = SseParser::default();
        let mut pending = self.ids.clone();
        let mut out = String::new();
        read_capped(cfg, body, |chunk| {
            for event in parser.push(chunk) {
                let rewritten = (event.event == "message")
                    .then(|| serde_json::from_str::<Value>(&event.data).ok())
                    .flatten()
                    .and_then(|mut m| {
                        strip_answers(cfg, &mut m, &self.ids, &mut pending).then_some(m)
                    });
                match rewritten {
                    Some(message) => write_event(&mut out, &event, &message.to_string()),
                    None => write_event(&mut out, &event, &event.data),
                }
            }
            pending.is_empty()
        })
        .await?;
        Ok(out.into())
    }
}

/// Reads `body` chunk by chunk into `take` (which returns true when it has all it needs), at
/// most [`MAX_LIST_ANSWER`] bytes.
async fn read_capped(
    cfg: &ServerConfig,
    body: Body,
    mut take: impl FnMut(&Bytes) -> bool,
) -> Result<(), UpstreamError> {
    let mut stream = body.into_data_stream();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| unreachable(cfg, format!("the tools/list answer broke off: {e}")))?;
        total += chunk.len();
        if total > MAX_LIST_ANSWER {
            return Err(UpstreamError::Protocol {
                server: cfg.name.to_string(),
                detail: format!("its tools/list answer is larger than {MAX_LIST_ANSWER} bytes, and the broker reads it whole to apply allowed_tools/disallowed_tools; ask the server's owner about the size, or remove the lists from the broker's config for this server"),
            });
        }
        if take(&chunk) {
            break;
        }
    }
    Ok(())
}

/// One event as `text/event-stream` text (`data` may span lines).
fn write_event(out: &mut String, event: &SseEvent, data: &str) {
    if let Some(retry) = event.retry {
        let _ = writeln!(out, "retry: {retry}");
    }
    if let Some(id) = &event.id {
        let _ = writeln!(out, "id: {id}");
    }
    let _ = writeln!(out, "event: {}", event.event);
    for line in data.split('\n') {
        let _ = writeln!(out, "data: {line}");
    }
    out.push('\n');
}

#[cfg(test)]
#[path = "toolfilter_tests.rs"]
mod tests;
