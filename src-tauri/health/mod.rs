//! Server health: one monitor per server, probing with that server's own flow, publishing an
//! actionable state on a `watch` channel.
//!
//! CONTRACT (used by broker, gateway status endpoint, desktop, cli): `Health`, `HealthState`,
//! `ServerStatus`, `StatusMap` keep their shapes.
//!
//! How it runs: [`Health::start`] spawns the supervisor (`supervisor.rs`), which keeps one
//! monitor task (`monitor.rs`) per enabled server. It follows the running config ([`Inputs`];
//! removed and disabled servers stop at once, changed ones restart and probe, a new
//! `health_interval` applies at once) and the broker's events (a finished sign-in or sign-out
//! restarts the server's monitor; `NeedsSignIn`/`RefreshFailed` seen while healthy wake it, and
//! `SignInFailed` wakes a server that needs sign-in, whose reason then names the failure).
//! A monitor probes at start, on a wake-up ([`Health::check_now`]) and on its schedule
//! (`schedule.rs`: interval ± 10 % jitter, exponential backoff while failing, bounded).
//!
//! A probe (`probe.rs`, `legacy.rs` for the old HTTP+SSE transport) uses the server's own flow
//! through `Upstream::credential` (refreshing once through `Upstream::after_rejection` on a
//! 401/403), then opens a session with the one MCP client (`crate::protocol::client`:
//! `server/discover`, falling back to `initialize` for a legacy server), lists every
//! `tools/list` page and closes the session; JSON and SSE answers both work. A healthy state
//! names the era and version the server speaks. Interactive servers also compare the
//! authorization server their anonymous challenge names now with the one named at the first
//! healthy check of this sign-in (the upstream's discovery does the fetching).

pub mod legacy;
pub mod message;
mod monitor;
pub mod probe;
pub mod schedule;
mod supervisor;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{broadcast, watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ServerName};
use crate::events::Event;
use crate::protocol::Era;
use crate::sync::lock;
use crate::upstream::{Classification, TokenFacts, Upstream};

pub type StatusMap = BTreeMap<ServerName, ServerStatus>;

/// How an `AuthRejected` detail starts when even a fresh (refreshed or new) token was refused:
/// `crate::words` tells it apart from a refused static key by these words.
pub const REFUSED_FRESH_TOKEN: &str = "the upstream refused a fresh token";
/// How a `NeedsSignIn` reason starts when the company sign-in (enterprise-managed
/// authorization) is what is missing, not this server's own.
pub const NEEDS_COMPANY_SIGN_IN: &str = "needs company sign-in";
/// How an `AuthRejected` detail starts when the configured static credential was refused.
pub const REFUSED_CONFIGURED: &str = "the upstream refused the configured credential";

/// What the monitors follow and use, handed over by the broker (`Broker::start_health`):
/// health depends on these, not on the broker that owns it.
pub struct Inputs {
    /// Probes use each server's own flow through it (never a sign-in).
    pub upstream: Upstream,
    /// The running config: which servers to watch, and how often.
    pub config: watch::Receiver<Arc<Config>>,
    /// Sign-ins, sign-outs and token news restart or wake a server's monitor.
    pub events: broadcast::Receiver<Event>,
    /// The broker's shutdown: every monitor stops.
    pub stop: CancellationToken,
}

/// What the person needs to know about a server right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HealthState {
    /// Only before the first probe finishes.
    Unknown,
    Checking,
    Healthy {
        latency_ms: u64,
        tools: usize,
        /// `"modern"` (2026-07-28: `server/discover`, stateless) or `"legacy"` (`initialize`).
        #[serde(serialize_with = "era_name")]
        era: Era,
        protocol_version: String,
    },
    NeedsSignIn {
        reason: String,
    },
    AuthRejected {
        detail: String,
    },
    /// The OS keychain that holds the server's secrets cannot be read (locked, or no Secret
    /// Service running): nothing was deleted, and unlocking or starting it is the fix.
    KeychainUnavailable {
        locked: bool,
        detail: String,
    },
    /// The entry cannot be used as configured (several flows allowed, a secret's environment
    /// variable unset, a keychain entry missing): the detail names the fix.
    NeedsSetup {
        detail: String,
    },
    Unreachable {
        cause: String,
    },
    ProtocolError {
        detail: String,
    },
    /// A delegate server that answers and asks for sign-in: each local client signs in to the
    /// upstream itself, so the broker (which holds no token for it) checks no further.
    Delegated {
        detail: String,
    },
    Disabled,
}

impl HealthState {
    /// A short label for tables and menus.
    pub fn label(&self) -> &'static str {
        match self {
            HealthState::Unknown => "unknown",
            HealthState::Checking => "checking",
            HealthState::Healthy { .. } => "healthy",
            HealthState::NeedsSignIn { .. } => "needs sign-in",
            HealthState::AuthRejected { .. } => "auth rejected",
            HealthState::KeychainUnavailable { locked: true, .. } => "keychain locked",
            HealthState::KeychainUnavailable { locked: false, .. } => "keychain unavailable",
            HealthState::NeedsSetup { .. } => "needs setup",
            HealthState::Unreachable { .. } => "unreachable",
            HealthState::ProtocolError { .. } => "protocol error",
            HealthState::Delegated { .. } => "reachable",
            HealthState::Disabled => "disabled",
        }
    }

    /// "MCP 2026-07-28 (modern)" or "MCP 2025-11-25" for a healthy server; `None` before the
    /// server has answered a probe.
    pub fn protocol(&self) -> Option<String> {
        match self {
            HealthState::Healthy {
                era,
                protocol_version,
                ..
            } => Some(protocol_label(*era, protocol_version)),
            _ => None,
        }
    }
}

/// How a server's protocol reads for a person (tray, dashboard, `status`): the version, and
/// "(modern)" for the stateless era. Legacy is the familiar default, so it says nothing more.
pub fn protocol_label(era: Era, version: &str) -> String {
    match era {
        Era::Modern => format!("MCP {version} (modern)"),
        Era::Legacy => format!("MCP {version}"),
    }
}

fn era_name<S: serde::Serializer>(era: &Era, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(era.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerStatus {
    pub state: HealthState,
    /// Unix seconds of the last finished probe.
    pub checked_at: Option<u64>,
    pub flow: Option<Classification>,
    pub token: TokenFacts,
}

impl ServerStatus {
    pub fn unknown() -> Self {
        ServerStatus {
            state: HealthState::Unknown,
            checked_at: None,
            flow: None,
            token: TokenFacts::default(),
        }
    }
}

/// Owner of the status map and the monitors.
pub struct Health {
    shared: Arc<Shared>,
}

/// What the monitors and the supervisor share with the [`Health`] handle.
pub(crate) struct Shared {
    /// The published status; subscribers are woken only by changes that matter (see
    /// [`significant_change`]), while `checked_at` and latency update silently.
    status: watch::Sender<StatusMap>,
    /// The wake-up of each running monitor (`check_now`, sign-in changes); a server without an
    /// entry is not monitored (disabled, removed, or not started yet).
    wakes: Mutex<HashMap<ServerName, Arc<Notify>>>,
    started: AtomicBool,
}

impl Health {
    pub fn new(config: &Config) -> Health {
        let map = config
            .servers
            .keys()
            .map(|name| (name.clone(), ServerStatus::unknown()))
            .collect();
        Health {
            shared: Arc::new(Shared {
                status: watch::channel(map).0,
                wakes: Mutex::default(),
                started: AtomicBool::new(false),
            }),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<StatusMap> {
        self.shared.status.subscribe()
    }

    pub fn snapshot(&self) -> StatusMap {
        self.shared.status.borrow().clone()
    }

    /// Starts the monitors; they follow config changes and stop on `inputs.stop`.
    /// A second call does nothing.
    pub fn start(&self, inputs: Inputs) {
        if self.shared.started.swap(true, Ordering::SeqCst) {
            return;
        }
        tokio::spawn(supervisor::run(self.shared.clone(), inputs));
    }

    /// Asks for a probe of `server` now (tray "Check now", after sign-in). A probe already
    /// running finishes first, then another one starts. Unmonitored servers are ignored.
    pub fn check_now(&self, server: &ServerName) {
        if let Some(wake) = lock(&self.shared.wakes).get(server) {
            wake.notify_one();
        }
    }

    /// The servers with a running monitor (enabled and configured), sorted.
    pub fn monitored(&self) -> Vec<ServerName> {
        let mut names: Vec<_> = lock(&self.shared.wakes).keys().cloned().collect();
        names.sort();
        names
    }
}

impl Shared {
    /// Applies `update` to `server`'s entry (if it still exists); notifies subscribers only on a
    /// significant change.
    pub(crate) fn update(&self, server: &ServerName, update: impl FnOnce(&mut ServerStatus)) {
        self.status.send_if_modified(|map| {
            let Some(entry) = map.get_mut(server) else {
                return false;
            };
            let before = entry.clone();
            update(entry);
            significant_change(&before, entry)
        });
    }
}

/// True when a subscriber should hear about the change from `old` to `new`: anything but the
/// probe time and the latency of a server that stays healthy with the same tools, era and
/// version.
pub fn significant_change(old: &ServerStatus, new: &ServerStatus) -> bool {
    let same_state = match (&old.state, &new.state) {
        (
            HealthState::Healthy {
                tools: a,
                era: ea,
                protocol_version: va,
                ..
            },
            HealthState::Healthy {
                tools: b,
                era: eb,
                protocol_version: vb,
                ..
            },
        ) => a == b && ea == eb && va == vb,
        (a, b) => a == b,
    };
    !same_state || old.flow != new.flow || old.token != new.token
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: HealthState) -> ServerStatus {
        ServerStatus {
            state,
            ..ServerStatus::unknown()
        }
    }

    fn healthy(latency_ms: u64, tools: usize) -> HealthState {
        HealthState::Healthy {
            latency_ms,
            tools,
            era: Era::Legacy,
            protocol_version: "2025-11-25".into(),
        }
    }

    fn modern(tools: usize) -> HealthState {
        HealthState::Healthy {
            latency_ms: 5,
            tools,
            era: Era::Modern,
            protocol_version: "2026-07-28".into(),
        }
    }

    #[test]
    fn a_server_that_changes_era_is_news_and_reads_with_its_era() {
        assert!(significant_change(
            &status(healthy(12, 3)),
            &status(modern(3))
        ));
        assert_eq!(
            modern(3).protocol().as_deref(),
            Some("MCP 2026-07-28 (modern)")
        );
        assert_eq!(healthy(1, 1).protocol().as_deref(), Some("MCP 2025-11-25"));
        assert_eq!(HealthState::Checking.protocol(), None);
        let v = serde_json::to_value(status(modern(2))).unwrap();
        assert_eq!(v["state"]["era"], "modern");
        assert_eq!(v["state"]["protocol_version"], "2026-07-28");
    }

    #[test]
    fn latency_and_probe_time_alone_are_not_news() {
        let mut later = status(healthy(90, 3));
        later.checked_at = Some(99);
        assert!(!significant_change(&status(healthy(12, 3)), &later));
        assert!(significant_change(
            &status(healthy(12, 3)),
            &status(healthy(12, 4))
        ));
        assert!(significant_change(
            &status(HealthState::Checking),
            &status(healthy(12, 4))
        ));
        let mut with_token = status(healthy(12, 3));
        with_token.token.has_token = true;
        assert!(significant_change(&status(healthy(12, 3)), &with_token));
    }

    #[test]
    fn the_state_serialises_with_a_snake_case_tag_and_its_detail() {
        let v = serde_json::to_value(status(HealthState::NeedsSignIn {
            reason: "no token".into(),
        }))
        .unwrap();
        assert_eq!(
            v["state"],
            serde_json::json!({"state": "needs_sign_in", "reason": "no token"})
        );
        assert_eq!(v["checked_at"], serde_json::Value::Null);
    }
}
