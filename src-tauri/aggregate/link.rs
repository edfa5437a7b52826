//! One MCP session with one upstream, held for one client session of the aggregate endpoint:
//! opened lazily (`initialize` with the server's own credential, never the client's), used for
//! list and call requests, listened to (its GET stream) for `list_changed`, closed with the
//! client session. The client's JSON-RPC ids never reach the upstream: the link numbers its own
//! requests and the caller re-keys the answers. The upstream's own requests (sampling,
//! elicitation, roots) go through the session's [`Relay`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use super::answers::{listen, read_answer};
use super::relay::Relay;
use crate::broker::Broker;
use crate::config::ServerConfig;
use crate::health::probe::SUPPORTED_VERSIONS;
use crate::upstream::http::{describe_reqwest, unreachable};
use crate::upstream::stepup::Forbidden;
use crate::upstream::{Credential, UpstreamError};

/// Largest JSON answer, or single SSE message, read from an upstream.
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// How long `initialize` may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);

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
pub(super) struct Wire {
    pub(super) broker: Broker,
    pub(super) cfg: ServerConfig,
    session: Option<HeaderValue>,
    version: String,
    /// The session's passed-on requests (shared by all its links).
    relay: Arc<Relay>,
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
    /// `initialize` (declaring the client capabilities the session passes on) +
    /// `notifications/initialized`, then listens for list changes, which go to `changes` (the
    /// client session's GET stream).
    pub async fn open(
        broker: &Broker,
        cfg: &ServerConfig,
        changes: broadcast::Sender<Value>,
        relay: Arc<Relay>,
    ) -> Result<Link, UpstreamError> {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": SUPPORTED_VERSIONS[0],
            "capabilities": relay.offered,
            "clientInfo": {"name": "mcp-auth-broker", "version": env!("CARGO_PKG_VERSION")},
        }});
        let mut wire = Wire {
            broker: broker.clone(),
            cfg: cfg.clone(),
            session: None,
            version: SUPPORTED_VERSIONS[0].to_string(),
            relay,
        };
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
        read_answer(&self.wire.cfg, response, id, Some((out, &self.wire))).await
    }

    /// Sends a notification from the client (best effort).
    pub async fn deliver(&self, note: &Value) {
        self.wire.deliver(note).await;
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
    /// A request the upstream sent to its client (the broker): the message to pass on to the
    /// session's client, or `None` when the broker answered it ([`Relay`]; the answer is sent in
    /// the background, so the upstream never waits for one that cannot come).
    pub(super) fn on_request(self: &Arc<Self>, request: &Value) -> Option<Value> {
        match self.relay.pass_on(self, request) {
            Ok(message) => Some(message),
            Err(answer) => {
                let wire = self.clone();
                tokio::spawn(async move { wire.deliver(&answer).await });
                None
            }
        }
    }

    /// A notification from the upstream as the session's client gets it: log messages name the
    /// server; a cancellation of a passed-on request is re-keyed (other cancellations name ids
    /// the client never saw, and are dropped).
    pub(super) fn on_note(self: &Arc<Self>, mut note: Value) -> Option<Value> {
        match note["method"].as_str() {
            Some("notifications/message") => {
                note["params"]["logger"] = Value::String(self.cfg.name.to_string());
                Some(note)
            }
            Some("notifications/cancelled") => self.relay.cancelled(self, &note),
            _ => Some(note),
        }
    }

    /// POSTs a message that needs no answer (a notification, or an answer to the upstream's
    /// request), best effort.
    pub(super) async fn deliver(&self, message: &Value) {
        if let Err(LinkError::Upstream(e)) = self.post(message, OPEN_TIMEOUT).await {
            tracing::debug!(server = %self.cfg.name, "a message to the upstream was not delivered: {e}");
        }
    }

    pub(super) fn headers(
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
