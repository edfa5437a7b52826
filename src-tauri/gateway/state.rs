//! State the gateway keeps in memory (never persisted): which local principal owns which
//! upstream session, pending authorization requests, the registration rate limit and the failed
//! token requests of each client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::consent::Pending;
use super::legacy;
use super::limit::{TokenFailures, Window};
use crate::issuer::Principal;
use crate::sync::lock;

/// Upstream sessions remembered at most.
const MAX_SESSIONS: usize = 10_000;
/// Pending authorization requests kept at most.
pub const MAX_PENDING: usize = 500;
/// Registrations accepted per minute.
pub const REGISTRATIONS_PER_MINUTE: u32 = 60;

#[derive(Default)]
pub struct GatewayState {
    /// server → `Mcp-Session-Id` → owner: a session is usable only by the principal that created
    /// it (another client gets 404, as if it did not exist). Beyond [`MAX_SESSIONS`] the map is
    /// reset (sessions are then adopted again by whoever uses them next). Only 2025 sessions are
    /// here: a modern (2026-07-28) request has none, and nothing is bound for it.
    sessions: Mutex<HashMap<String, HashMap<String, Owner>>>,
    /// Authorization requests waiting for consent or upstream sign-in, by request id.
    pub pending: Mutex<HashMap<String, Arc<Pending>>>,
    /// Sessions bridged to upstreams on the older HTTP+SSE transport, by the broker's session id.
    pub legacy: Mutex<HashMap<String, Arc<legacy::Session>>>,
    /// Registrations of the current minute.
    registrations: Mutex<Window>,
    /// Failed `/token` requests per client.
    token_failures: Mutex<TokenFailures>,
    /// What each delegate server's upstream says about its sign-in (the broker's PRM for it).
    pub delegate: super::delegate::PrmCache,
}

/// Who opened an upstream session, and what its client can do.
struct Owner {
    principal: Principal,
    /// The client declared URL-mode elicitation at initialize: it gets sign-in links.
    url_elicitation: bool,
}

impl GatewayState {
    /// What `principal` may do with the session, in one lookup and no allocation: `None` when
    /// another principal owns it; else whether its client declared URL-mode elicitation
    /// (unknown sessions are adopted, without it).
    pub fn session_standing(
        &self,
        server: &str,
        session: &str,
        principal: &Principal,
    ) -> Option<bool> {
        match lock(&self.sessions)
            .get(server)
            .and_then(|m| m.get(session))
        {
            Some(owner) if &owner.principal != principal => None,
            Some(owner) => Some(owner.url_elicitation),
            None => Some(false),
        }
    }

    /// Records the owner of a session the upstream handed out (once; later sightings are free).
    pub fn bind_session(
        &self,
        server: &str,
        session: &str,
        principal: &Principal,
        url_elicitation: bool,
    ) {
        let mut all = lock(&self.sessions);
        if all.get(server).is_some_and(|m| m.contains_key(session)) {
            return;
        }
        if all.values().map(HashMap::len).sum::<usize>() >= MAX_SESSIONS {
            all.clear();
        }
        all.entry(server.to_string()).or_default().insert(
            session.to_string(),
            Owner {
                principal: principal.clone(),
                url_elicitation,
            },
        );
    }

    pub fn end_session(&self, server: &str, session: &str) {
        if let Some(m) = lock(&self.sessions).get_mut(server) {
            m.remove(session);
        }
    }

    pub fn token_failures(&self) -> MutexGuard<'_, TokenFailures> {
        lock(&self.token_failures)
    }

    pub fn pending(&self) -> MutexGuard<'_, HashMap<String, Arc<Pending>>> {
        lock(&self.pending)
    }

    /// Counts a registration; false when the per-minute budget is spent.
    pub fn allow_registration(&self, now: u64) -> bool {
        lock(&self.registrations).hit(now, 60) <= REGISTRATIONS_PER_MINUTE
    }
}
