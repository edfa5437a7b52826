//! One client session of the legacy era (`initialize`, `Mcp-Session-Id`): only what is its own —
//! who owns it, what its client declared (and so what upstreams may ask it, [`Relay`]), its
//! event stream, its requests in flight (for cancellation) and which shared links it uses.
//! Everything else is shared by all clients ([`Hub`]); an idle session costs a few kilobytes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tokio::sync::{broadcast, mpsc};

use super::calls::Caller;
use super::hub::Hub;
use super::link::Link;
use super::pool::Key;
use super::relay::Relay;
use crate::issuer::Principal;
use crate::protocol::{codes, Era};
use crate::upstream::{FailureKind, UpstreamError};

/// A JSON-RPC error for the client.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    /// The error's `data` (e.g. the elicitations of a `-32042`).
    pub data: Option<Value>,
}

impl RpcError {
    pub fn invalid_params(message: String) -> Self {
        RpcError {
            code: crate::protocol::codes::INVALID_PARAMS,
            message,
            data: None,
        }
    }

    pub fn internal(message: String) -> Self {
        RpcError {
            code: crate::protocol::codes::INTERNAL_ERROR,
            message,
            data: None,
        }
    }

    /// An upstream the broker cannot use for this request: the broker's code for the reason,
    /// with `data.server` and `data.reason` (as `/{server}/mcp` answers it).
    pub fn upstream(server: &str, e: &UpstreamError) -> Self {
        let (code, reason) = failure_code(e.kind());
        RpcError {
            code,
            message: e.to_string(),
            data: Some(serde_json::json!({ "server": server, "reason": reason })),
        }
    }
}

/// The JSON-RPC code and `data.reason` of a failure to use an upstream (the codes are
/// documented in [`codes`]; none is `SESSION_NOT_FOUND`, which means only an unknown session).
pub fn failure_code(kind: FailureKind) -> (i64, &'static str) {
    match kind {
        FailureKind::NeedsSignIn => (codes::NEEDS_SIGN_IN, "needs_sign_in"),
        FailureKind::Unreachable => (codes::UPSTREAM_UNREACHABLE, "unreachable"),
        FailureKind::AuthRejected => (codes::UPSTREAM_AUTH_REJECTED, "auth_rejected"),
        FailureKind::Protocol => (codes::UPSTREAM_PROTOCOL, "upstream_protocol"),
        FailureKind::Setup => (codes::UPSTREAM_SETUP, "setup"),
    }
}

/// Where notifications for the client go while a request is answered: its response stream.
pub type Outbox = mpsc::Sender<Value>;

/// What an [`Outbox`] carries besides messages: `null` (never a JSON-RPC message) says an
/// upstream answers this request with an event stream, so the client's answer streams too (an
/// answer the upstream gives as plain JSON reaches the client as plain JSON).
pub const STREAMING: Value = Value::Null;

pub struct Session {
    pub(super) hub: Arc<Hub>,
    /// Only this principal may use the session (anyone else gets 404, as if it did not exist).
    pub owner: Principal,
    /// The protocol version negotiated with the client.
    pub version: String,
    /// Requests from upstreams passed on to the client, and its event stream.
    pub(super) relay: Arc<Relay>,
    /// The shared links this session uses, by pool key (counted in the pool while it lives).
    used: Mutex<HashMap<Key, Arc<Link>>>,
    /// Requests in flight upstream by the client's JSON-RPC id, so a client's
    /// `notifications/cancelled` reaches the right upstream with the right id. A short list,
    /// searched by the id's value: no id is formatted or hashed per request.
    inflight: Mutex<Vec<(Value, Arc<Link>, u64)>>,
    /// The resources the client subscribed to, on the links of their servers.
    watches: Mutex<Vec<(Arc<Link>, String)>>,
    /// Unix seconds of the last request, for evicting the least recently used session.
    pub last_used: AtomicU64,
    /// The gateway's URL as the client reached it, when the client supports URL-mode
    /// elicitation (its calls to servers that need sign-in get a sign-in link).
    pub(super) elicit: Option<String>,
    /// The one server of a translating `/{server}/mcp` session ([`super::calls::Scope`]).
    pub scope: super::calls::Scope,
}

/// The crate's one lock policy ([`crate::sync::lock`]), under the name this module's siblings
/// import.
pub(super) use crate::sync::lock;

impl Session {
    pub(super) fn new(
        hub: Arc<Hub>,
        owner: Principal,
        version: String,
        elicit: Option<String>,
        capabilities: &Value,
        now: u64,
    ) -> Session {
        Session {
            hub,
            owner,
            version,
            relay: Arc::new(Relay::new(capabilities)),
            used: Mutex::default(),
            inflight: Mutex::default(),
            watches: Mutex::default(),
            last_used: AtomicU64::new(now),
            elicit,
            scope: None,
        }
    }

    /// The session's event stream (GET): requests and notices for this client alone.
    pub fn notes(&self) -> &broadcast::Sender<Value> {
        &self.relay.notes
    }

    /// List changes and notices for every client of `/mcp`.
    pub fn changes(&self) -> broadcast::Receiver<Value> {
        self.hub.changes.subscribe()
    }

    /// How this session's requests are served, notifications going to `out`.
    pub fn caller<'a>(&'a self, out: &'a Outbox) -> Caller<'a> {
        Caller {
            hub: &self.hub,
            principal: &self.owner,
            era: Era::Legacy,
            offered: std::borrow::Cow::Borrowed(&self.relay.offered),
            session: Some(self),
            out,
            sign_in_base: self.elicit.as_deref(),
            scope: self.scope.as_ref(),
        }
    }

    /// Records that the session uses `link` (under pool `key`): counted once, and the link may
    /// pass its own requests to this session's client.
    pub(super) fn uses(&self, key: &Key, link: &Arc<Link>) {
        let mut used = lock(&self.used);
        if let Some(held) = used.get_mut(key) {
            if !Arc::ptr_eq(held, link) {
                *held = link.clone();
                link.add_user(&self.relay);
            }
            return;
        }
        self.hub.pool.acquire(key);
        link.add_user(&self.relay);
        used.insert(key.clone(), link.clone());
    }

    /// The links this session used.
    pub(super) fn open_links(&self) -> Vec<Arc<Link>> {
        lock(&self.used).values().cloned().collect()
    }

    /// The link this session already uses for `cfg`'s server, if it is still that config's.
    pub(super) fn used_link(&self, cfg: &crate::config::ServerConfig) -> Option<Arc<Link>> {
        let used = lock(&self.used);
        let link = used.values().find(|l| l.cfg().name == cfg.name)?;
        (link.cfg() == cfg).then(|| link.clone())
    }

    pub(super) fn track(&self, client_id: &Value, link: &Arc<Link>, id: u64) {
        let entry = (client_id.clone(), link.clone(), id);
        let mut inflight = lock(&self.inflight);
        match inflight.iter().position(|e| e.0 == *client_id) {
            Some(i) => inflight[i] = entry, // an id reused while in flight: the latest holds it
            None => inflight.push(entry),
        }
    }

    pub(super) fn untrack(&self, client_id: &Value) -> Option<(Arc<Link>, u64)> {
        let mut inflight = lock(&self.inflight);
        let i = inflight.iter().position(|e| e.0 == *client_id)?;
        let (_, link, id) = inflight.swap_remove(i);
        Some((link, id))
    }

    /// The client's `notifications/cancelled`: forwarded to the upstream that holds the request,
    /// under the id the broker gave it there. Unknown ids (already answered) are ignored.
    pub async fn cancel(&self, params: &Value) {
        let Some(request) = params.get("requestId") else {
            return;
        };
        if let Some((link, id)) = self.untrack(request) {
            link.cancel(id, params.get("reason").and_then(Value::as_str))
                .await;
        }
    }

    /// Records that the client watches (or no longer watches) `uri` on `link`.
    pub(super) fn watching(&self, link: &Arc<Link>, uri: &str, on: bool) {
        let mut watches = lock(&self.watches);
        watches.retain(|(l, u)| !(Arc::ptr_eq(l, link) && u == uri));
        if on {
            watches.push((link.clone(), uri.to_string()));
        }
    }

    /// Ends the session: its subscriptions end, and links no other session uses end upstream
    /// too.
    pub async fn close(&self) {
        let watches = std::mem::take(&mut *lock(&self.watches));
        for (link, uri) in watches {
            link.unwatch(&[uri], self.notes()).await;
        }
        let keys: Vec<Key> = lock(&self.used).drain().map(|(k, _)| k).collect();
        for key in keys {
            if let Some(link) = self.hub.pool.release(&key).await {
                link.close().await;
            }
        }
    }

    pub fn touch(&self, now: u64) {
        self.last_used.store(now, Ordering::Relaxed);
    }
}

/// The `initialize` result of a legacy client's session in `version`.
pub fn initialized(version: &str) -> Value {
    serde_json::json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": true},
            "prompts": {"listChanged": true},
            "resources": {"listChanged": true, "subscribe": true},
            "completions": {},
            "logging": {},
        },
        "serverInfo": {"name": "mcp-auth-broker", "title": "MCP Auth Broker: all servers", "version": env!("CARGO_PKG_VERSION")},
        "instructions": format!("Tools, prompts and resources of every server configured in MCP Auth Broker, named SERVER{}NAME. A server that cannot be used right now is named in a log notice.", super::names::SEPARATOR),
    })
}

/// The upstream's `result`, or its JSON-RPC error passed on as it is.
pub(super) fn answer_of(mut answer: Value) -> Result<Value, RpcError> {
    if let Some(result) = answer.get_mut("result") {
        return Ok(result.take());
    }
    let error = match answer.get_mut("error").map(Value::take) {
        Some(Value::Object(e)) => e,
        _ => Map::new(),
    };
    Err(RpcError {
        code: error.get("code").and_then(Value::as_i64).unwrap_or(-32603),
        message: error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("the upstream failed without a message")
            .to_string(),
        data: error.get("data").cloned(),
    })
}
