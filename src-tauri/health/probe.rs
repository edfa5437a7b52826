//! One probe of a Streamable HTTP upstream: `initialize`, `notifications/initialized`,
//! `tools/list` (all pages), then `DELETE` of the session. JSON and SSE answers both work.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use serde_json::{json, Value};
use url::Url;

use super::sse::SseParser;
use crate::upstream::Credential;

/// Protocol versions the broker speaks, newest first; the probe asks for the first.
pub const SUPPORTED_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// The most a probe reads of one response.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// The most `tools/list` pages a probe follows.
const MAX_PAGES: usize = 50;

/// What a successful probe learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOk {
    /// Round trip of `initialize`.
    pub latency: Duration,
    pub tools: usize,
    pub protocol_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// 401 or 403: the credential was refused; `detail` is the upstream's own words.
    Rejected { status: u16, detail: String },
    /// DNS, connect, TLS, timeout, or a 5xx.
    Unreachable(String),
    /// Anything that does not follow the protocol.
    Protocol(String),
}

/// Runs a probe of `url` with `credential`; every request times out after `per_request`.
pub async fn probe(
    http: &reqwest::Client,
    url: &Url,
    credential: &Credential,
    per_request: Duration,
) -> Result<ProbeOk, ProbeError> {
    let mut s = Session {
        http,
        url,
        headers: headers(credential)?,
        secret: credential.bearer.as_ref().map(|b| b.expose().to_string()),
        per_request,
        version: None,
        session: None,
    };
    let started = Instant::now();
    let init = initialize_message();
    let result = s.request(init, 1, "initialize").await?;
    let latency = started.elapsed();
    let version = negotiated_version(&result)?;
    s.version = Some(version.clone());
    s.notify(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await?;
    let mut tools = 0;
    let mut cursor: Option<String> = None;
    for page in 0.. {
        if page == MAX_PAGES {
            return Err(ProbeError::Protocol(format!(
                "tools/list did not end after {MAX_PAGES} pages"
            )));
        }
        let params = cursor.as_ref().map_or(json!({}), |c| json!({"cursor": c}));
        let id = 2 + page as i64;
        let result = s
            .request(
                json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": params}),
                id,
                "tools/list",
            )
            .await?;
        let (count, next) = tools_page(&result)?;
        tools += count;
        cursor = next;
        if cursor.is_none() {
            break;
        }
    }
    s.close().await;
    Ok(ProbeOk {
        latency,
        tools,
        protocol_version: version,
    })
}

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
    secret: Option<&str>,
) -> Result<Value, ProbeError> {
    if let Some(error) = message.get("error") {
        let code = error.get("code").map(Value::to_string).unwrap_or_default();
        let msg = error.get("message").and_then(Value::as_str).unwrap_or("");
        return Err(ProbeError::Protocol(scrub(
            format!("{what} failed with JSON-RPC error {code}: {msg}"),
            secret,
        )));
    }
    message
        .get("result")
        .cloned()
        .filter(Value::is_object)
        .ok_or_else(|| ProbeError::Protocol(format!("the {what} response has no result object")))
}

pub(super) fn headers(credential: &Credential) -> Result<HeaderMap, ProbeError> {
    let mut map = HeaderMap::new();
    map.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    for (name, value) in &credential.headers {
        let mut v = HeaderValue::from_str(value.expose()).map_err(|_| {
            ProbeError::Protocol(format!(
                "the configured header {name} has a value that cannot be sent"
            ))
        })?;
        v.set_sensitive(true);
        map.insert(name.clone(), v);
    }
    if let Some(bearer) = &credential.bearer {
        let mut v =
            HeaderValue::from_str(&format!("Bearer {}", bearer.expose())).map_err(|_| {
                ProbeError::Protocol(
                    "the access token contains characters that cannot be sent in a header".into(),
                )
            })?;
        v.set_sensitive(true);
        map.insert(AUTHORIZATION, v);
    }
    Ok(map)
}

struct Session<'a> {
    http: &'a reqwest::Client,
    url: &'a Url,
    headers: HeaderMap,
    /// The bearer token, only to scrub it from upstream text that is shown.
    secret: Option<String>,
    per_request: Duration,
    version: Option<String>,
    session: Option<HeaderValue>,
}

impl Session<'_> {
    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .timeout(self.per_request)
            .body(body.to_string());
        if let Some(v) = &self.version {
            req = req.header("mcp-protocol-version", v);
        }
        if let Some(id) = &self.session {
            req = req.header("mcp-session-id", id.clone());
        }
        req
    }

    async fn send(&self, body: &Value) -> Result<reqwest::Response, ProbeError> {
        let response = self
            .post(body)
            .send()
            .await
            .map_err(|e| ProbeError::Unreachable(describe(&e, self.per_request)))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(failure(response, body_method(body), self.secret.as_deref()).await)
    }

    async fn notify(&self, body: Value) -> Result<(), ProbeError> {
        self.send(&body).await.map(drop)
    }

    /// Sends a request and returns its `result`.
    async fn request(&mut self, body: Value, id: i64, what: &str) -> Result<Value, ProbeError> {
        let response = self.send(&body).await?;
        if let Some(session) = response.headers().get("mcp-session-id") {
            self.session.get_or_insert_with(|| session.clone());
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let message = if content_type.starts_with("application/json") {
            let text = read_capped(response, MAX_BODY).await?;
            let value: Value = serde_json::from_str(&text).map_err(|e| {
                ProbeError::Protocol(format!(
                    "{what} answered invalid JSON ({e}): {}",
                    snippet(&text)
                ))
            })?;
            find_response(value, id).ok_or_else(|| {
                ProbeError::Protocol(format!(
                    "{what} answered JSON that is not the JSON-RPC response to it: {}",
                    snippet(&text)
                ))
            })?
        } else if content_type.starts_with("text/event-stream") {
            read_sse_response(response, id, what).await?
        } else {
            let text = read_capped(response, 2048).await.unwrap_or_default();
            let shown = if content_type.is_empty() {
                "no content type".to_string()
            } else {
                format!("content type {content_type}")
            };
            return Err(ProbeError::Protocol(format!(
                "{what} answered with {shown} instead of application/json or text/event-stream: {}",
                snippet(&text)
            )));
        };
        result_of(&message, what, self.secret.as_deref())
    }

    /// Ends the session (courtesy; failures ignored).
    async fn close(&self) {
        if let Some(id) = &self.session {
            let mut req = self
                .http
                .delete(self.url.clone())
                .headers(self.headers.clone())
                .header("mcp-session-id", id.clone())
                .timeout(Duration::from_secs(2));
            if let Some(v) = &self.version {
                req = req.header("mcp-protocol-version", v);
            }
            let _ = req.send().await;
        }
    }
}

/// Removes the token from text that will be shown.
pub(super) fn scrub(text: String, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => text.replace(s, "[redacted]"),
        _ => text,
    }
}

/// The error for a non-2xx answer to `what`, with the upstream's own words.
pub(super) async fn failure(
    response: reqwest::Response,
    what: &str,
    secret: Option<&str>,
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
    let detail = scrub(detail, secret);
    match status.as_u16() {
        401 | 403 => ProbeError::Rejected {
            status: status.as_u16(),
            detail,
        },
        500..=599 => ProbeError::Unreachable(format!("the server answered {detail}")),
        _ => ProbeError::Protocol(format!("{what} answered {detail}")),
    }
}

fn body_method(body: &Value) -> &str {
    body.get("method")
        .and_then(Value::as_str)
        .unwrap_or("the request")
}

/// The response with `id` in a message or batch.
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

async fn read_sse_response(
    response: reqwest::Response,
    id: i64,
    what: &str,
) -> Result<Value, ProbeError> {
    let mut parser = SseParser::default();
    let mut stream = response.bytes_stream();
    let mut read = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ProbeError::Unreachable(format!("the {what} event stream broke off: {}", chain(&e)))
        })?;
        read += chunk.len();
        if read > MAX_BODY {
            return Err(ProbeError::Protocol(format!(
                "the {what} event stream exceeded {MAX_BODY} bytes without the response"
            )));
        }
        for event in parser.push(&chunk) {
            if event.event != "message" {
                continue;
            }
            let value: Value = serde_json::from_str(&event.data).map_err(|e| {
                ProbeError::Protocol(format!(
                    "{what} sent an event that is not JSON ({e}): {}",
                    snippet(&event.data)
                ))
            })?;
            if let Some(m) = find_response(value, id) {
                return Ok(m);
            }
        }
    }
    Err(ProbeError::Protocol(format!(
        "the {what} event stream ended without the response"
    )))
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
    fn snippets_are_one_short_line() {
        assert_eq!(snippet("a\n  b\tc"), "a b c");
        assert_eq!(snippet(&"x".repeat(500)).chars().count(), 201);
    }
}
