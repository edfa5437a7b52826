//! One probe of a Streamable HTTP upstream: `initialize`, `notifications/initialized`,
//! `tools/list` (all pages), then `DELETE` of the session. JSON and SSE answers both work.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use serde_json::{json, Value};
use url::Url;

use super::message::{
    chain, describe, failure, find_response, headers, initialize_message, negotiated_version,
    read_capped, response_in_event, result_of, secrets_of, snippet, tools_page,
};
use crate::protocol::sse::SseParser;
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
        secrets: secrets_of(credential),
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

struct Session<'a> {
    http: &'a reqwest::Client,
    url: &'a Url,
    headers: HeaderMap,
    /// The bearer token, only to scrub it from upstream text that is shown.
    secrets: Vec<String>,
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
        Err(failure(response, body_method(body), &self.secrets).await)
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
        result_of(&message, what, &self.secrets)
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

fn body_method(body: &Value) -> &str {
    body.get("method")
        .and_then(Value::as_str)
        .unwrap_or("the request")
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
            if let Some(m) = response_in_event(&event, id, what)? {
                return Ok(m);
            }
        }
    }
    Err(ProbeError::Protocol(format!(
        "the {what} event stream ended without the response"
    )))
}
