//! One MCP session with one upstream, held for one client session of the aggregate endpoint:
//! opened lazily (`initialize` with the server's own credential, never the client's), used for
//! list and call requests, listened to (its GET stream) for `list_changed`, closed with the
//! client session. The client's JSON-RPC ids never reach the upstream: the link numbers its own
//! requests and the caller re-keys the answers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use crate::broker::Broker;
use crate::config::ServerConfig;
use crate::health::probe::SUPPORTED_VERSIONS;
use crate::health::sse::SseParser;
use crate::upstream::http::{describe_reqwest, unreachable};
use crate::upstream::stepup::Forbidden;
use crate::upstream::{Credential, UpstreamError};

/// Largest JSON answer, or single SSE message, read from an upstream.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// How long `initialize` may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// Failed GET-stream connects in a row before the link stops listening.
const MAX_RECONNECTS: u32 = 6;

/// Why a request over a link failed.
#[derive(Debug)]
pub enum LinkError {
    /// The upstream no longer knows the session (404): open a new link and try once more.
    Gone,
    Upstream(UpstreamError),
}

impl From<UpstreamError> for LinkError {
    fn from(e: UpstreamError) -> Self {
        LinkError::Upstream(e)
    }
}

/// What a link and its listener share.
struct Wire {
    broker: Broker,
    cfg: ServerConfig,
    session: Option<HeaderValue>,
    version: String,
}

pub struct Link {
    wire: Arc<Wire>,
    /// The server's `capabilities` from `initialize`: lists it lacks are not asked for.
    pub capabilities: Value,
    next_id: AtomicU64,
    /// The GET-stream listener; aborted when the link is dropped.
    listener: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(task) = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

impl Link {
    /// `initialize` + `notifications/initialized`, then listens for list changes, which go to
    /// `changes` (the client session's GET stream).
    pub async fn open(
        broker: &Broker,
        cfg: &ServerConfig,
        changes: broadcast::Sender<Value>,
    ) -> Result<Link, UpstreamError> {
        let mut wire = Wire {
            broker: broker.clone(),
            cfg: cfg.clone(),
            session: None,
            version: SUPPORTED_VERSIONS[0].to_string(),
        };
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": SUPPORTED_VERSIONS[0],
            "capabilities": {},
            "clientInfo": {"name": "mcp-auth-broker", "version": env!("CARGO_PKG_VERSION")},
        }});
        let response = wire
            .post(&init, OPEN_TIMEOUT)
            .await
            .map_err(gone_is_protocol(cfg))?;
        wire.session = response.headers().get("mcp-session-id").cloned();
        let answer = read_answer(cfg, response, 0, None)
            .await
            .map_err(gone_is_protocol(cfg))?;
        let result = answer
            .get("result")
            .ok_or_else(|| protocol(cfg, format!("initialize failed: {}", answer["error"])))?;
        match result.get("protocolVersion").and_then(Value::as_str) {
            Some(v) if SUPPORTED_VERSIONS.contains(&v) => wire.version = v.to_string(),
            other => return Err(protocol(cfg, format!("the server answered initialize with protocol version {other:?}; the broker speaks {}", SUPPORTED_VERSIONS.join(", ")))),
        }
        let capabilities = result.get("capabilities").cloned().unwrap_or(json!({}));
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        wire.post(&initialized, OPEN_TIMEOUT)
            .await
            .map_err(gone_is_protocol(cfg))?;
        let wire = Arc::new(wire);
        let listener = tokio::spawn(listen(wire.clone(), changes)).abort_handle();
        Ok(Link {
            wire,
            capabilities,
            next_id: AtomicU64::new(1),
            listener: Mutex::new(Some(listener)),
        })
    }

    /// The config this link was opened with (a reload that changes it needs a new link).
    pub fn cfg(&self) -> &ServerConfig {
        &self.wire.cfg
    }

    /// A fresh id for a request on this link.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends one request with `id` (from [`Link::next_id`]) and returns the upstream's JSON-RPC
    /// answer (`result` or `error`). Notifications the upstream sends while answering go to `out`
    /// as they arrive.
    pub async fn request(
        &self,
        id: u64,
        method: &str,
        params: Value,
        out: &mpsc::Sender<Value>,
        timeout: Duration,
    ) -> Result<Value, LinkError> {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self.wire.post(&body, timeout).await?;
        read_answer(&self.wire.cfg, response, id, Some(out)).await
    }

    /// Tells the upstream a request on this link is cancelled (best effort, like the protocol's
    /// own cancellation).
    pub async fn cancel(&self, id: u64, reason: Option<&str>) {
        let mut params = json!({"requestId": id});
        if let Some(r) = reason {
            params["reason"] = Value::String(r.to_string());
        }
        let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params});
        let _ = self.wire.post(&note, OPEN_TIMEOUT).await;
    }

    /// Ends the upstream session (DELETE), best effort.
    pub async fn close(&self) {
        let w = &self.wire;
        let (Some(session), Ok(credential)) =
            (&w.session, w.broker.upstream().credential(&w.cfg).await)
        else {
            return;
        };
        let Ok(mut headers) = credential.header_map() else {
            return;
        };
        headers.insert("mcp-session-id", session.clone());
        if let Ok(v) = HeaderValue::from_str(&w.version) {
            headers.insert("mcp-protocol-version", v);
        }
        let request = w
            .broker
            .upstream()
            .http()
            .delete(w.cfg.url.clone())
            .headers(headers);
        let _ = request.timeout(Duration::from_secs(5)).send().await;
    }
}

impl Wire {
    fn headers(
        &self,
        credential: &Credential,
        accept: &'static str,
    ) -> Result<HeaderMap, UpstreamError> {
        let mut headers = credential
            .header_map()
            .map_err(|why| UpstreamError::Setup {
                server: self.cfg.name.to_string(),
                detail: why,
            })?;
        headers.insert(ACCEPT, HeaderValue::from_static(accept));
        if let Some(session) = &self.session {
            headers.insert("mcp-session-id", session.clone());
            if let Ok(v) = HeaderValue::from_str(&self.version) {
                headers.insert("mcp-protocol-version", v);
            }
        }
        Ok(headers)
    }

    /// POSTs `body` with the server's credential, refreshing and retrying once after a 401.
    async fn post(&self, body: &Value, timeout: Duration) -> Result<reqwest::Response, LinkError> {
        let upstream = self.broker.upstream();
        let mut credential = upstream.credential(&self.cfg).await?;
        for attempt in 0..2 {
            let mut headers = self.headers(&credential, "application/json, text/event-stream")?;
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            let request = upstream
                .http()
                .post(self.cfg.url.clone())
                .headers(headers)
                .body(body.to_string());
            let response = match tokio::time::timeout(timeout, request.send()).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Err(unreachable(&self.cfg, describe_reqwest(&e)).into()),
                Err(_) => {
                    return Err(unreachable(
                        &self.cfg,
                        format!("no response within {} s", timeout.as_secs()),
                    )
                    .into())
                }
            };
            match response.status() {
                s if s.is_success() => return Ok(response),
                StatusCode::UNAUTHORIZED if attempt == 0 => {
                    credential = upstream.after_rejection(&self.cfg, &credential).await?;
                }
                StatusCode::UNAUTHORIZED => {
                    return Err(UpstreamError::NeedsSignIn {
                        server: self.cfg.name.to_string(),
                        reason: "the upstream rejected a fresh credential (HTTP 401)".into(),
                    }
                    .into())
                }
                StatusCode::NOT_FOUND if self.session.is_some() => return Err(LinkError::Gone),
                StatusCode::FORBIDDEN if attempt == 0 => {
                    match upstream
                        .after_forbidden(&self.cfg, response.headers())
                        .await
                    {
                        Forbidden::Retry => credential = upstream.credential(&self.cfg).await?,
                        Forbidden::SignIn(e) => return Err(e.into()),
                        Forbidden::PassOn => return Err(forbidden(&self.cfg, &response).into()),
                    }
                }
                StatusCode::FORBIDDEN => return Err(forbidden(&self.cfg, &response).into()),
                status => {
                    return Err(
                        protocol(&self.cfg, format!("the upstream answered HTTP {status}")).into(),
                    )
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }
}

/// Reads the answer with JSON-RPC `id` from a JSON or SSE response; notifications seen on the
/// way go to `out` (dropped when there is none, as during `initialize`).
async fn read_answer(
    cfg: &ServerConfig,
    response: reqwest::Response,
    id: u64,
    out: Option<&mpsc::Sender<Value>>,
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
            if let (Some(out), true) = (out, message.get("id").is_none()) {
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
async fn listen(wire: Arc<Wire>, changes: broadcast::Sender<Value>) {
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
                let Ok(mut message) = serde_json::from_str::<Value>(&event.data) else {
                    continue;
                };
                if message.get("id").is_some() {
                    continue; // a request to the client: the broker declared no client features
                }
                if message["method"] == "notifications/message" {
                    message["params"]["logger"] = Value::String(wire.cfg.name.to_string());
                }
                let _ = changes.send(message);
            }
            if parser.buffered() > MAX_MESSAGE {
                break;
            }
        }
    }
}

fn gone_is_protocol(cfg: &ServerConfig) -> impl Fn(LinkError) -> UpstreamError + '_ {
    move |e| match e {
        LinkError::Gone => protocol(cfg, "the upstream answered 404 during initialize".into()),
        LinkError::Upstream(e) => e,
    }
}

/// An upstream 403 the broker cannot answer by itself, with the upstream's challenge.
fn forbidden(cfg: &ServerConfig, response: &reqwest::Response) -> UpstreamError {
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    UpstreamError::AuthRejected {
        server: cfg.name.to_string(),
        detail: format!("the upstream refused the request (HTTP 403 {challenge}); the account may lack a permission or scope"),
    }
}

pub fn protocol(cfg: &ServerConfig, detail: String) -> UpstreamError {
    UpstreamError::Protocol {
        server: cfg.name.to_string(),
        detail,
    }
}
