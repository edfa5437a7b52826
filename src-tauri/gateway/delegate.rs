//! Delegated sign-in, for servers configured with `delegate_auth_to_upstream: true`: the broker
//! holds no token for such a server. `/{server}/mcp` needs no broker token; the client's own
//! `Authorization` header (that one credential header, nothing else) goes to that server's
//! upstream URL with the configured literal headers, and never a broker-held credential. An
//! upstream 401/403 reaches the client with its challenge rewritten so `resource_metadata` names
//! the broker's metadata for the server, whose `authorization_servers` are the *upstream's*
//! (learned by `upstream::discovery`, cached for [`PRM_TTL`] seconds). The client then signs in
//! with the upstream's authorization server itself; the broker never issues tokens for it.
//!
//! Architecture Invariant: a client's credential is forwarded only to the upstream of the
//! delegate server it was sent to. It is never stored, logged, refreshed, nor sent anywhere
//! else (not to the broker's own sign-ins, health probes, discovery, nor other servers).
//!
//! Sessions: the upstream sees each client's own credential and binds its sessions itself, so
//! the broker does not track session owners here. No refresh-and-retry: nothing to refresh.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};
use url::Url;

use super::error::GatewayError;
use super::host::ClientOrigin;
use super::proxy::{self, HEADERS_TIMEOUT};
use super::{rpc, toolfilter};
use crate::broker::Broker;
use crate::clock::unix_now;
use crate::config::{self, ServerConfig, Transport};
use crate::issuer::Issuer;
use crate::sync::lock;
use crate::upstream::discovery::Discovery;
use crate::upstream::{wwwauth, UpstreamError};
use crate::urlcheck::check_remote_url;

/// Seconds an upstream's sign-in facts are reused for the broker's metadata of that server.
pub const PRM_TTL: u64 = 300;
/// Longest challenge parameter value passed on to the client (characters).
const MAX_PARAM: usize = 1024;
/// Most authorization servers republished from one upstream.
const MAX_SERVERS: usize = 8;

/// Where a delegated client signs in, as the upstream's own metadata says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamAuth {
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Option<Vec<String>>,
}

/// The upstream sign-in facts per server, with the upstream URL and time they were learned
/// (a changed URL is a miss), so a burst of clients discovering costs one upstream discovery.
#[derive(Default)]
pub struct PrmCache {
    entries: Mutex<HashMap<String, (Url, u64, UpstreamAuth)>>,
}

impl PrmCache {
    /// The cached facts for `server` at `url`, unless older than [`PRM_TTL`] at `now`.
    pub fn get(&self, server: &str, url: &Url, now: u64) -> Option<UpstreamAuth> {
        let entries = lock(&self.entries);
        match entries.get(server) {
            Some((u, at, auth)) if u == url && now < at.saturating_add(PRM_TTL) => {
                Some(auth.clone())
            }
            _ => None,
        }
    }

    pub fn put(&self, server: &str, url: &Url, now: u64, auth: UpstreamAuth) {
        let mut entries = lock(&self.entries);
        entries.insert(server.to_string(), (url.clone(), now, auth));
    }
}

/// The sign-in facts a discovery yields: the PRM's authorization servers (else, for an older
/// upstream without PRM, the issuer whose metadata it serves at its origin), only valid
/// http(s) URLs, plus the PRM's `scopes_supported`. `Err` says what is missing.
pub fn upstream_auth(d: &Discovery) -> Result<UpstreamAuth, String> {
    if let Some(cause) = &d.unreachable {
        return Err(format!("the upstream could not be reached ({cause})"));
    }
    let listed = d
        .prm
        .as_ref()
        .map(|p| p.authorization_servers.clone())
        .filter(|l| !l.is_empty());
    let candidates = match listed {
        Some(l) => l,
        None if d.metadata.is_some() => d.issuer.clone().into_iter().collect(),
        None => Vec::new(),
    };
    let authorization_servers: Vec<String> = candidates
        .into_iter()
        .filter(|s| check_remote_url(s).is_ok())
        .take(MAX_SERVERS)
        .collect();
    if authorization_servers.is_empty() {
        let mut why = "the upstream names no usable authorization server (no protected resource metadata listing one, and no authorization server metadata at its origin)".to_string();
        if !d.notes.is_empty() {
            why.push_str(&format!("; tried: {}", d.notes.join("; ")));
        }
        return Err(why);
    }
    let scopes_supported = d
        .prm
        .as_ref()
        .and_then(|p| p.scopes_supported.clone())
        .filter(|s| !s.is_empty());
    Ok(UpstreamAuth {
        authorization_servers,
        scopes_supported,
    })
}

/// The broker's protected resource metadata for a delegate server: the broker's URL as
/// `resource` (what the client connects to), the upstream's authorization servers.
pub(super) async fn metadata(
    broker: &Broker,
    cache: &PrmCache,
    cfg: &ServerConfig,
    origin: &ClientOrigin,
) -> Result<Json<Value>, GatewayError> {
    let server = cfg.name.as_str();
    let now = unix_now();
    let auth = match cache.get(server, &cfg.url, now) {
        Some(hit) => hit,
        None => {
            let d = broker.upstream().discover(cfg).await;
            let auth = upstream_auth(&d).map_err(|detail| GatewayError::DelegateDiscovery {
                server: server.to_string(),
                detail,
            })?;
            cache.put(server, &cfg.url, now, auth.clone());
            auth
        }
    };
    let mut doc = json!({
        "resource": origin.resource(server),
        "authorization_servers": auth.authorization_servers,
        "bearer_methods_supported": ["header"],
        "resource_name": format!("{server} (sign-in delegated to the upstream, via MCP Auth Broker)"),
    });
    if let Some(scopes) = auth.scopes_supported {
        doc["scopes_supported"] = json!(scopes);
    }
    Ok(Json(doc))
}

/// Refuses the broker's own authorization for a delegate server (its clients sign in with the
/// upstream's authorization server; the broker issues no tokens for it).
pub(super) fn refuse_broker_sign_in(cfg: &ServerConfig) -> Result<(), GatewayError> {
    if !cfg.delegate_auth_to_upstream {
        return Ok(());
    }
    Err(GatewayError::Page {
        status: StatusCode::BAD_REQUEST,
        title: "This server signs you in with its own authorization server",
        message: format!("server \"{}\" delegates sign-in to its upstream; your client signs in with the upstream's authorization server (this broker's metadata for the server names it), so this broker issues no tokens for it. Connect your client to the server's URL again and let it follow the upstream's sign-in.", cfg.name),
    })
}

/// The client's `Authorization` header to forward: absent is fine (the upstream challenges),
/// several are refused, one that is not printable ASCII is refused (when in doubt, refuse), and
/// one that carries a broker credential in any spelling (`issuer::carried`) is refused, so the
/// broker's own tokens and API keys never leave the broker.
fn client_authorization(
    issuer: &Issuer,
    headers: &HeaderMap,
    server: &str,
    origin: &ClientOrigin,
) -> Result<Option<HeaderValue>, GatewayError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(GatewayError::BadRequest(
            "send one Authorization header, not several".into(),
        ));
    }
    if issuer.carries_credential(value.as_bytes()) {
        return Err(GatewayError::Unauthorized {
            resource_metadata: origin.resource_metadata(server),
            invalid_token: true,
            description: format!("server \"{server}\" delegates sign-in to its upstream, so broker tokens and API keys are not accepted for it (and never forwarded); sign in with the upstream's authorization server named in resource_metadata"),
        });
    }
    if !value
        .as_bytes()
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'!'..=b'~'))
    {
        return Err(GatewayError::BadRequest(
            "the Authorization header must be printable ASCII (a scheme and its credential); send the upstream's own token as \"Bearer <token>\"".into(),
        ));
    }
    let mut value = value.clone();
    value.set_sensitive(true);
    Ok(Some(value))
}

/// Forwards one client request to a delegate server's upstream (the proxy's hook).
pub(super) async fn forward(
    broker: &Broker,
    cfg: &ServerConfig,
    origin: &ClientOrigin,
    request: Request,
) -> Result<Response, GatewayError> {
    let server = cfg.name.as_str();
    let (parts, body) = request.into_parts();
    let authorization = client_authorization(broker.issuer(), &parts.headers, server, origin)?;
    let body = match parts.method {
        Method::POST => proxy::read_body(&parts.headers, body).await?,
        Method::GET | Method::DELETE => Bytes::new(),
        ref other => return Err(GatewayError::MethodNotAllowed(other.to_string())),
    };
    let lists = match toolfilter::plan(cfg, &parts.method, &body) {
        Ok(lists) => lists,
        Err(refusal) => return Ok(*refusal),
    };
    if cfg.transport == Transport::Sse {
        let err = UpstreamError::Setup { server: server.to_string(), detail: "delegated sign-in works only with the Streamable HTTP transport; remove \"transport\": \"sse\" or delegate_auth_to_upstream".into() };
        return Ok(rpc::answer(err, cfg, &parts.method, &body));
    }
    let headers = upstream_headers(&parts.headers, cfg, authorization);
    let upstream = match send(broker, cfg, &parts.method, headers, body.clone()).await {
        Ok(r) => r,
        Err(err) => return Ok(rpc::answer(err, cfg, &parts.method, &body)),
    };
    let status = upstream.status();
    if status.is_server_error() {
        let err = UpstreamError::Protocol {
            server: server.to_string(),
            detail: format!(
                "the upstream answered HTTP {status}; try again later or check the server's status"
            ),
        };
        return Ok(rpc::answer(err, cfg, &parts.method, &body));
    }
    let challenge = challenge_for_client(&upstream, &origin.resource_metadata(server));
    let mut response = toolfilter::filter_stream(cfg, &parts.method, proxy::stream_back(upstream));
    if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    let Some(lists) = lists else {
        return Ok(response);
    };
    Ok(match lists.rewrite(cfg, response).await {
        Ok(filtered) => filtered,
        Err(e) => rpc::answer(e, cfg, &parts.method, &body),
    })
}

/// Sends the client's request on to the upstream, waiting at most [`HEADERS_TIMEOUT`] for its
/// response headers.
async fn send(
    broker: &Broker,
    cfg: &ServerConfig,
    method: &Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<reqwest::Response, UpstreamError> {
    let request = broker
        .upstream()
        .http()
        .request(method.clone(), cfg.url.clone())
        .headers(headers)
        .body(body);
    match tokio::time::timeout(HEADERS_TIMEOUT, request.send()).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(proxy::unreachable(cfg, proxy::describe(&e))),
        Err(_) => {
            let cause = format!("no response within {} s", HEADERS_TIMEOUT.as_secs());
            Err(proxy::unreachable(cfg, cause))
        }
    }
}

/// The upstream's challenge as the client must see it (pointing at the broker's resource
/// metadata), for a 401, or a 403 that carries one.
fn challenge_for_client(upstream: &reqwest::Response, resource_metadata: &str) -> Option<String> {
    let status = upstream.status();
    if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
        return None;
    }
    let values: Vec<&str> = upstream
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (status == StatusCode::UNAUTHORIZED || !values.is_empty())
        .then(|| rewrite_challenge(&values, resource_metadata))
}

/// The headers sent upstream: the allow-listed protocol headers, the configured *literal*
/// headers (a secret-valued or `Authorization` header is never configured for a delegate
/// server; validation refuses both), then the client's own `Authorization`.
fn upstream_headers(
    client: &HeaderMap,
    cfg: &ServerConfig,
    authorization: Option<HeaderValue>,
) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(8 + cfg.headers.len() + 1);
    proxy::forward_request_headers(client, &mut headers);
    for (name, value) in &cfg.headers {
        let config::HeaderValue::Literal(text) = value else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(text),
        ) {
            if n != AUTHORIZATION {
                headers.insert(n, v);
            }
        }
    }
    if let Some(v) = authorization {
        headers.insert(AUTHORIZATION, v);
    }
    headers
}

/// The upstream's Bearer challenge for the client: `resource_metadata` replaced by the broker's
/// metadata URL for the server; `error`, `scope` and `error_description` kept (re-quoted,
/// printable ASCII only, bounded); other challenges and parameters dropped.
pub fn rewrite_challenge(upstream: &[&str], resource_metadata: &str) -> String {
    let info = wwwauth::bearer_info(&wwwauth::parse(upstream.iter().copied())).unwrap_or_default();
    let mut out = format!("Bearer resource_metadata={}", quoted(resource_metadata));
    for (name, value) in [
        ("error", &info.error),
        ("scope", &info.scope),
        ("error_description", &info.error_description),
    ] {
        if let Some(v) = value {
            out.push_str(&format!(", {name}={}", quoted(v)));
        }
    }
    out
}

/// An RFC 9110 quoted-string: `"` and `\` escaped, control characters dropped, anything outside
/// printable ASCII replaced by `?`, at most [`MAX_PARAM`] characters.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_PARAM) + 2);
    out.push('"');
    for c in value.chars().filter(|c| !c.is_control()).take(MAX_PARAM) {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[path = "delegate_tests.rs"]
mod tests;
