//! The one MCP client session the broker runs toward a server, in whichever era the server
//! speaks: `server/discover` first (modern), `initialize` as the fallback (legacy), following
//! the transport's era detection. Requests carry what their era needs — modern: `_meta`,
//! `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*` (from the tools this session
//! has listed); legacy: `Mcp-Session-Id` and the negotiated version. Answers are read as JSON or
//! SSE, capped; messages that arrive before the answer go to the caller.
//!
//! How a request reaches the server (credential, refresh, timeouts of the connection) is the
//! [`Transport`]'s business: the health probe sends with a fixed credential, the aggregate and
//! the conformance client through the upstream exchange.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT};
use reqwest::Method;
use serde_json::{json, Value};

#[path = "client_calls.rs"]
mod calls;
#[path = "client_headers.rs"]
mod headers_of;
#[path = "client_read.rs"]
mod read;
pub use calls::{reply, Respond, MAX_INPUT_ROUNDS};
pub use read::{
    answer_from, read_answer, read_answer_raw, read_capped, read_json_body, read_resumable, Resume,
    DEFAULT_RETRY_MS, MAX_ANSWER, MAX_RESUMES,
};
use read::{ended, failure};

use super::era::{self, Detected, Era, LEGACY_VERSIONS, MODERN_VERSION};
use super::{envelope, headers, meta};

/// How one HTTP request reaches the server's MCP endpoint. `Err` is a transport failure in
/// words ("Connection refused"); any HTTP status is `Ok`.
pub trait Transport: Sync {
    fn send(
        &self,
        method: Method,
        headers: HeaderMap,
        body: Option<String>,
    ) -> impl Future<Output = Result<reqwest::Response, String>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an HTTP error; 401/403 carry its challenge for the caller.
    #[error("{what} answered HTTP {status}{}", detail_suffix(.detail))]
    Status {
        what: String,
        status: u16,
        challenge: Vec<String>,
        detail: String,
    },
    /// Connect, TLS, timeout, or a stream that broke off.
    #[error("{0}")]
    Unreachable(String),
    /// The answer does not follow the protocol.
    #[error("{0}")]
    Protocol(String),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// One session with one server.
pub struct Client<T> {
    transport: T,
    era: Era,
    version: String,
    session: Option<HeaderValue>,
    /// A POST's era headers, made once the session is open (empty until then).
    post_copy: HeaderMap,
    /// The server's capabilities (`server/discover` or `initialize`).
    capabilities: Value,
    server_info: Value,
    /// What this client declares (modern: on every request; legacy: at `initialize`).
    client_capabilities: Value,
    next_id: AtomicU64,
    /// Tools' `inputSchema`s by name, for the `Mcp-Param-*` headers of modern calls.
    schemas: headers::ToolSchemas,
    timeout: Duration,
    /// Legacy: the session's own GET event stream, where a server sends the requests that
    /// belong to no request of the client's (opened by [`Client::request_answering`]).
    standing: tokio::sync::Mutex<calls::Standing>,
}

impl<T: Transport> Client<T> {
    /// Opens a session: `server/discover`, then `initialize` when the server is not modern.
    pub async fn connect(
        transport: T,
        client_capabilities: Value,
        timeout: Duration,
    ) -> Result<Client<T>, ClientError> {
        let mut c = Client {
            transport,
            era: Era::Modern,
            version: MODERN_VERSION.to_string(),
            session: None,
            post_copy: HeaderMap::new(),
            capabilities: json!({}),
            server_info: Value::Null,
            client_capabilities,
            next_id: AtomicU64::new(1),
            schemas: headers::ToolSchemas::default(),
            timeout,
            standing: Default::default(),
        };
        match c.discover().await? {
            Some(legacy) => c.initialize(legacy).await?,
            None => c.era = Era::Modern,
        }
        c.opened();
        Ok(c)
    }

    /// `server/discover`; `Some(version)` when the server wants `initialize` instead.
    async fn discover(&mut self) -> Result<Option<&'static str>, ClientError> {
        // A `-32022` that lists the version this client sent (a server that refused it once, or
        // a version list that changed) is answered by asking once more, as the transport says.
        let mut retried = false;
        loop {
            match self.discover_once(retried).await? {
                Some(None) => retried = true,
                Some(legacy) => return Ok(legacy),
                None => return Ok(None),
            }
        }
    }

    /// One `server/discover`: `None` = modern, `Some(Some(v))` = legacy `v`, `Some(None)` = ask
    /// again (only when `retried` is false).
    async fn discover_once(
        &mut self,
        retried: bool,
    ) -> Result<Option<Option<&'static str>>, ClientError> {
        let id = self.id();
        let body = envelope::request(id, "server/discover", self.params(json!({})));
        let response = self.post(&body).await?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(failure(response, "server/discover").await);
        }
        if !response.status().is_success() {
            let text = read_capped(response, 64 * 1024).await.unwrap_or_default();
            return match era::detect(status, text.as_bytes()) {
                Detected::Legacy => Ok(Some(Some(LEGACY_VERSIONS[0]))),
                Detected::ModernOtherVersions(list) => match era::pick(&list) {
                    Some(v) if Era::of(v) == Some(Era::Legacy) => Ok(Some(Some(v))),
                    Some(_) if !retried => Ok(Some(None)),
                    _ => Err(ClientError::Protocol(format!(
                        "the server speaks MCP {}; the broker speaks {}",
                        list.join(", "),
                        era::SUPPORTED_VERSIONS.join(", ")
                    ))),
                },
                Detected::ModernRefused(code, msg) => Err(ClientError::Protocol(format!(
                    "server/discover was refused with JSON-RPC error {code}: {msg}"
                ))),
            };
        }
        let answer = self
            .read(response, &json!(id), "server/discover", &mut |_| {})
            .await?;
        let Some(result) = answer.get("result") else {
            // A legacy server inside HTTP 200 (some answer unknown methods that way).
            return Ok(Some(Some(LEGACY_VERSIONS[0])));
        };
        let supported = era::versions_in(&result["supportedVersions"]);
        if !supported.iter().any(|v| v == MODERN_VERSION) {
            return Ok(Some(Some(
                era::pick(&supported).unwrap_or(LEGACY_VERSIONS[0]),
            )));
        }
        self.capabilities = result.get("capabilities").cloned().unwrap_or(json!({}));
        self.server_info = result["_meta"][meta::SERVER_INFO].clone();
        Ok(None)
    }

    async fn initialize(&mut self, version: &str) -> Result<(), ClientError> {
        self.era = Era::Legacy;
        let id = self.id();
        let body = envelope::request(
            id,
            "initialize",
            json!({
                "protocolVersion": version,
                "capabilities": self.client_capabilities,
                "clientInfo": meta::broker_client_info(),
            }),
        );
        let response = self.post(&body).await?;
        if !response.status().is_success() {
            return Err(failure(response, "initialize").await);
        }
        self.session = response.headers().get(headers::SESSION_ID).cloned();
        let answer = self
            .read(response, &json!(id), "initialize", &mut |_| {})
            .await?;
        let result = answer.get("result").ok_or_else(|| {
            ClientError::Protocol(format!("initialize failed: {}", answer["error"]))
        })?;
        match result["protocolVersion"].as_str() {
            Some(v) if Era::of(v) == Some(Era::Legacy) => self.version = v.to_string(),
            other => {
                return Err(ClientError::Protocol(format!(
                    "the server answered initialize with protocol version {other:?}; the broker speaks {}",
                    era::SUPPORTED_VERSIONS.join(", ")
                )))
            }
        }
        self.capabilities = result.get("capabilities").cloned().unwrap_or(json!({}));
        self.server_info = result.get("serverInfo").cloned().unwrap_or(Value::Null);
        self.notify("notifications/initialized", None).await
    }

    pub fn era(&self) -> Era {
        self.era
    }
    pub fn version(&self) -> &str {
        &self.version
    }
    pub fn capabilities(&self) -> &Value {
        &self.capabilities
    }
    pub fn server_info(&self) -> &Value {
        &self.server_info
    }
    pub fn transport(&self) -> &T {
        &self.transport
    }

    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// `params` as this session's era sends them (modern: with `_meta`).
    fn params(&self, params: Value) -> Value {
        match self.era {
            Era::Modern => meta::with_modern_meta(params, &self.client_capabilities),
            Era::Legacy => params,
        }
    }

    /// Remembers listed tools' schemas (for `Mcp-Param-*` headers of later calls).
    pub fn learn_tools(&self, tools: &[Value]) {
        self.schemas.learn(tools);
    }

    /// Whether a tool list was learned ([`Client::learn_tools`]) on this connection.
    pub fn knows_tools(&self) -> bool {
        self.schemas.listed()
    }

    /// Sends a request and returns the server's JSON-RPC answer (`result` or `error`); messages
    /// that arrive first (notifications; legacy: the server's own requests) go to `on_message`.
    pub async fn request(
        &self,
        method: &str,
        params: Value,
        on_message: &mut (dyn FnMut(Value) + Send),
    ) -> Result<Value, ClientError> {
        let id = self.id();
        let body = envelope::request(id, method, self.params(params));
        let response = self.post(&body).await?;
        if !response.status().is_success() {
            return Err(failure(response, method).await);
        }
        let answer = self.read(response, &json!(id), method, on_message).await?;
        if method == "tools/list" {
            if let Some(tools) = answer["result"]["tools"].as_array() {
                self.learn_tools(tools);
            }
        }
        Ok(answer)
    }

    /// Sends a notification (or, legacy, an answer to the server's request).
    pub async fn notify(&self, method: &str, params: Option<Value>) -> Result<(), ClientError> {
        self.send_message(&envelope::notification(method, params))
            .await
    }

    /// POSTs any message that needs no answer; a non-2xx status is an error.
    pub async fn send_message(&self, message: &Value) -> Result<(), ClientError> {
        let response = self.post(message).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(failure(response, message["method"].as_str().unwrap_or("a message")).await)
        }
    }

    /// Ends a legacy session (DELETE), best effort; modern sessions hold nothing to end.
    pub async fn close(&self) {
        if self.session.is_some() {
            let _ = self
                .transport
                .send(Method::DELETE, self.headers(None), None)
                .await;
        }
    }

    async fn post(&self, message: &Value) -> Result<reqwest::Response, ClientError> {
        let h = self.headers(Some(message));
        let send = self
            .transport
            .send(Method::POST, h, Some(message.to_string()));
        match tokio::time::timeout(self.timeout, send).await {
            Ok(r) => r.map_err(ClientError::Unreachable),
            Err(_) => Err(ClientError::Unreachable(format!(
                "no answer within {} s",
                self.timeout.as_secs()
            ))),
        }
    }

    /// Reads the answer to `id`. A legacy event stream that ends (or breaks off) before the
    /// answer, after naming an event ID, is resumed with a GET carrying `Last-Event-ID`, after
    /// the server's `retry` delay (2025-11-25, SEP-1699); modern streams are not resumable.
    async fn read(
        &self,
        response: reqwest::Response,
        id: &Value,
        what: &str,
        on_message: &mut (dyn FnMut(Value) + Send),
    ) -> Result<Value, ClientError> {
        let work = async {
            let mut resume = Resume::default();
            let mut response = response;
            for _ in 0..=MAX_RESUMES {
                if let Some(answer) =
                    read_resumable(response, id, what, on_message, &mut resume).await?
                {
                    return Ok(answer);
                }
                let Some(last) = resume.last_event_id.clone() else {
                    break;
                };
                if self.era != Era::Legacy {
                    break;
                }
                let wait = resume.retry_ms.unwrap_or(DEFAULT_RETRY_MS);
                tokio::time::sleep(Duration::from_millis(wait)).await;
                response = self.reconnect(&last, what).await?;
            }
            Err(ended(what))
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Unreachable(format!(
                "{what} was not answered within {} s",
                self.timeout.as_secs()
            ))),
        }
    }

    /// The GET that resumes a legacy event stream after `last` (the session's own stream).
    async fn reconnect(&self, last: &str, what: &str) -> Result<reqwest::Response, ClientError> {
        let mut h = self.headers(None);
        h.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        if let Ok(v) = HeaderValue::from_str(last) {
            h.insert(headers::names::LAST_EVENT_ID, v);
        }
        let response = self
            .transport
            .send(Method::GET, h, None)
            .await
            .map_err(ClientError::Unreachable)?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(failure(response, &format!("resuming the {what} event stream")).await)
        }
    }
}
