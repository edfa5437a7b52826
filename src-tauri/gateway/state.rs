//! State the gateway keeps in memory (never persisted): which local principal owns which
//! upstream session, which servers were reported as needing sign-in, pending authorization
//! requests, and the registration rate limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::consent::Pending;

/// Upstream sessions remembered at most (the oldest half is forgotten beyond it).
const MAX_SESSIONS: usize = 10_000;
/// Pending authorization requests kept at most.
pub const MAX_PENDING: usize = 500;
/// Registrations accepted per minute.
pub const REGISTRATIONS_PER_MINUTE: u32 = 60;

#[derive(Default)]
pub struct GatewayState {
    /// `(server, Mcp-Session-Id)` → principal key: a session is usable only by the principal that
    /// created it (another client gets 404, as if it did not exist).
    sessions: Mutex<HashMap<(String, String), String>>,
    /// Authorization requests waiting for consent or upstream sign-in, by request id.
    pub pending: Mutex<HashMap<String, Arc<Pending>>>,
    /// `(minute, count)` of registrations.
    registrations: Mutex<(u64, u32)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl GatewayState {
    /// True when `principal` may use the session (unknown sessions are adopted).
    pub fn session_allowed(&self, server: &str, session: &str, principal: &str) -> bool {
        match lock(&self.sessions).get(&(server.to_string(), session.to_string())) {
            Some(owner) => owner == principal,
            None => true,
        }
    }

    pub fn bind_session(&self, server: &str, session: &str, principal: &str) {
        let mut sessions = lock(&self.sessions);
        if sessions.len() >= MAX_SESSIONS {
            let drop: Vec<_> = sessions.keys().take(MAX_SESSIONS / 2).cloned().collect();
            for k in drop {
                sessions.remove(&k);
            }
        }
        sessions.insert(
            (server.to_string(), session.to_string()),
            principal.to_string(),
        );
    }

    pub fn end_session(&self, server: &str, session: &str) {
        lock(&self.sessions).remove(&(server.to_string(), session.to_string()));
    }

    pub fn pending(&self) -> MutexGuard<'_, HashMap<String, Arc<Pending>>> {
        lock(&self.pending)
    }

    /// Counts a registration; false when the per-minute budget is spent.
    pub fn allow_registration(&self, now: u64) -> bool {
        let mut r = lock(&self.registrations);
        let minute = now / 60;
        if r.0 != minute {
            *r = (minute, 0);
        }
        r.1 += 1;
        r.1 <= REGISTRATIONS_PER_MINUTE
    }
}
