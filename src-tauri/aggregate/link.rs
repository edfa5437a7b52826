//! One upstream link: the broker's MCP client session with one server ([`Client`]: era
//! detection with `server/discover` first and `initialize` as the fallback), shared by every
//! client of `/mcp` that can share it ([`super::pool`]). A modern (2026-07-28) server is
//! stateless, so one link serves everyone; a legacy server gets one session per distinct set of
//! client capabilities passed on (it may only ask for what the session declared).
//!
//! Requests go out under the link's own JSON-RPC ids (a client's id reaches a modern upstream only
//! in a call passed through, [`super::pass`], as `/{server}/mcp` sends it) and with the server's
//! own credential, never the client's ([`Wire`]). List changes are followed
//! once per link ([`super::answers::listen`]): the GET stream of a legacy server,
//! `subscriptions/listen` of a modern one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, ACCEPT, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::relay::Relay;
use super::session::lock;
use super::subscriptions::Watchers;
use crate::broker::Broker;
use crate::config::ServerConfig;
use crate::protocol::client::{Client, ClientError, Transport};
use crate::protocol::shallow::{Params, TextCall};
use crate::protocol::{envelope, write, Era};
use crate::upstream::exchange::Endpoint;
use crate::upstream::http::unreachable;
use crate::upstream::UpstreamError;

/// How long opening a link (discovery or `initialize`) may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(15);
/// The link's own request ids start here, far from the ids [`Client`] numbers itself.
const FIRST_ID: u64 = 1 << 32;

/// Why a request over a link failed.
#[derive(Debug)]
pub enum LinkError {
    /// The legacy upstream no longer knows the session (404): open a new link, try once more.
    Gone,
    Upstream(UpstreamError),
}

impl From<UpstreamError> for LinkError {
    fn from(e: UpstreamError) -> Self {
        LinkError::Upstream(e)
    }
}

impl LinkError {
    /// The failure as the caller reports it once the link's route can no longer open a new
    /// session ([`LinkError::Gone`] after the one new try, or where none is made).
    pub fn upstream(self, cfg: &ServerConfig) -> UpstreamError {
        match self {
            LinkError::Upstream(e) => e,
            LinkError::Gone => protocol(cfg, "the upstream forgot its session".into()),
        }
    }
}

/// A failure to read an upstream's answer, as the link's callers report it.
pub fn read_failure(cfg: &ServerConfig, e: ClientError) -> UpstreamError {
    match e {
        ClientError::Unreachable(why) => unreachable(cfg, why),
        e => protocol(cfg, e.to_string()),
    }
}

/// How a request reaches the upstream: the one upstream exchange ([`Endpoint`]: the server's
/// credential, a 401 answered by one refresh and retry, a 403 `insufficient_scope` by the
/// step-up rule), shared with [`Link::open`], which needs its typed failure after a failed
/// [`Client::connect`] (the client keeps only words).
pub(super) struct Wire(Arc<Endpoint>);

impl Wire {
    pub(super) fn cfg(&self) -> &ServerConfig {
        self.0.cfg()
    }

    /// Sends one HTTP request, waiting at most `timeout` for the response headers of each
    /// attempt (the exchange's own timer: one per request); `Ok` for every status but 403,
    /// which the exchange could not answer (the account lacks a right).
    pub(super) async fn exchange(
        &self,
        method: Method,
        headers: HeaderMap,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<reqwest::Response, UpstreamError> {
        // Boxed: the exchange (credential, send, refresh, step-up) is kilobytes, and inline it
        // would make every request's future that large, copied each time it is boxed or moved.
        let sent = Box::pin(self.0.exchange_within(method, headers, body, timeout));
        match sent.await {
            Ok(r) if r.status() == StatusCode::FORBIDDEN => Err(forbidden(self.cfg(), &r)),
            r => r,
        }
    }
}

impl Transport for Wire {
    async fn send(
        &self,
        method: Method,
        headers: HeaderMap,
        body: Option<String>,
    ) -> Result<reqwest::Response, String> {
        self.0.send(method, headers, body).await
    }
}

pub struct Link {
    pub(super) client: Client<Wire>,
    /// The client capabilities a legacy link declared at `initialize` (a modern link declares
    /// each caller's own on every request).
    pub offered: Value,
    next_id: AtomicU64,
    /// The sessions of legacy clients that use this link: the upstream's requests on its GET
    /// stream (not tied to a client's request) go to one of them.
    users: Mutex<Vec<Weak<Relay>>>,
    /// The list-change listener; aborted when the link is dropped.
    pub(super) listener: Mutex<Option<tokio::task::AbortHandle>>,
    /// Where the listener's list changes go (every client of `/mcp`).
    pub(super) changes: broadcast::Sender<Value>,
    /// Which clients watch which of the server's resources ([`super::subscriptions`]).
    pub(super) watchers: Mutex<Watchers>,
    /// Changes of what is watched upstream, one at a time.
    pub(super) subscribing: tokio::sync::Mutex<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.listener).take() {
            task.abort();
        }
    }
}

impl Link {
    /// Opens a link declaring `offered` and starts following list changes, which go to
    /// `changes` (every client of `/mcp`).
    pub async fn open(
        broker: &Broker,
        cfg: &ServerConfig,
        offered: Value,
        changes: broadcast::Sender<Value>,
    ) -> Result<Arc<Link>, UpstreamError> {
        let endpoint = Arc::new(Endpoint::new(broker.upstream().clone(), cfg.clone()));
        let connect = Client::connect(Wire(endpoint.clone()), offered.clone(), OPEN_TIMEOUT);
        let client = match tokio::time::timeout(OPEN_TIMEOUT, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                let kept = endpoint.take_failure();
                return Err(kept.unwrap_or_else(|| opening_failed(cfg, e)));
            }
            Err(_) => {
                let why = format!("no answer to discovery within {} s", OPEN_TIMEOUT.as_secs());
                return Err(unreachable(cfg, why));
            }
        };
        endpoint.take_failure();
        let link = Arc::new(Link {
            client,
            offered,
            next_id: AtomicU64::new(FIRST_ID),
            users: Mutex::default(),
            listener: Mutex::new(None),
            changes: changes.clone(),
            watchers: Mutex::default(),
            subscribing: tokio::sync::Mutex::new(()),
        });
        let task = tokio::spawn(super::answers::listen(Arc::downgrade(&link), changes, None));
        *lock(&link.listener) = Some(task.abort_handle());
        Ok(link)
    }

    pub fn cfg(&self) -> &ServerConfig {
        self.client.transport().cfg()
    }

    pub fn era(&self) -> Era {
        self.client.era()
    }

    /// The server's capabilities: lists it lacks are not asked for.
    pub fn capabilities(&self) -> &Value {
        self.client.capabilities()
    }

    pub(super) fn wire(&self) -> &Wire {
        self.client.transport()
    }

    pub(super) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A legacy client's session uses this link.
    pub(super) fn add_user(&self, relay: &Arc<Relay>) {
        let mut users = lock(&self.users);
        users.retain(|w| w.strong_count() > 0);
        if !users.iter().any(|w| w.ptr_eq(&Arc::downgrade(relay))) {
            users.push(Arc::downgrade(relay));
        }
    }

    /// The sessions using this link, the most recent first.
    pub(super) fn users(&self) -> Vec<Arc<Relay>> {
        lock(&self.users)
            .iter()
            .rev()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// A request as this link's era sends it, written straight from the client's `params`
    /// ([`write::request_bytes`]: the client's own protocol `_meta` stays behind; a modern link
    /// puts the broker's in, declaring `offered`), with its headers.
    pub(super) fn outgoing(
        &self,
        id: u64,
        method: &str,
        params: &Params,
        offered: &Value,
    ) -> (HeaderMap, Bytes) {
        let modern = (self.era() == Era::Modern).then_some(offered);
        match params {
            // Headers mirror arguments only for a modern link's annotated tool.
            Params::Text(call) if !self.client.mirrors_arguments(method, call.name()) => {
                self.text_request(&Value::from(id), call, offered)
            }
            // Those of an annotated tool (`x-mcp-header`) are read from them.
            Params::Text(call) => {
                let params = call.to_value();
                let headers = self.client.request_headers(method, &params);
                (headers, write::request_bytes(id, method, &params, modern))
            }
            Params::Value(params) => (
                self.client.request_headers(method, params),
                write::request_bytes(id, method, params, modern),
            ),
        }
    }

    /// Whether a call of `method` to the server's `name` from a client of `era` may be passed
    /// through ([`super::pass`]): a link of the client's era, and for a modern tool one whose
    /// list was read and whose arguments go in no header (those calls take
    /// [`Link::outgoing`]'s own route).
    pub(super) fn passes(&self, era: Era, method: &str, name: &str) -> bool {
        let plain = era == Era::Legacy
            || method != "tools/call"
            || self.client.knows_tools() && !self.client.mirrors_arguments(method, name);
        self.era() == era && plain
    }

    /// A call kept as text whose headers mirror none of its arguments, as this link's era
    /// sends it under `id` (a modern link puts the broker's `_meta` in, declaring `offered`),
    /// with its headers: [`Link::outgoing`]'s, and a call passed through ([`super::pass`]).
    pub(super) fn text_request(
        &self,
        id: &Value,
        call: &TextCall,
        offered: &Value,
    ) -> (HeaderMap, Bytes) {
        let modern = (self.era() == Era::Modern).then_some(offered);
        let headers = self.client.call_headers(call.method(), call.name());
        (headers, call.write(id, modern))
    }

    /// Whether `status` says the upstream forgot this link's session (a legacy 404).
    pub(super) fn forgot_session(&self, status: reqwest::StatusCode) -> bool {
        status == StatusCode::NOT_FOUND && self.era() == Era::Legacy
    }

    /// POSTs a message that needs no answer (a notification, or an answer to the upstream's
    /// request), best effort.
    pub(super) async fn deliver(&self, message: &Value) {
        let headers = self.client.headers(Some(message));
        let sent = self
            .wire()
            .exchange(
                Method::POST,
                headers,
                Some(envelope::to_bytes(message)),
                OPEN_TIMEOUT,
            )
            .await;
        if let Err(e) = sent {
            tracing::debug!(server = %self.cfg().name, "a message to the upstream was not delivered: {e}");
        }
    }

    /// Tells a legacy upstream a request on this link is cancelled (best effort, like the
    /// protocol's own cancellation; a modern upstream learns it from the closed stream).
    pub async fn cancel(&self, id: u64, reason: Option<&str>) {
        if self.era() == Era::Modern {
            return;
        }
        let mut params = json!({"requestId": id});
        if let Some(r) = reason {
            params["reason"] = Value::String(r.to_string());
        }
        self.deliver(&envelope::notification(
            "notifications/cancelled",
            Some(params),
        ))
        .await;
    }

    /// Ends a legacy upstream session (DELETE), best effort.
    pub async fn close(&self) {
        if let Some(task) = lock(&self.listener).take() {
            task.abort();
        }
        if self.era() == Era::Legacy {
            let mut headers = self.client.headers(None);
            headers.remove(ACCEPT);
            let timeout = Duration::from_secs(5);
            let _ = self
                .wire()
                .exchange(Method::DELETE, headers, None, timeout)
                .await;
        }
    }
}

/// The failure of opening a link, with its kind when the transport knew it.
fn opening_failed(cfg: &ServerConfig, e: ClientError) -> UpstreamError {
    match e {
        ClientError::Unreachable(words) => unreachable(cfg, words),
        ClientError::Protocol(detail) => protocol(cfg, detail),
        e @ ClientError::Status { .. } => protocol(cfg, e.to_string()),
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
