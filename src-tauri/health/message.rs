//! JSON-RPC messages of a probe and the words a status shows for upstream answers: building
//! requests, picking responses, reading capped bodies, describing failures without secrets.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, WWW_AUTHENTICATE};
use serde_json::{json, Value};

use super::probe::{ProbeError, MAX_BODY, SUPPORTED_VERSIONS};
use crate::upstream::Credential;

/// The probe's `initialize` request (id 1).
pub(super) fn initialize_message() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": SUPPORTED_VERSIONS[0],
        "capabilities": {},
        "clientInfo": {"name": "mcp-auth-broker-health", "version": env!("CARGO_PKG_VERSION")},
    }})
}

/// The version an `initialize` result negotiated, if the broker speaks it.
pub(super) fn negotiated_version(result: &Value) -> Result<String, ProbeError> {
    match result.get("protocolVersion").and_then(Value::as_str) {
        Some(v) if SUPPORTED_VERSIONS.contains(&v) => Ok(v.to_string()),
        Some(v) => Err(ProbeError::Protocol(format!("the server negotiated MCP protocol version {v}, which the broker does not speak (it speaks {})", SUPPORTED_VERSIONS.join(", ")))),
        None => Err(ProbeError::Protocol("the initialize result has no protocolVersion".into())),
    }
}

/// The tool count of one `tools/list` page and the next cursor.
pub(super) fn tools_page(result: &Value) -> Result<(usize, Option<String>), ProbeError> {
    let Some(list) = result.get("tools").and_then(Value::as_array) else {
        return Err(ProbeError::Protocol(
            "the tools/list result has no \"tools\" array".into(),
        ));
    };
    let next = result
        .get("nextCursor")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    Ok((list.len(), next))
}

/// The `result` of a JSON-RPC response to `what`, or its error as a protocol error.
pub(super) fn result_of(
    message: &Value,
    what: &str,
    secrets: &[String],
) -> Result<Value, ProbeError> {
    if let Some(error) = message.get("error") {
        let code = error.get("code").map(Value::to_string).unwrap_or_default();
        let msg = error.get("message").and_then(Value::as_str).unwrap_or("");
        return Err(ProbeError::Protocol(scrub(
            format!("{what} failed with JSON-RPC error {code}: {msg}"),
            secrets,
        )));
    }
    message
        .get("result")
        .cloned()
        .filter(Value::is_object)
        .ok_or_else(|| ProbeError::Protocol(format!("the {what} response has no result object")))
}

pub(super) fn headers(credential: &Credential) -> Result<HeaderMap, ProbeError> {
    let mut map = credential.header_map().map_err(ProbeError::Protocol)?;
    map.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    Ok(map)
}

/// Removes the token from text that will be shown.
pub(super) fn scrub(mut text: String, secrets: &[String]) -> String {
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        text = text.replace(secret.as_str(), "[redacted]");
    }
    text
}

/// Every secret value `credential` sends (token and configured header values), for [`scrub`].
pub(super) fn secrets_of(credential: &Credential) -> Vec<String> {
    let headers = credential
        .headers
        .iter()
        .map(|(_, v)| v.expose().to_string());
    credential
        .bearer
        .iter()
        .map(|b| b.expose().to_string())
        .chain(headers)
        .collect()
}

/// The error for a non-2xx answer to `what`, with the upstream's own words.
pub(super) async fn failure(
    response: reqwest::Response,
    what: &str,
    secrets: &[String],
) -> ProbeError {
    let status = response.status();
    let challenge = response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ");
    let text = read_capped(response, 2048).await.unwrap_or_default();
    let mut detail = format!("HTTP {status}");
    if !challenge.is_empty() {
        detail.push_str(&format!(" ({challenge})"));
    }
    let text = snippet(&text);
    if !text.is_empty() {
        detail.push_str(&format!(": {text}"));
    }
    let detail = scrub(detail, secrets);
    match status.as_u16() {
        401 | 403 => ProbeError::Rejected {
            status: status.as_u16(),
            detail,
        },
        500..=599 => ProbeError::Unreachable(format!("the server answered {detail}")),
        _ => ProbeError::Protocol(format!("{what} answered {detail}")),
    }
}

/// The response with `id` in a message or batch.
/// The JSON-RPC response with `id` carried by one SSE event, if it is that event; notifications
/// and server requests are `None`. An event that is not JSON is a protocol error.
pub(super) fn response_in_event(
    event: &crate::protocol::sse::SseEvent,
    id: i64,
    what: &str,
) -> Result<Option<Value>, ProbeError> {
    if event.event != "message" {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(&event.data).map_err(|e| {
        ProbeError::Protocol(format!(
            "{what} sent an event that is not JSON ({e}): {}",
            snippet(&event.data)
        ))
    })?;
    Ok(find_response(value, id))
}

pub(super) fn find_response(value: Value, id: i64) -> Option<Value> {
    let matches = |m: &Value| {
        m.get("id").and_then(Value::as_i64) == Some(id)
            && (m.get("result").is_some() || m.get("error").is_some())
    };
    match value {
        Value::Array(items) => items.into_iter().find(matches),
        m if matches(&m) => Some(m),
        _ => None,
    }
}

pub(super) async fn read_capped(
    response: reqwest::Response,
    cap: usize,
) -> Result<String, ProbeError> {
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ProbeError::Unreachable(format!("the response broke off: {}", chain(&e)))
        })?;
        body.extend_from_slice(&chunk);
        if body.len() > cap {
            if cap < MAX_BODY {
                body.truncate(cap);
                break;
            }
            return Err(ProbeError::Protocol(format!(
                "the response is larger than {cap} bytes"
            )));
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// At most 200 characters of upstream text on one line, for a status detail.
pub fn snippet(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// An error and its causes, joined.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Why a request got no answer, for a person.
pub fn describe(e: &reqwest::Error, per_request: Duration) -> String {
    if e.is_timeout() {
        return format!(
            "no answer within {} s ({})",
            per_request.as_secs(),
            chain(e)
        );
    }
    chain(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_found_by_id_in_a_message_or_a_batch() {
        assert!(find_response(json!({"jsonrpc": "2.0", "id": 1, "result": {}}), 1).is_some());
        assert!(find_response(json!({"jsonrpc": "2.0", "id": 2, "result": {}}), 1).is_none());
        assert!(find_response(json!({"jsonrpc": "2.0", "method": "x"}), 1).is_none());
        assert!(
            find_response(json!([{"method": "n"}, {"id": 1, "error": {"code": 1}}]), 1).is_some()
        );
    }

    #[test]
    fn every_sent_secret_is_scrubbed_from_shown_text() {
        let credential = Credential {
            bearer: Some(crate::secret::Secret::new("tok-123456")),
            headers: vec![(
                reqwest::header::HeaderName::from_static("x-api-key"),
                crate::secret::Secret::new("key-987654"),
            )],
        };
        let text = scrub(
            "bad token tok-123456 and key key-987654".into(),
            &secrets_of(&credential),
        );
        assert_eq!(text, "bad token [redacted] and key [redacted]");
    }

    #[test]
    fn snippets_are_one_short_line() {
        assert_eq!(snippet("a\n  b\tc"), "a b c");
        assert_eq!(snippet(&"x".repeat(500)).chars().count(), 201);
    }
}
