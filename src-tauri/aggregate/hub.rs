//! What every client of `/mcp` shares, whichever era it speaks: the upstream links, which
//! server owns which resource URI, the list changes heard upstream, the upstream requests held
//! for a modern client's retry, the key of the broker's own `requestState`, and the sign-in
//! links. A client session of the legacy era adds only its own small state ([`super::session`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::broadcast;

use super::answers::InFlight;
use super::pool::Pool;
use super::session::lock;
use super::signin;
use super::uris::Owners;
use crate::broker::Broker;
use crate::config::ServerName;
use crate::issuer::Principal;
use crate::protocol::mrtr::{self, StateError, Wrapped};

/// How long an upstream request waits for a modern client's retry, at most.
pub const HOLD_SECS: u64 = 600;
/// Upstream requests held at most (the oldest is given up first).
const MAX_HELD: usize = 256;

/// A legacy upstream's request in flight, paused on its own requests to the client, which a
/// modern client got as `input_required`; its retry resumes it.
pub struct Held {
    pub flight: InFlight,
    /// The keys the client got in `inputRequests`, with the upstream's ids of those requests.
    pub asked: Vec<(String, Value)>,
    pub server: ServerName,
    principal: String,
    expires_at: u64,
}

pub struct Hub {
    pub broker: Broker,
    pub pool: Pool,
    /// Which server listed which resource URI and URI template, for routing by URI.
    pub owners: Mutex<Owners>,
    /// List changes and notices for every client (legacy GET streams, modern listens).
    pub changes: broadcast::Sender<Value>,
    /// Open sign-in links of URL-mode elicitations.
    pub links: Arc<Mutex<signin::Links>>,
    held: Mutex<HashMap<String, Held>>,
    /// Servers found to speak one era alone (by a translating `/{server}/mcp`).
    pub eras: Mutex<HashMap<ServerName, crate::protocol::Era>>,
    /// The HMAC key of the broker's `requestState`: random per process, so a state never
    /// outlives the broker that issued it.
    state_key: [u8; 32],
}

impl Hub {
    pub fn new(broker: Broker) -> Hub {
        let changes = broadcast::channel(64).0;
        Hub {
            pool: Pool::new(broker.clone(), changes.clone()),
            broker,
            owners: Mutex::default(),
            changes,
            links: Arc::default(),
            held: Mutex::default(),
            eras: Mutex::default(),
            state_key: rand::random(),
        }
    }

    /// The broker's `requestState` for `principal`: the server the retry goes back to and what
    /// to hand it.
    pub fn wrap(
        &self,
        principal: &Principal,
        server: &ServerName,
        inner: Option<String>,
    ) -> String {
        let wrapped = Wrapped {
            server: server.to_string(),
            inner,
        };
        mrtr::wrap(&self.state_key, &principal.key(), &wrapped)
    }

    /// Opens a `requestState` made by [`Hub::wrap`] for `principal`.
    pub fn unwrap(&self, principal: &Principal, state: &str) -> Result<Wrapped, StateError> {
        mrtr::unwrap(&self.state_key, &principal.key(), state)
    }

    /// Holds `flight` for the retry; returns its key.
    pub fn hold(
        &self,
        principal: &Principal,
        server: &ServerName,
        flight: InFlight,
        asked: Vec<(String, Value)>,
        now: u64,
    ) -> String {
        let key = crate::issuer::crypto::random_id();
        let mut held = lock(&self.held);
        held.retain(|_, h| h.expires_at > now);
        if held.len() >= MAX_HELD {
            let oldest = held
                .iter()
                .min_by_key(|(_, h)| h.expires_at)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                held.remove(&k);
            }
        }
        held.insert(
            key.clone(),
            Held {
                flight,
                asked,
                server: server.clone(),
                principal: principal.key(),
                expires_at: now + HOLD_SECS,
            },
        );
        key
    }

    /// The held request under `key`, once, for its own principal and server only.
    pub fn resume(
        &self,
        key: &str,
        principal: &Principal,
        server: &ServerName,
        now: u64,
    ) -> Option<Held> {
        let mut held = lock(&self.held);
        let found = held.get(key)?;
        if found.principal != principal.key() || &found.server != server {
            return None;
        }
        held.remove(key).filter(|h| h.expires_at > now)
    }
}
