//! The MCP proxy at `/{server}/mcp` (Streamable HTTP, both eras): authenticate the local
//! client, swap in the upstream credential, forward, and stream the answer back chunk by chunk.
//!
//! Modern (2026-07-28) traffic passes untouched: every MCP request header goes upstream as the
//! client sent it (`Mcp-Method`, `Mcp-Name`, `Mcp-Param-*` in their Base64 form too,
//! `MCP-Protocol-Version`), no session is invented or required, `input_required` results and the
//! retries carrying `inputResponses` are bytes like any other, every SSE answer (a
//! `subscriptions/listen` stream too) streams as it arrives, and a modern upstream's own answers
//! to GET and DELETE (405 with `Allow`) come back as they are. The broker's own answers are in
//! the client's era ([`rpc`]). A version the broker does not speak goes to the upstream too: its
//! own `-32022` lists what it supports.
//!
//! A client and an upstream that share no era (a 2025-only client before a 2026-07-28-only
//! server, or the reverse) are served translated, by the aggregate scoped to this one server
//! ([`translate`]); same-era traffic never meets that path.
//!
//! Hot path: one `Arc<Config>` borrow, one hash lookup for the token, one session lookup, one
//! pass over the client's headers copying the allow-listed ones into the upstream request's own
//! header map (known names as static names, no allocation), the upstream's response headers
//! filtered in place, no body buffering on the way back (except `tools/list` answers of servers
//! with tool lists, see `toolfilter`). The request body (a single JSON-RPC message) is read
//! whole, capped at [`MAX_BODY`], so a 401 can be retried once; it is parsed only on the paths
//! where the broker answers itself. `scripts/bench-instructions.sh` counts what a call costs here
//! against a bare proxy.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};

use super::error::GatewayError;
use super::host::ClientOrigin;
use super::rpc::Asked;
use super::state::GatewayState;
use super::{delegate, legacy, resource, rpc, toolfilter};
use crate::aggregate::Aggregate;
use crate::broker::Broker;
use crate::config::{Config, ServerConfig, Transport};
use crate::issuer::Principal;
use crate::protocol::headers::names;
use crate::protocol::MODERN_VERSION;
use crate::upstream::exchange;
pub(super) use crate::upstream::exchange::{describe, HEADERS_TIMEOUT};
pub(super) use crate::upstream::http::unreachable;
use crate::upstream::{Credential, UpstreamError};

/// Largest request body forwarded (one JSON-RPC message); beyond it 413.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

#[path = "proxy_translate.rs"]
mod translate;
#[path = "proxy_wire.rs"]
mod wire;

use wire::read_answer;
pub(super) use wire::{forward_request_headers, read_body, stream_back};

pub fn routes() -> Router<Broker> {
    Router::new().route("/{server}/mcp", any(proxy))
}

async fn proxy(
    State(broker): State<Broker>,
    Extension(gw): Extension<Arc<GatewayState>>,
    Extension(aggregate): Extension<Arc<Aggregate>>,
    Path(server): Path<String>,
    origin: ClientOrigin,
    request: Request,
) -> Response {
    match handle(&broker, &gw, &aggregate, &server, &origin, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    broker: &Broker,
    gw: &Arc<GatewayState>,
    aggregate: &Arc<Aggregate>,
    server: &str,
    origin: &ClientOrigin,
    request: Request,
) -> Result<Response, GatewayError> {
    let config = broker.config();
    let Some(cfg) = config.server(server).filter(|c| c.enabled) else {
        return unserved(&config, server, request).await;
    };
    if cfg.delegate_auth_to_upstream {
        return delegate::forward(broker, cfg, origin, request).await;
    }
    let (parts, body) = request.into_parts();
    let principal = resource::authenticate(broker, &parts.headers, server, origin)?;
    let body = match parts.method {
        Method::POST => read_body(&parts.headers, body).await?,
        Method::GET | Method::DELETE => Bytes::new(),
        ref other => return Err(GatewayError::MethodNotAllowed(other.to_string())),
    };
    let asked = translate::Asked {
        broker,
        aggregate,
        cfg,
        origin,
        parts: &parts,
        body: &body,
        principal: &principal,
    };
    if asked.translated_at_once() {
        return Ok(asked.translate().await);
    }
    // A session another principal owns is "not found". URL-mode elicitation: a 2025 client
    // declares it in `initialize` (remembered with the session), a modern one on every request
    // (read from the body only when a sign-in link is due).
    let standing = match session_of(&parts) {
        Some(sid) => match gw.session_standing(server, sid, &principal) {
            Some(declared) => declared,
            None => return Ok(rpc::session_not_found()),
        },
        None => false,
    };
    let call = Call {
        broker,
        gw,
        aggregate,
        cfg,
        origin,
        parts,
        body,
        principal,
        standing,
    };
    Ok(call.forward().await)
}

/// The broker's own answer for a server it does not serve (unknown or disabled). A version the
/// broker does not speak is the upstream's to refuse where there is one (its `-32022` lists what
/// it supports); here no upstream will, so the broker refuses it itself.
async fn unserved(
    config: &Config,
    server: &str,
    request: Request,
) -> Result<Response, GatewayError> {
    let version = request.headers().get(names::PROTOCOL_VERSION);
    if !rpc::version_supported(version.map(|v| v.as_bytes())) {
        return refuse_version(request).await;
    }
    let err = match config.server(server) {
        None => GatewayError::UnknownServer(server.to_string()),
        Some(_) => GatewayError::DisabledServer(server.to_string()),
    };
    not_served(err, request).await
}

fn session_of(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(names::SESSION_ID)
        .and_then(|v| v.to_str().ok())
}

/// One authenticated client request to a configured, enabled server.
struct Call<'a> {
    broker: &'a Broker,
    gw: &'a Arc<GatewayState>,
    aggregate: &'a Arc<Aggregate>,
    cfg: &'a ServerConfig,
    origin: &'a ClientOrigin,
    parts: Parts,
    body: Bytes,
    principal: Principal,
    /// Its 2025 session's client declared URL-mode elicitation at `initialize`.
    standing: bool,
}

impl Call<'_> {
    fn asked(&self) -> Asked<'_> {
        Asked {
            method: &self.parts.method,
            body: &self.body,
            version: self
                .parts
                .headers
                .get(names::PROTOCOL_VERSION)
                .and_then(|v| v.to_str().ok()),
        }
    }

    /// The broker's own answer when the upstream cannot serve the request ([`rpc::failure`]).
    fn fail(&self, e: UpstreamError) -> Response {
        let declared = self.standing || rpc::declares_url_elicitation(&self.body);
        let links = declared.then_some(&**self.aggregate);
        rpc::failure(
            e,
            self.cfg,
            &self.asked(),
            &self.principal,
            self.origin,
            links,
        )
    }

    async fn forward(self) -> Response {
        let (cfg, parts, body) = (self.cfg, &self.parts, &self.body);
        // Tool allow/deny lists: parses the body only for servers that have them.
        let lists = match toolfilter::plan(cfg, &parts.method, body) {
            Ok(lists) => lists,
            Err(refusal) => return *refusal,
        };
        if cfg.transport == Transport::Sse {
            let ctx = legacy::Ctx {
                broker: self.broker,
                gw: self.gw,
                cfg,
                asked: &self.asked(),
                principal: &self.principal,
                origin: self.origin,
            };
            return legacy::handle(&ctx, session_of(parts)).await;
        }
        let build = |credential: &Credential| {
            // Built in place: one header map, no builder merging a second one into it.
            let mut request = reqwest::Request::new(parts.method.clone(), cfg.url.clone());
            let headers = request.headers_mut();
            headers.reserve(parts.headers.len().min(8) + 1 + credential.headers.len());
            forward_request_headers(&parts.headers, headers);
            exchange::authorize(&mut request, credential);
            *request.body_mut() = Some(body.clone().into());
            request
        };
        let upstream = self.broker.upstream();
        let upstream = match exchange::send(upstream, cfg, HEADERS_TIMEOUT, build).await {
            Ok(r) => r,
            Err(e) => return self.fail(e),
        };
        let status = upstream.status();
        if status.is_client_error() {
            let asked = self.translation();
            if asked.may_be_other_era(status) {
                return asked.after_refusal(upstream).await;
            }
        }
        if status.is_server_error() {
            return self.fail(UpstreamError::Protocol {
                server: cfg.name.to_string(),
                detail: format!(
                    "the upstream answered HTTP {status}; try again later or check the server's status"
                ),
            });
        }
        self.track_session(&upstream);
        let response = toolfilter::filter_stream(cfg, &parts.method, stream_back(upstream));
        let Some(lists) = lists else {
            return response;
        };
        match lists.rewrite(cfg, response).await {
            Ok(filtered) => filtered,
            Err(e) => self.fail(e),
        }
    }

    /// This request as the translation sees it ([`translate`]).
    fn translation(&self) -> translate::Asked<'_> {
        translate::Asked {
            broker: self.broker,
            aggregate: self.aggregate,
            cfg: self.cfg,
            origin: self.origin,
            parts: &self.parts,
            body: &self.body,
            principal: &self.principal,
        }
    }

    /// Keeps the session map in step with a 2025 session: the owner of a session the upstream
    /// hands out (with what its `initialize` declared), and the end of one (DELETE, or the
    /// upstream's 404). A modern request has no session: nothing is bound for it, even if an
    /// upstream sent one.
    fn track_session(&self, upstream: &reqwest::Response) {
        let server = self.cfg.name.as_str();
        let session = session_of(&self.parts);
        let status = upstream.status();
        let handed_out = upstream
            .headers()
            .get(names::SESSION_ID)
            .and_then(|v| v.to_str().ok());
        if let Some(sid) = handed_out {
            let modern = self
                .parts
                .headers
                .get(names::PROTOCOL_VERSION)
                .is_some_and(|v| v == MODERN_VERSION);
            if !modern {
                let declared = match session {
                    Some(_) => self.standing,
                    None => rpc::declares_url_elicitation(&self.body),
                };
                self.gw.bind_session(server, sid, &self.principal, declared);
            }
        }
        if let Some(sid) = session {
            let ended = self.parts.method == Method::DELETE && status.is_success();
            if ended || status == StatusCode::NOT_FOUND {
                self.gw.end_session(server, sid);
            }
        }
    }
}

/// The answer to a request for a server the broker does not serve: in JSON-RPC for a modern
/// client ([`rpc::not_served`]), the gateway's own 404 for a 2025 one.
async fn not_served(err: GatewayError, request: Request) -> Result<Response, GatewayError> {
    let (server, reason) = match &err {
        GatewayError::UnknownServer(s) => (s.clone(), "unknown_server"),
        GatewayError::DisabledServer(s) => (s.clone(), "disabled_server"),
        _ => (String::new(), "not_served"),
    };
    let (parts, body) = request.into_parts();
    let body = read_message(&parts, body).await?;
    let asked = Asked {
        method: &parts.method,
        body: &body,
        version: parts
            .headers
            .get(names::PROTOCOL_VERSION)
            .and_then(|v| v.to_str().ok()),
    };
    rpc::not_served(&asked, &server, reason, &err.to_string()).ok_or(err)
}

/// 400 `-32022` for a protocol version the broker does not speak.
async fn refuse_version(request: Request) -> Result<Response, GatewayError> {
    let (parts, body) = request.into_parts();
    let body = read_message(&parts, body).await?;
    let version = parts
        .headers
        .get(names::PROTOCOL_VERSION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let asked = Asked {
        method: &parts.method,
        body: &body,
        version: None,
    };
    Ok(rpc::unsupported_version(&asked, &version))
}

/// The body of a POST (capped), nothing for other methods.
async fn read_message(parts: &Parts, body: Body) -> Result<Bytes, GatewayError> {
    if parts.method == Method::POST {
        read_body(&parts.headers, body).await
    } else {
        Ok(Bytes::new())
    }
}
