//! `/{server}/mcp` when the client and the upstream share no era: a 2025 client (sessions,
//! `initialize`) in front of a server that speaks only 2026-07-28, or a 2026-07-28 client
//! (stateless, `_meta`) in front of a server that speaks only 2025. Such traffic is served by
//! the aggregate restricted to that one server (`crate::aggregate::calls::Scope`: its names as
//! they are, the per-server token's principal), which already bridges the eras both ways; no
//! third bridge is written here.
//!
//! Same-era traffic never comes here: the checks below read only what the hot path has at
//! hand (a header, a session id's prefix, a learned era), and an upstream's answer is read
//! only when it refused the request with a 4xx that may mean "wrong era".

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::super::aggregate as face;
use super::super::host::ClientOrigin;
use super::{read_answer, session_of};
use crate::aggregate::{Aggregate, SCOPED_SESSION};
use crate::broker::Broker;
use crate::clock::unix_now;
use crate::config::ServerConfig;
use crate::health::HealthState;
use crate::issuer::Principal;
use crate::protocol::era::{self, Detected};
use crate::protocol::headers::names;
use crate::protocol::{Era, MODERN_VERSION};

/// One request the proxy may hand to the aggregate.
pub(super) struct Asked<'a> {
    pub broker: &'a Broker,
    pub aggregate: &'a Arc<Aggregate>,
    pub cfg: &'a ServerConfig,
    pub origin: &'a ClientOrigin,
    pub parts: &'a Parts,
    pub body: &'a Bytes,
    pub principal: &'a Principal,
}

/// The era a request's client speaks: its `MCP-Protocol-Version`, none meaning 2025 (an
/// `initialize` carries none); `None` for a version the broker does not speak.
fn client_era(parts: &Parts) -> Option<Era> {
    match parts.headers.get(names::PROTOCOL_VERSION) {
        None => Some(Era::Legacy),
        Some(v) if v == MODERN_VERSION => Some(Era::Modern),
        Some(v) => Era::of(v.to_str().ok()?),
    }
}

impl Asked<'_> {
    /// Whether this request goes to the aggregate before the upstream sees it: a translated
    /// session's request, or a request in the era its server is known not to speak.
    pub fn translated_at_once(&self) -> bool {
        let now = unix_now();
        if let Some(sid) = session_of(self.parts) {
            return sid.starts_with(SCOPED_SESSION)
                && self.aggregate.get(sid, self.principal, now).is_some();
        }
        if self.parts.method != Method::POST {
            return false;
        }
        let Some(client) = client_era(self.parts) else {
            return false;
        };
        self.only_era().is_some_and(|only| only != client)
    }

    /// The era the upstream is known to speak alone: learned here before, or (2025 only) from
    /// health, whose probe tries `server/discover` first.
    fn only_era(&self) -> Option<Era> {
        let server = self.cfg.name.as_str();
        if let Some(era) = self.aggregate.only_era(server) {
            return Some(era);
        }
        let status = self.broker.status();
        let state = status.borrow().get(server).map(|s| s.state.clone());
        match state {
            Some(HealthState::Healthy {
                era: Era::Legacy, ..
            }) => Some(Era::Legacy),
            _ => None,
        }
    }

    /// Whether an upstream's 4xx may mean "not my era": a modern request, or a 2025
    /// `initialize` (read only now, on this refusal's path).
    pub fn may_be_other_era(&self, status: StatusCode) -> bool {
        if !matches!(status.as_u16(), 400 | 404 | 405) || self.parts.method != Method::POST {
            return false;
        }
        match client_era(self.parts) {
            Some(Era::Modern) => true,
            Some(Era::Legacy) => {
                session_of(self.parts).is_none()
                    && serde_json::from_slice::<serde_json::Value>(self.body)
                        .is_ok_and(|m| m["method"] == "initialize")
            }
            None => false,
        }
    }

    /// After such a 4xx: when the upstream speaks only the other era, this request (and later
    /// ones) is served translated; otherwise the upstream's answer goes back as it came.
    pub async fn after_refusal(&self, upstream: reqwest::Response) -> Response {
        let (status, answer, response) = match read_answer(upstream).await {
            Ok(read) => read,
            Err(why) => return (StatusCode::BAD_GATEWAY, why).into_response(),
        };
        let client = client_era(self.parts).unwrap_or(Era::Legacy);
        let other = match client {
            Era::Modern => era::detect(status.as_u16(), &answer) == Detected::Legacy,
            Era::Legacy => true,
        };
        if !other {
            return response;
        }
        match self.aggregate.upstream_era(self.cfg).await {
            Ok(era) if era != client => {
                tracing::info!(server = %self.cfg.name, era = era.as_str(), "translating: the client and the server share no MCP era");
                self.aggregate.learn_only_era(&self.cfg.name, era);
                self.translate().await
            }
            _ => response,
        }
    }

    /// Serves the request through the aggregate, scoped to this server.
    pub async fn translate(&self) -> Response {
        let scope = Some(self.cfg.name.clone());
        let aggregate = self.aggregate.clone();
        let principal = self.principal.clone();
        let served = face::serve(
            aggregate,
            principal,
            self.origin,
            scope,
            self.parts,
            self.body,
        );
        match served.await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        }
    }
}
