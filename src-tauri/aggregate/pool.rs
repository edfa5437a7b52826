//! The upstream links of `/mcp`, shared by every client: what it costs grows with the servers,
//! not with the client sessions. A modern server gets one link (it is stateless: each request
//! declares its caller's capabilities itself); a legacy server one per distinct set of client
//! capabilities passed on, since its session may ask only for what it was told at `initialize`.
//!
//! A legacy link counts the client sessions using it and is closed (DELETE upstream) when the
//! last one ends; links that only stateless clients use stay open until the config changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tokio::sync::broadcast;

use super::link::Link;
use super::names;
use super::session::lock;
use crate::broker::Broker;
use crate::config::{Config, ServerConfig, ServerName};
use crate::protocol::Era;
use crate::upstream::UpstreamError;

/// The capability key of a modern server's one link.
const ANY: &str = "*";
/// Capability sets whose canonical key is remembered ([`Pool::caps_key`]).
const KEYS_KEPT: usize = 16;

/// Which link: the server, and the capabilities it declares (canonical JSON, or [`ANY`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub server: ServerName,
    caps: Arc<str>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Link>>>>;

#[derive(Default)]
struct Entry {
    /// Its async lock makes concurrent first uses open one link.
    slot: Slot,
    /// Client sessions using the link.
    users: usize,
}

pub struct Pool {
    broker: Broker,
    /// Where every link's list changes go (all clients of `/mcp`).
    changes: broadcast::Sender<Value>,
    /// Per server, per capability key: looked up by reference, so a request builds no key.
    entries: Mutex<HashMap<ServerName, HashMap<Arc<str>, Entry>>>,
    /// The canonical keys of the capability sets seen last: a client passes the same set on
    /// every request, which is then not sorted and written out again each time.
    keys: Mutex<Vec<(Value, Arc<str>)>>,
}

impl Pool {
    pub fn new(broker: Broker, changes: broadcast::Sender<Value>) -> Pool {
        Pool {
            broker,
            changes,
            entries: Mutex::default(),
            keys: Mutex::default(),
        }
    }

    /// The slot under `server` and `caps`, made the first time.
    fn slot(&self, server: &ServerName, caps: &Arc<str>) -> Slot {
        let mut entries = lock(&self.entries);
        if let Some(e) = entries.get(server.as_str()).and_then(|m| m.get(&**caps)) {
            return e.slot.clone();
        }
        let inner = entries.entry(server.clone()).or_default();
        inner.entry(caps.clone()).or_default().slot.clone()
    }

    /// The key of a capability set: canonical JSON (see [`canonical`]), remembered.
    fn caps_key(&self, offered: &Value) -> Arc<str> {
        let mut keys = lock(&self.keys);
        if let Some((_, key)) = keys.iter().find(|(v, _)| v == offered) {
            return key.clone();
        }
        let key: Arc<str> = canonical(offered).to_string().into();
        if keys.len() == KEYS_KEPT {
            keys.remove(0);
        }
        keys.push((offered.clone(), key.clone()));
        key
    }

    /// `cfg`'s server's modern link, if one is open for this config and free to look at now
    /// (never waits, never opens one).
    pub fn modern(&self, cfg: &ServerConfig) -> Option<Arc<Link>> {
        let slot = self.modern_slot(cfg)?;
        let held = slot.try_lock().ok()?;
        held.as_ref().filter(|l| l.cfg() == cfg).cloned()
    }

    /// The slot of `cfg`'s server's modern link, if it ever had one.
    fn modern_slot(&self, cfg: &ServerConfig) -> Option<Slot> {
        lock(&self.entries)
            .get(cfg.name.as_str())
            .and_then(|m| m.get(ANY))
            .map(|e| e.slot.clone())
    }

    /// The link to `cfg`'s server for a client passing on `offered`: the server's modern link
    /// if it has one, else the legacy link declaring exactly `offered`, opened now if there is
    /// none or the config changed since.
    pub async fn link(
        &self,
        cfg: &ServerConfig,
        offered: &Value,
    ) -> Result<(Key, Arc<Link>), UpstreamError> {
        static ANY_KEY: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| ANY.into());
        let any = || Key {
            server: cfg.name.clone(),
            caps: ANY_KEY.clone(),
        };
        if let Some(slot) = self.modern_slot(cfg) {
            if let Some(link) = slot.lock().await.as_ref().filter(|l| l.cfg() == cfg) {
                return Ok((any(), link.clone()));
            }
        }
        let key = Key {
            server: cfg.name.clone(),
            caps: self.caps_key(offered),
        };
        let slot = self.slot(&key.server, &key.caps);
        let mut held = slot.lock().await;
        if let Some(link) = held.as_ref().filter(|l| l.cfg() == cfg) {
            return Ok((key, link.clone()));
        }
        if let Some(stale) = held.take() {
            tokio::spawn(async move { stale.close().await });
        }
        // Boxed: opening is rare, and inline its future would make every request's future as
        // large as the whole discovery (and every move of it as costly).
        let opened = Link::open(&self.broker, cfg, offered.clone(), self.changes.clone());
        let link = Box::pin(opened).await?;
        if link.era() == Era::Modern {
            // Stateless: this link serves every caller; the capability slot stays empty.
            let slot = self.slot(&cfg.name, &ANY_KEY);
            let replaced = slot.lock().await.replace(link.clone());
            if let Some(old) = replaced {
                tokio::spawn(async move { old.close().await });
            }
            return Ok((any(), link));
        }
        *held = Some(link.clone());
        Ok((key, link))
    }

    /// A client session starts using the link under `key`.
    pub fn acquire(&self, key: &Key) {
        let mut entries = lock(&self.entries);
        let inner = entries.entry(key.server.clone()).or_default();
        inner.entry(key.caps.clone()).or_default().users += 1;
    }

    /// A client session stops using the link under `key`: the link, when that was its last
    /// session and it holds upstream state (the caller closes it).
    pub async fn release(&self, key: &Key) -> Option<Arc<Link>> {
        let slot = {
            let mut entries = lock(&self.entries);
            let inner = entries.get_mut(key.server.as_str())?;
            let entry = inner.get_mut(&*key.caps)?;
            entry.users = entry.users.saturating_sub(1);
            if entry.users > 0 || &*key.caps == ANY {
                return None;
            }
            let slot = inner.remove(&*key.caps)?.slot;
            if inner.is_empty() {
                entries.remove(key.server.as_str());
            }
            slot
        };
        let link = slot.lock().await.take();
        link
    }

    /// Every link open now.
    pub async fn open_links(&self) -> Vec<Arc<Link>> {
        let slots: Vec<Slot> = lock(&self.entries)
            .values()
            .flat_map(HashMap::values)
            .map(|e| e.slot.clone())
            .collect();
        let mut open = Vec::new();
        for slot in slots {
            open.extend(slot.lock().await.clone());
        }
        open
    }

    /// Forgets `link` if it is still the current one under `key` (its upstream forgot it).
    pub async fn forget(&self, key: &Key, link: &Arc<Link>) {
        let slot = lock(&self.entries)
            .get(key.server.as_str())
            .and_then(|m| m.get(&*key.caps))
            .map(|e| e.slot.clone());
        if let Some(slot) = slot {
            let mut held = slot.lock().await;
            if held.as_ref().is_some_and(|l| Arc::ptr_eq(l, link)) {
                *held = None;
            }
        }
    }

    /// Closes the links of servers that left `/mcp` or whose config changed (a new link opens
    /// on next use), so a removed server is not listened to forever.
    pub async fn retain(&self, config: &Config) {
        let stale: Vec<Slot> = {
            let mut entries = lock(&self.entries);
            let gone: Vec<ServerName> = entries
                .keys()
                .filter(|server| {
                    !config
                        .server(server.as_str())
                        .is_some_and(names::aggregated)
                })
                .cloned()
                .collect();
            let mut slots: Vec<Slot> = gone
                .iter()
                .filter_map(|server| entries.remove(server.as_str()))
                .flat_map(|inner| inner.into_values().map(|e| e.slot))
                .collect();
            let kept = entries.values().flat_map(HashMap::values);
            slots.extend(kept.map(|e| e.slot.clone()));
            slots
        };
        for slot in stale {
            let mut held = slot.lock().await;
            let current = held
                .as_ref()
                .is_some_and(|l| config.server(l.cfg().name.as_str()) == Some(l.cfg()));
            if let (false, Some(link)) = (current, held.take()) {
                tokio::spawn(async move { link.close().await });
            }
        }
    }

    /// How many links are open (for the cost tests and the benchmark).
    pub async fn count(&self) -> usize {
        self.open_links().await.len()
    }
}

/// `value` with every object's keys sorted, so equal capability sets give one key.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let sorted: Map<String, Value> = keys
                .into_iter()
                .map(|k| (k.clone(), canonical(&map[k])))
                .collect();
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn capability_sets_that_differ_only_in_key_order_share_a_key() {
        let a = json!({"sampling": {}, "elicitation": {"form": {}, "url": {}}});
        let b = json!({"elicitation": {"url": {}, "form": {}}, "sampling": {}});
        assert_eq!(canonical(&a).to_string(), canonical(&b).to_string());
        assert_ne!(
            canonical(&a).to_string(),
            canonical(&json!({"sampling": {}})).to_string()
        );
    }
}
