//! Server health: one monitor per server, probing with that server's own flow, publishing an
//! actionable state on a `watch` channel.
//!
//! CONTRACT (used by broker, gateway status endpoint, desktop, cli): `Health`, `HealthState`,
//! `ServerStatus`, `StatusMap` keep their shapes.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::config::{Config, ServerName};
use crate::upstream::{Classification, TokenFacts};

pub type StatusMap = BTreeMap<ServerName, ServerStatus>;

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
        protocol_version: String,
    },
    NeedsSignIn {
        reason: String,
    },
    AuthRejected {
        detail: String,
    },
    Unreachable {
        cause: String,
    },
    ProtocolError {
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
            HealthState::Unreachable { .. } => "unreachable",
            HealthState::ProtocolError { .. } => "protocol error",
            HealthState::Disabled => "disabled",
        }
    }
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

/// Owner of the status map.
pub struct Health {
    status: Arc<watch::Sender<StatusMap>>,
}

impl Health {
    pub fn new(config: &Config) -> Health {
        let map = config
            .servers
            .keys()
            .map(|name| (name.clone(), ServerStatus::unknown()))
            .collect();
        Health {
            status: Arc::new(watch::channel(map).0),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<StatusMap> {
        self.status.subscribe()
    }

    pub fn snapshot(&self) -> StatusMap {
        self.status.borrow().clone()
    }

    /// Starts the monitors; they follow config changes and stop on the broker's shutdown.
    pub fn start(&self, broker: Broker) {
        let _ = broker;
    }

    /// Asks for a probe of `server` now (tray "Check now", after sign-in).
    pub fn check_now(&self, server: &ServerName) {
        let _ = server;
    }
}
