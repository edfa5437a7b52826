//! The MCP proxy at `/{server}/mcp` (Streamable HTTP): authenticate the local client, swap in
//! the upstream credential, forward, and stream the answer back chunk by chunk.
//!
//! Hot path: one `Arc<Config>` borrow, one hash lookup for the token, one session lookup, at
//! most five allow-listed headers copied into the upstream request's own header map, the
//! upstream's response headers filtered in place, no body buffering on the way back (except
//! `tools/list` answers of servers with tool lists, see `toolfilter`). The request body (a
//! single JSON-RPC message) is read whole, capped at [`MAX_BODY`], so a 401 can be retried once.
//! `scripts/bench-instructions.sh` counts what a call costs here against a bare proxy.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::header::{
    ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};

use super::error::GatewayError;
use super::host::ClientOrigin;
use super::state::GatewayState;
use super::{delegate, legacy, resource, rpc, toolfilter};
use crate::aggregate::Aggregate;
use crate::broker::Broker;
use crate::config::{ServerConfig, Transport};
pub(super) use crate::upstream::http::unreachable;
use crate::upstream::stepup::Forbidden;
use crate::upstream::{Credential, UpstreamError};

/// Largest request body forwarded (one JSON-RPC message); beyond it 413.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// How long the upstream may take to send response headers. SSE bodies have no total timeout;
/// a slow tool that answers with JSON must answer within this.
pub const HEADERS_TIMEOUT: Duration = Duration::from_secs(300);

pub const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
const ALLOW: HeaderName = HeaderName::from_static("allow");
const BEARER: &[u8] = b"Bearer ";

/// Request headers passed upstream; everything else (the client's Authorization, cookies,
/// Host, Origin, hop-by-hop headers) stays here (delegate servers: see [`delegate`]).
pub(super) const FORWARD_REQUEST: [HeaderName; 5] = [
    ACCEPT,
    CONTENT_TYPE,
    MCP_SESSION_ID,
    MCP_PROTOCOL_VERSION,
    LAST_EVENT_ID,
];
/// Response headers passed back; `WWW-Authenticate` and `Set-Cookie` never are.
const FORWARD_RESPONSE: [HeaderName; 7] = [
    CONTENT_TYPE,
    CONTENT_LENGTH,
    MCP_SESSION_ID,
    MCP_PROTOCOL_VERSION,
    CACHE_CONTROL,
    RETRY_AFTER,
    ALLOW,
];

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
    aggregate: &Aggregate,
    server: &str,
    origin: &ClientOrigin,
    request: Request,
) -> Result<Response, GatewayError> {
    let config = broker.config();
    let cfg = config
        .server(server)
        .ok_or_else(|| GatewayError::UnknownServer(server.to_string()))?;
    if !cfg.enabled {
        return Err(GatewayError::DisabledServer(server.to_string()));
    }
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
    let session = parts
        .headers
        .get(MCP_SESSION_ID)
        .and_then(|v| v.to_str().ok());
    // A session another principal owns is "not found". URL-mode elicitation: declared in
    // `initialize` (the only request without a session id), remembered with the session; such
    // clients get sign-in links instead of plain errors.
    let url_elicitation = match session {
        Some(sid) => match gw.session_standing(server, sid, &principal) {
            Some(declared) => declared,
            None => return Ok(rpc::session_not_found()),
        },
        None => parts.method == Method::POST && rpc::declares_url_elicitation(&body),
    };
    let links = url_elicitation.then_some(aggregate);
    // Tool allow/deny lists: parses the body only for servers that have them.
    let lists = match toolfilter::plan(cfg, &parts.method, &body) {
        Ok(lists) => lists,
        Err(refusal) => return Ok(*refusal),
    };
    if cfg.transport == Transport::Sse {
        let ctx = legacy::Ctx {
            broker,
            gw,
            cfg,
            method: &parts.method,
            body: &body,
            principal: &principal,
            origin,
        };
        return Ok(legacy::handle(&ctx, session).await);
    }
    let exchange = Exchange {
        broker,
        cfg,
        method: &parts.method,
        headers: &parts.headers,
        body: &body,
    };
    let upstream = match exchange.run().await {
        Ok(r) => r,
        Err(e) => {
            return Ok(rpc::failure(
                e,
                cfg,
                &parts.method,
                &body,
                &principal,
                origin,
                links,
            ))
        }
    };
    let status = upstream.status();
    if status.is_server_error() {
        let err = UpstreamError::Protocol {
            server: server.to_string(),
            detail: format!(
                "the upstream answered HTTP {status}; try again later or check the server's status"
            ),
        };
        return Ok(rpc::failure(
            err,
            cfg,
            &parts.method,
            &body,
            &principal,
            origin,
            links,
        ));
    }
    if let Some(sid) = upstream
        .headers()
        .get(MCP_SESSION_ID)
        .and_then(|v| v.to_str().ok())
    {
        gw.bind_session(server, sid, &principal, url_elicitation);
    }
    if let Some(sid) = session {
        if (parts.method == Method::DELETE && status.is_success())
            || status == StatusCode::NOT_FOUND
        {
            gw.end_session(server, sid);
        }
    }
    let response = toolfilter::filter_stream(cfg, &parts.method, stream_back(upstream));
    let Some(lists) = lists else {
        return Ok(response);
    };
    Ok(match lists.rewrite(cfg, response).await {
        Ok(filtered) => filtered,
        Err(e) => rpc::failure(e, cfg, &parts.method, &body, &principal, origin, links),
    })
}

/// Reads the request body up to [`MAX_BODY`] (413 beyond, checked on `Content-Length` first).
pub(super) async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, GatewayError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(GatewayError::PayloadTooLarge(MAX_BODY));
    }
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| GatewayError::PayloadTooLarge(MAX_BODY))
}

/// The upstream response, headers filtered in place, body streamed as it arrives (data only:
/// trailers, like headers, would carry what the allow-list keeps back).
pub(super) fn stream_back(mut upstream: reqwest::Response) -> Response {
    let status = upstream.status();
    keep_only(upstream.headers_mut(), &FORWARD_RESPONSE);
    let headers = std::mem::take(upstream.headers_mut());
    let empty = status == StatusCode::ACCEPTED
        || status == StatusCode::NO_CONTENT
        || upstream.content_length() == Some(0);
    let body = if empty {
        Body::empty()
    } else {
        Body::from_stream(upstream.bytes_stream())
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// Removes every header whose name is not in `allowed` (all its values), without a new map.
fn keep_only(headers: &mut HeaderMap, allowed: &[HeaderName]) {
    while let Some(name) = headers.keys().find(|n| !allowed.contains(n)).cloned() {
        headers.remove(&name);
    }
}

/// One client request forwarded upstream, retried once after a 401 with a fresh credential, and
/// once after a 403 `insufficient_scope` that a wider client-credentials token can answer.
struct Exchange<'a> {
    broker: &'a Broker,
    cfg: &'a ServerConfig,
    method: &'a Method,
    headers: &'a HeaderMap,
    body: &'a Bytes,
}

impl Exchange<'_> {
    async fn run(&self) -> Result<reqwest::Response, UpstreamError> {
        let upstream = self.broker.upstream();
        let credential = upstream.credential(self.cfg).await?;
        let mut response = self.send(&credential).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            drop(response);
            let fresh = upstream.after_rejection(self.cfg, &credential).await?;
            response = self.send(&fresh).await?;
            if response.status() == StatusCode::UNAUTHORIZED {
                return Err(UpstreamError::NeedsSignIn {
                    server: self.cfg.name.to_string(),
                    reason: "the upstream rejected a fresh credential (HTTP 401)".into(),
                });
            }
        }
        if response.status() != StatusCode::FORBIDDEN {
            return Ok(response);
        }
        match upstream.after_forbidden(self.cfg, response.headers()).await {
            Forbidden::PassOn => Ok(response),
            Forbidden::SignIn(e) => Err(e),
            Forbidden::Retry => {
                drop(response);
                let wider = upstream.credential(self.cfg).await?;
                self.send(&wider).await
            }
        }
    }

    async fn send(&self, credential: &Credential) -> Result<reqwest::Response, UpstreamError> {
        // Built in place: one header map, no builder merging a second one into it.
        let mut request = reqwest::Request::new(self.method.clone(), self.cfg.url.clone());
        let headers = request.headers_mut();
        headers.reserve(FORWARD_REQUEST.len() + 1 + credential.headers.len());
        for name in FORWARD_REQUEST {
            if let Some(v) = self.headers.get(&name) {
                headers.insert(name, v.clone());
            }
        }
        add_credential(headers, credential);
        *request.body_mut() = Some(self.body.clone().into());
        let http = self.broker.upstream().http();
        match tokio::time::timeout(HEADERS_TIMEOUT, http.execute(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(unreachable(self.cfg, describe(&e))),
            Err(_) => Err(unreachable(
                self.cfg,
                format!("no response within {} s", HEADERS_TIMEOUT.as_secs()),
            )),
        }
    }
}

/// Adds the upstream credential (configured headers, then the flow's bearer), marked sensitive.
pub(super) fn add_credential(headers: &mut HeaderMap, credential: &Credential) {
    for (name, value) in &credential.headers {
        if let Ok(mut v) = HeaderValue::from_str(value.expose()) {
            v.set_sensitive(true);
            headers.insert(name.clone(), v);
        }
    }
    if let Some(bearer) = &credential.bearer {
        // Sized exactly, so the bytes move into the header value without a second copy.
        let token = bearer.expose().as_bytes();
        let mut value = Vec::with_capacity(BEARER.len() + token.len());
        value.extend_from_slice(BEARER);
        value.extend_from_slice(token);
        if let Ok(mut v) = HeaderValue::from_maybe_shared(Bytes::from(value)) {
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
    }
}

/// The innermost cause of a transport error ("Connection refused"), without the URL.
pub(super) fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allow_listed_response_headers_survive_with_all_their_values() {
        let mut h = HeaderMap::new();
        h.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.append("set-cookie", HeaderValue::from_static("a=1"));
        h.append("set-cookie", HeaderValue::from_static("b=2"));
        h.append(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.append(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.append("www-authenticate", HeaderValue::from_static("Bearer"));
        h.append("x-upstream-secret", HeaderValue::from_static("s"));
        keep_only(&mut h, &FORWARD_RESPONSE);
        let names: Vec<_> = h.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["content-type", "cache-control"]);
        assert_eq!(h.get_all(CACHE_CONTROL).iter().count(), 2);
    }

    #[test]
    fn the_bearer_header_is_sensitive_and_exact() {
        let credential = Credential {
            bearer: Some(crate::secret::Secret::new("t0k".to_string())),
            headers: Vec::new(),
        };
        let mut h = HeaderMap::new();
        add_credential(&mut h, &credential);
        let v = h.get(AUTHORIZATION).unwrap();
        assert_eq!(v, "Bearer t0k");
        assert!(v.is_sensitive());
    }
}
