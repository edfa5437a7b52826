//! The aggregate endpoint's core (served over HTTP by `gateway::aggregate`): one MCP server,
//! `/mcp`, whose tools, prompts and resources are the union of the aggregated servers' (every
//! enabled server that does not delegate sign-in), named `SERVER__NAME` ([`names`]).
//!
//! Both eras on both sides. Clients: a legacy (2025) client opens a session with `initialize`
//! ([`session`]); a modern (2026-07-28) client is served statelessly, each request carrying its
//! own `_meta` ([`modern`]). Upstreams: one shared link per server — per distinct set of client
//! capabilities for a legacy server — opened with that server's own credential ([`pool`],
//! [`link`]); what the aggregate costs grows with servers, not with clients. Where a client and
//! an upstream speak different eras, [`bridge`] translates (server→client requests ⇄ MRTR), and
//! [`subscriptions`] carries resource subscriptions (`resources/subscribe` ⇄ the
//! `resourceSubscriptions` of `subscriptions/listen`).
//!
//! A server that cannot be used is never silently dropped: list answers carry a warning notice
//! naming it and why, its tool calls answer with an error result, and when a server's usability
//! changes every client hears a notice and `list_changed`.
//!
//! Architecture Invariant: the aggregate sends upstream only the broker's credential for that
//! server; the client's token (audience [`AUDIENCE`]) never leaves the broker.

mod answers;
mod bridge;
pub mod calls;
pub mod hub;
pub mod link;
pub mod modern;
pub mod names;
pub mod pass;
mod pool;
mod relay;
mod resources;
pub mod session;
pub mod signin;
pub mod subscriptions;
pub mod uris;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Once, Weak};

use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

use crate::broker::Broker;
use crate::config::{Config, ServerName};
use crate::health::{HealthState, StatusMap};
use crate::issuer::Principal;
use crate::protocol::Era;
use crate::sync::lock;
use calls::{Caller, Scope};
use hub::Hub;
use session::{Outbox, Session};

/// The audience of broker tokens for `/mcp`: a name no server may take (it is reserved).
pub const AUDIENCE: &str = "mcp";
/// How the id of a scoped session (a translating `/{server}/mcp`, [`Aggregate::open_in`]) begins.
pub const SCOPED_SESSION: &str = "mab-translated-";
/// Client sessions kept at most; beyond it the least recently used one is closed. An idle
/// session costs the broker a few kilobytes (at most about 28 KB measured), so the cap bounds
/// that memory near 60 MB while a thousand clients at once (the scale benchmark) keep theirs.
const MAX_SESSIONS: usize = 2048;
/// A session without a request for this long is closed when the next one opens (its client
/// gets 404 and initializes again, as the protocol expects).
const IDLE_SECS: u64 = 3600;

type Sessions = Mutex<HashMap<String, Arc<Session>>>;

pub struct Aggregate {
    hub: Arc<Hub>,
    /// Legacy client sessions by the `Mcp-Session-Id` the broker handed out.
    sessions: Arc<Sessions>,
    /// Starts the usability watcher with the first client (it needs a running runtime).
    watcher: Once,
}

impl Aggregate {
    pub fn new(broker: Broker) -> Aggregate {
        Aggregate {
            hub: Arc::new(Hub::new(broker)),
            sessions: Arc::default(),
            watcher: Once::new(),
        }
    }

    /// Starts the usability watcher once. Subscribed here, not in the task: a change right
    /// after the first client arrives must not slip past a task that has not run yet.
    fn watch(&self) {
        self.watcher.call_once(|| {
            let broker = &self.hub.broker;
            let config = broker.subscribe_config();
            let status = broker.status();
            let last = usability(&config.borrow(), &status.borrow());
            let hub = Arc::downgrade(&self.hub);
            tokio::spawn(watch(broker.clone(), config, status, last, hub));
        });
    }

    /// A new client session; returns its id.
    pub fn open(&self, owner: Principal, version: String, now: u64) -> String {
        self.open_for(owner, version, None, &Value::Null, now)
    }

    /// [`Aggregate::open`] for a client that supports URL-mode elicitation when `base` (the
    /// gateway's URL as the client reached it) is given: its calls to servers that need sign-in
    /// are answered with a sign-in link ([`signin`]). Upstreams' sampling, elicitation and roots
    /// requests reach the client as far as its `capabilities` allow ([`relay`]).
    pub fn open_for(
        &self,
        owner: Principal,
        version: String,
        base: Option<String>,
        capabilities: &Value,
        now: u64,
    ) -> String {
        self.open_in(None, owner, version, base, capabilities, now)
    }

    /// [`Aggregate::open_for`] restricted to `scope`'s server when given (a translating
    /// `/{server}/mcp`); such a session's id starts with [`SCOPED_SESSION`], so the proxy tells
    /// it from an upstream's session without a lookup.
    pub fn open_in(
        &self,
        scope: Scope,
        owner: Principal,
        version: String,
        base: Option<String>,
        capabilities: &Value,
        now: u64,
    ) -> String {
        self.watch();
        let mut id = crate::issuer::crypto::random_id();
        if scope.is_some() {
            id.insert_str(0, SCOPED_SESSION);
        }
        let hub = self.hub.clone();
        let mut session = Session::new(hub, owner, version, base, capabilities, now);
        if scope.is_some() {
            if let Some(relay) = Arc::get_mut(&mut session.relay) {
                relay.name_server = false;
            }
        }
        session.scope = scope;
        let mut all = lock(&self.sessions);
        let idle: Vec<String> = all
            .iter()
            .filter(|(_, s)| s.last_used.load(Ordering::Relaxed) + IDLE_SECS < now)
            .map(|(k, _)| k.clone())
            .collect();
        for old in idle.iter().filter_map(|k| all.remove(k)) {
            tokio::spawn(async move { old.close().await });
        }
        if all.len() >= MAX_SESSIONS {
            let oldest = all
                .iter()
                .min_by_key(|(_, s)| s.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone());
            if let Some(old) = oldest.and_then(|k| all.remove(&k)) {
                tokio::spawn(async move { old.close().await });
            }
        }
        all.insert(id.clone(), Arc::new(session));
        id
    }

    /// How a modern client's request is served: no session; `capabilities` from its `_meta`;
    /// sign-in links when it declares URL-mode elicitation and `base` is given.
    pub fn stateless<'a>(
        &'a self,
        principal: &'a Principal,
        capabilities: &Value,
        base: &'a str,
        out: &'a Outbox,
    ) -> Caller<'a> {
        self.stateless_in(None, principal, capabilities, base, out)
    }

    /// [`Aggregate::stateless`] restricted to `scope`'s server when given.
    pub fn stateless_in<'a>(
        &'a self,
        scope: Option<&'a ServerName>,
        principal: &'a Principal,
        capabilities: &Value,
        base: &'a str,
        out: &'a Outbox,
    ) -> Caller<'a> {
        self.watch();
        Caller {
            hub: &self.hub,
            principal,
            era: Era::Modern,
            offered: std::borrow::Cow::Owned(relay::passed_on(capabilities)),
            session: None,
            out,
            sign_in_base: crate::protocol::meta::url_elicitation(capabilities).then_some(base),
            scope,
        }
    }

    /// List changes and notices for every client.
    pub fn changes(&self) -> broadcast::Receiver<Value> {
        self.watch();
        self.hub.changes.subscribe()
    }

    /// The `server/discover` result for a modern client ([`modern::discover`]).
    pub async fn discover(&self) -> Value {
        modern::discover(&self.hub).await
    }

    /// The era `cfg`'s upstream speaks, from its shared link (opened if need be:
    /// `server/discover` first, `initialize` as the fallback). A legacy answer means the server
    /// does not speak 2026-07-28; a modern one that it does (perhaps 2025 too).
    pub async fn upstream_era(
        &self,
        cfg: &crate::config::ServerConfig,
    ) -> Result<Era, crate::upstream::UpstreamError> {
        self.watch();
        let (_, link) = self
            .hub
            .pool
            .link(cfg, &relay::passed_on(&Value::Null))
            .await?;
        Ok(link.era())
    }

    /// The one era `server` was found to speak alone, by a translating `/{server}/mcp`.
    pub fn only_era(&self, server: &str) -> Option<Era> {
        session::lock(&self.hub.eras).get(server).copied()
    }

    /// Remembers that `server` speaks `era` alone ([`Aggregate::only_era`]).
    pub fn learn_only_era(&self, server: &ServerName, era: Era) {
        session::lock(&self.hub.eras).insert(server.clone(), era);
    }

    /// How many upstream links are open (shared by every client).
    pub async fn upstream_links(&self) -> usize {
        self.hub.pool.count().await
    }

    /// A sign-in link for `server` for a client of the per-server endpoint (no broker-owned
    /// stream to announce the completion on): `(url, elicitation id)`.
    pub fn sign_in_link(&self, server: &ServerName, base: &str, now: u64) -> (String, String) {
        signin::issue_url(&self.hub.links, base, server, None, now)
    }

    /// The sign-in link for `nonce`, once ([`signin::Links::take`]).
    pub fn take_link(&self, nonce: &str, now: u64) -> Option<signin::Link> {
        lock(&self.hub.links).take(nonce, now)
    }

    /// The session `id` if `owner` opened it (anyone else is told it does not exist).
    pub fn get(&self, id: &str, owner: &Principal, now: u64) -> Option<Arc<Session>> {
        let session = lock(&self.sessions)
            .get(id)
            .filter(|s| &s.owner == owner)
            .cloned()?;
        session.touch(now);
        Some(session)
    }

    /// Ends the session `id` of `owner`; false when there is none.
    pub async fn close(&self, id: &str, owner: &Principal) -> bool {
        let removed = {
            let mut all = lock(&self.sessions);
            match all.get(id) {
                Some(s) if &s.owner == owner => all.remove(id),
                _ => None,
            }
        };
        match removed {
            Some(session) => {
                session.close().await;
                true
            }
            None => false,
        }
    }
}

/// Per aggregated server: `Ok` when it can be used (or is not checked yet), else why not.
pub fn usability(config: &Config, status: &StatusMap) -> BTreeMap<ServerName, Result<(), String>> {
    config
        .servers
        .values()
        .filter(|c| names::aggregated(c))
        .map(|c| {
            let state = status.get(&c.name).map(|s| &s.state);
            let usable = match state {
                None
                | Some(
                    HealthState::Unknown
                    | HealthState::Checking
                    | HealthState::Healthy { .. }
                    | HealthState::Delegated { .. },
                ) => Ok(()),
                Some(HealthState::NeedsSignIn { reason }) => Err(format!("needs sign-in ({reason}): sign in from the tray menu or run `mcp-auth-broker login {}`", c.name)),
                Some(s @ (HealthState::AuthRejected { detail }
                | HealthState::KeychainUnavailable { detail, .. }
                | HealthState::NeedsSetup { detail })) => Err(format!("{}: {detail}", s.label())),
                Some(HealthState::Unreachable { cause }) => Err(format!("unreachable: {cause}")),
                Some(HealthState::ProtocolError { detail }) => Err(format!("protocol error: {detail}")),
                Some(HealthState::Disabled) => Err("disabled".into()),
            };
            (c.name.clone(), usable)
        })
        .collect()
}

/// What clients are told when usability changes: a notice per changed server (warning when it
/// became unusable, info when it is back or was added/removed), and whether lists changed.
pub fn changes_between(
    before: &BTreeMap<ServerName, Result<(), String>>,
    after: &BTreeMap<ServerName, Result<(), String>>,
) -> Vec<Value> {
    let mut notes = Vec::new();
    for (name, now) in after {
        match (before.get(name), now) {
            (Some(was), now) if was == now => {}
            (Some(Err(_)) | None, Ok(())) => notes.push(names::notice(
                "info",
                name.as_str(),
                "is available: its tools are listed again",
            )),
            (_, Err(why)) => notes.push(names::notice(
                "warning",
                name.as_str(),
                &format!("cannot be used right now: {why}"),
            )),
            (Some(Ok(())), Ok(())) => {}
        }
    }
    for name in before.keys().filter(|n| !after.contains_key(*n)) {
        notes.push(names::notice(
            "info",
            name.as_str(),
            "was removed from this endpoint",
        ));
    }
    notes
}

/// Follows config and health; on a change of usability tells every client (notices, then
/// `list_changed` for tools, prompts and resources); on a config change closes the links it
/// made stale. Ends with the broker or the aggregate.
async fn watch(
    broker: Broker,
    mut config: watch::Receiver<Arc<Config>>,
    mut status: watch::Receiver<StatusMap>,
    mut last: BTreeMap<ServerName, Result<(), String>>,
    hub: Weak<Hub>,
) {
    let shutdown = broker.shutdown_token();
    loop {
        let reloaded = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = config.changed() => if r.is_err() { return } else { true },
            r = status.changed() => if r.is_err() { return } else { false },
        };
        let Some(hub) = hub.upgrade() else { return };
        let current = config.borrow_and_update().clone();
        if reloaded {
            hub.pool.retain(&current).await;
            // A changed server may speak another era now: learn it again.
            session::lock(&hub.eras).clear();
        }
        let now = usability(&current, &status.borrow_and_update());
        let notes = changes_between(&last, &now);
        last = now;
        if notes.is_empty() {
            continue;
        }
        for note in notes {
            let _ = hub.changes.send(note);
        }
        for kind in ["tools", "prompts", "resources"] {
            let _ = hub.changes.send(
                json!({"jsonrpc": "2.0", "method": format!("notifications/{kind}/list_changed")}),
            );
        }
    }
}
