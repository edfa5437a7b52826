//! One client session of the aggregate endpoint: its links to the upstreams (one per server,
//! opened on first use), the fan-out of list requests and the routing of calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, mpsc};

use super::link::{protocol, Link, LinkError};
use super::names::{self, Listing};
use super::relay::Relay;
use super::signin::Elicit;
use super::uris::Owners;
use crate::broker::Broker;
use crate::config::{ServerConfig, ServerName};
use crate::issuer::Principal;
use crate::upstream::{FailureKind, UpstreamError};

/// How long one server may take to answer a list request before the aggregate answers without
/// it (and says so).
const LIST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a call may take to get response headers (answers may then stream without limit).
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(300);
/// Pages read from one server for one list.
const MAX_PAGES: usize = 50;

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
            code: -32602,
            message,
            data: None,
        }
    }
}

/// Where notifications for the client go while a request is answered: its response stream.
pub type Outbox = mpsc::Sender<Value>;

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Link>>>>;

pub struct Session {
    pub(super) broker: Broker,
    /// Only this principal may use the session (anyone else gets 404, as if it did not exist).
    pub owner: Principal,
    /// The protocol version negotiated with the client.
    pub version: String,
    /// One slot per server; its async lock makes concurrent first uses open one link.
    links: Mutex<HashMap<ServerName, Slot>>,
    /// Requests from upstreams passed on to the client ([`Relay`]), shared with every link.
    pub(super) relay: Arc<Relay>,
    /// Notifications for the client's GET stream (list changes, notices).
    pub notes: broadcast::Sender<Value>,
    /// Which server listed which resource URI and URI template, for routing by URI.
    pub(super) owners: Mutex<Owners>,
    /// Requests in flight upstream by the client's JSON-RPC id (as JSON text), so a client's
    /// `notifications/cancelled` reaches the right upstream with the right id.
    inflight: Mutex<HashMap<String, (Arc<Link>, u64)>>,
    /// Unix seconds of the last request, for evicting the least recently used session.
    pub last_used: AtomicU64,
    /// Set when the client supports URL-mode elicitation.
    pub(super) elicit: Option<Elicit>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Session {
    pub fn new(
        broker: Broker,
        owner: Principal,
        version: String,
        elicit: Option<Elicit>,
        capabilities: &Value,
        now: u64,
    ) -> Session {
        Session {
            broker,
            owner,
            version,
            links: Mutex::default(),
            relay: Arc::new(Relay::new(capabilities)),
            notes: broadcast::channel(64).0,
            owners: Mutex::default(),
            inflight: Mutex::default(),
            last_used: AtomicU64::new(now),
            elicit,
        }
    }

    /// The link to `cfg`'s server, opened now if there is none or the config changed since.
    pub(super) async fn link(&self, cfg: &ServerConfig) -> Result<Arc<Link>, UpstreamError> {
        let slot = lock(&self.links)
            .entry(cfg.name.clone())
            .or_default()
            .clone();
        let mut held = slot.lock().await;
        if let Some(link) = held.as_ref().filter(|l| l.cfg() == cfg) {
            return Ok(link.clone());
        }
        if let Some(stale) = held.take() {
            tokio::spawn(async move { stale.close().await });
        }
        let link = Link::open(&self.broker, cfg, self.notes.clone(), self.relay.clone()).await?;
        let link = Arc::new(link);
        *held = Some(link.clone());
        Ok(link)
    }

    /// The links open now.
    pub(super) async fn open_links(&self) -> Vec<Arc<Link>> {
        let slots: Vec<Slot> = lock(&self.links).values().cloned().collect();
        let mut open = Vec::new();
        for slot in slots {
            open.extend(slot.lock().await.clone());
        }
        open
    }

    /// Forgets `link` if it is still the server's current one.
    async fn forget(&self, server: &ServerName, link: &Arc<Link>) {
        let slot = lock(&self.links).get(server).cloned();
        if let Some(slot) = slot {
            let mut held = slot.lock().await;
            if held.as_ref().is_some_and(|l| Arc::ptr_eq(l, link)) {
                *held = None;
            }
        }
    }

    /// One request to one server; a forgotten upstream session is reopened once.
    /// `client_id` (the client's own request id) makes the request cancellable.
    pub(super) async fn ask(
        &self,
        cfg: &ServerConfig,
        method: &str,
        params: &Value,
        out: &Outbox,
        timeout: Duration,
        client_id: Option<&Value>,
    ) -> Result<Value, UpstreamError> {
        for _ in 0..2 {
            let link = self.link(cfg).await?;
            let id = link.next_id();
            let key = client_id.map(Value::to_string);
            if let Some(k) = &key {
                lock(&self.inflight).insert(k.clone(), (link.clone(), id));
            }
            let answer = link.request(id, method, params.clone(), out, timeout).await;
            if let Some(k) = &key {
                lock(&self.inflight).remove(k);
            }
            match answer {
                Ok(answer) => return Ok(answer),
                Err(LinkError::Upstream(e)) => return Err(e),
                Err(LinkError::Gone) => self.forget(&cfg.name, &link).await,
            }
        }
        Err(protocol(
            cfg,
            "the upstream forgot its session twice in a row".into(),
        ))
    }

    /// The union of every aggregated server's list. A server that cannot answer is left out
    /// and named in a warning notice on `out`.
    pub async fn list(&self, listing: Listing, out: &Outbox) -> Value {
        let config = self.broker.config();
        let servers: Vec<&ServerConfig> = config
            .servers
            .values()
            .filter(|c| names::aggregated(c))
            .collect();
        let answers = futures_util::future::join_all(servers.iter().map(|cfg| async move {
            match tokio::time::timeout(LIST_TIMEOUT, self.list_one(cfg, listing, out)).await {
                Ok(r) => r,
                Err(_) => Err(protocol(
                    cfg,
                    format!(
                        "{} got no answer within {} s",
                        listing.method(),
                        LIST_TIMEOUT.as_secs()
                    ),
                )),
            }
        }))
        .await;
        let mut items = Vec::new();
        for cfg in config.servers.values().filter(|c| c.enabled) {
            if let Some(why) = names::left_out(cfg) {
                let _ = out
                    .send(names::notice("info", cfg.name.as_str(), &why))
                    .await;
            }
        }
        for (cfg, answer) in servers.iter().zip(answers) {
            match answer {
                Ok(mut list) => {
                    let mut owners = lock(&self.owners);
                    for item in &list {
                        match listing {
                            Listing::Resources => item
                                .get("uri")
                                .and_then(Value::as_str)
                                .map(|u| owners.resource(u, &cfg.name)),
                            Listing::ResourceTemplates => item
                                .get("uriTemplate")
                                .and_then(Value::as_str)
                                .map(|t| owners.template(t, &cfg.name)),
                            Listing::Tools | Listing::Prompts => None,
                        };
                    }
                    drop(owners);
                    items.append(&mut list);
                }
                Err(e) => {
                    let text = format!("{} are missing: {e}", listing.key());
                    let _ = out
                        .send(names::notice("warning", cfg.name.as_str(), &text))
                        .await;
                }
            }
        }
        json!({ listing.key(): items })
    }

    async fn list_one(
        &self,
        cfg: &ServerConfig,
        listing: Listing,
        out: &Outbox,
    ) -> Result<Vec<Value>, UpstreamError> {
        let link = self.link(cfg).await?;
        if link.capabilities.get(listing.capability()).is_none() {
            return Ok(Vec::new());
        }
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = cursor.as_ref().map_or(json!({}), |c| json!({"cursor": c}));
            let answer = self
                .ask(cfg, listing.method(), &params, out, LIST_TIMEOUT, None)
                .await?;
            let Some(result) = answer.get("result") else {
                return Err(protocol(
                    cfg,
                    format!("{} failed: {}", listing.method(), answer["error"]),
                ));
            };
            let page = result
                .get(listing.key())
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            items.extend(names::present(cfg, listing, page));
            cursor = result
                .get("nextCursor")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_string);
            if cursor.is_none() {
                return Ok(items);
            }
        }
        Err(protocol(
            cfg,
            format!("{} did not end after {MAX_PAGES} pages", listing.method()),
        ))
    }

    /// `tools/call` or `prompts/get` of a prefixed name, sent to its server under its own name.
    /// A name the endpoint does not offer (unknown server, filtered tool, delegated or disabled
    /// server) is an invalid-params error, never forwarded. A server that cannot be used right
    /// now answers a tool call with an `isError` result naming the server and why, plus an error
    /// notice; a prompt with a JSON-RPC error.
    pub async fn call(
        &self,
        method: &str,
        params: &Value,
        client_id: &Value,
        out: &Outbox,
    ) -> Result<Value, RpcError> {
        let is_tool = method == "tools/call";
        let prefixed = params.get("name").and_then(Value::as_str).unwrap_or("");
        let Some((server, name)) = names::split(prefixed) else {
            return Err(RpcError::invalid_params(format!("\"{prefixed}\" is not a name of this endpoint: names are SERVER{}NAME; list them again", names::SEPARATOR)));
        };
        let config = self.broker.config();
        let found = config.server(server);
        let tool = is_tool.then_some(name);
        let cfg = match (found, names::refusal(found, server, tool)) {
            (Some(cfg), None) => cfg,
            (_, why) => return Err(RpcError::invalid_params(why.unwrap_or_default())),
        };
        let mut upstream_params = params.clone();
        upstream_params["name"] = Value::String(name.to_string());
        match self
            .ask(
                cfg,
                method,
                &upstream_params,
                out,
                CALL_TIMEOUT,
                Some(client_id),
            )
            .await
        {
            Ok(answer) => answer_of(answer),
            Err(e) => {
                let text = e.to_string();
                if e.kind() == FailureKind::NeedsSignIn {
                    if let Some(link) = self.sign_in_link(&cfg.name, &text) {
                        return Err(link);
                    }
                }
                let _ = out.send(names::notice("error", server, &text)).await;
                if is_tool {
                    Ok(names::error_result(&text))
                } else {
                    Err(RpcError {
                        code: -32603,
                        message: text,
                        data: None,
                    })
                }
            }
        }
    }

    /// The client's `notifications/cancelled`: forwarded to the upstream that holds the request,
    /// under the id the broker gave it there. Unknown ids (already answered) are ignored.
    pub async fn cancel(&self, params: &Value) {
        let Some(key) = params.get("requestId").map(Value::to_string) else {
            return;
        };
        let held = lock(&self.inflight).remove(&key);
        if let Some((link, id)) = held {
            link.cancel(id, params.get("reason").and_then(Value::as_str))
                .await;
        }
    }

    /// Ends every upstream session of this client session.
    pub async fn close(&self) {
        let slots: Vec<Slot> = lock(&self.links).drain().map(|(_, s)| s).collect();
        for slot in slots {
            if let Some(link) = slot.lock().await.take() {
                link.close().await;
            }
        }
    }

    pub fn touch(&self, now: u64) {
        self.last_used.store(now, Ordering::Relaxed);
    }
}

/// The upstream's `result`, or its JSON-RPC error passed on as it is.
pub(super) fn answer_of(answer: Value) -> Result<Value, RpcError> {
    if let Some(result) = answer.get("result") {
        return Ok(result.clone());
    }
    let error = answer
        .get("error")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(Map::new);
    Err(RpcError {
        code: error.get("code").and_then(Value::as_i64).unwrap_or(-32603),
        message: error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("the upstream failed without a message")
            .to_string(),
        data: None,
    })
}
