//! The one upstream exchange: how any request reaches an upstream MCP server with the broker's
//! own credential for it. Every path that talks to an upstream as the broker (the proxy, the
//! legacy HTTP+SSE bridge, the aggregate's links and listeners, the conformance client) sends
//! through [`send`], so they all behave alike:
//!
//! 1. attach the server's credential ([`authorize`]: configured headers, then the flow's token:
//!    `Bearer`, or `DPoP` with a fresh proof for a DPoP-bound token);
//! 2. send, waiting at most `timeout` for the response headers (a body streams without limit);
//!    a DPoP-bound request refused with `use_dpop_nonce` is sent once more with the server's
//!    nonce ([`super::dpop`]);
//! 3. on 401: refresh once ([`Upstream::after_rejection`]) and send again; a second 401 is
//!    `NeedsSignIn`;
//! 4. on 403 `insufficient_scope`: step up ([`Upstream::after_forbidden`]): a client-credentials
//!    server gets a wider token and one more try, an interactive one is `NeedsSignIn`, anything
//!    else passes the 403 back to the caller;
//! 5. a transport failure or a timeout is `Unreachable`, in words without the URL ([`describe`]).
//!
//! Any other status is the caller's to read (the proxy passes it on; a client session decides
//! what 404 or 405 means). The request is rebuilt per attempt by the caller's `build`, so the
//! proxy keeps building it in place (one header map, the body a shared `Bytes`): the exchange adds
//! no allocation to a call that needs no retry.
//!
//! [`Endpoint`] is the same exchange as a [`protocol::client::Transport`], so the one MCP client
//! session ([`protocol::client::Client`]) runs over the broker's credential and refresh.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use url::Url;

use super::dpop;
use super::http::unreachable;
use super::stepup::Forbidden;
use super::{Credential, Upstream, UpstreamError};
use crate::config::ServerConfig;
use crate::protocol::client::Transport;
use crate::sync::lock;

/// How long an upstream may take to send response headers, unless the caller says otherwise.
/// SSE bodies have no total timeout; a slow tool that answers with JSON must answer within this.
pub const HEADERS_TIMEOUT: Duration = Duration::from_secs(300);

const BEARER: &[u8] = b"Bearer ";

/// Sends the request `build` makes for a credential, with the rule of this module: refresh and
/// retry once after a 401, step up once after a 403 `insufficient_scope`, transport failures and
/// `timeout` (headers only) as `Unreachable`. `build` is called once per attempt; the usual call
/// makes one attempt.
pub async fn send<F>(
    upstream: &Upstream,
    cfg: &ServerConfig,
    timeout: Duration,
    build: F,
) -> Result<reqwest::Response, UpstreamError>
where
    F: Fn(&Credential) -> reqwest::Request,
{
    let credential = upstream.credential(cfg).await?;
    let mut response = attempt(upstream, cfg, &build, &credential, timeout).await?;
    if response.status() == StatusCode::UNAUTHORIZED {
        drop(response);
        // The rare paths are boxed so the usual call's future stays small (it is moved on
        // every call).
        let fresh = Box::pin(upstream.after_rejection(cfg, &credential)).await?;
        response = Box::pin(attempt(upstream, cfg, &build, &fresh, timeout)).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(UpstreamError::NeedsSignIn {
                server: cfg.name.to_string(),
                reason: "the upstream rejected a fresh credential (HTTP 401)".into(),
            });
        }
    }
    if response.status() != StatusCode::FORBIDDEN {
        return Ok(response);
    }
    match Box::pin(upstream.after_forbidden(cfg, response.headers())).await {
        Forbidden::PassOn => Ok(response),
        Forbidden::SignIn(e) => Err(e),
        Forbidden::Retry => {
            drop(response);
            let wider = Box::pin(upstream.credential(cfg)).await?;
            Box::pin(attempt(upstream, cfg, &build, &wider, timeout)).await
        }
    }
}

/// One request with `credential`; for a DPoP-bound one, the nonce an answer carries is
/// remembered, and a refusal that asks for it is sent once more with it.
async fn attempt<F>(
    upstream: &Upstream,
    cfg: &ServerConfig,
    build: &F,
    credential: &Credential,
    timeout: Duration,
) -> Result<reqwest::Response, UpstreamError>
where
    F: Fn(&Credential) -> reqwest::Request,
{
    let response = execute(upstream, cfg, build(credential), timeout).await?;
    let Some(dpop) = &credential.dpop else {
        return Ok(response);
    };
    let url = response.url().clone();
    if !dpop.learn_nonce(&url, response.headers())
        || !dpop::resource_wants_nonce(response.status(), response.headers())
    {
        return Ok(response);
    }
    drop(response);
    let again = Box::pin(execute(upstream, cfg, build(credential), timeout)).await?;
    dpop.learn_nonce(&url, again.headers());
    Ok(again)
}

/// One attempt: the pooled client, the headers timeout, failures in words.
async fn execute(
    upstream: &Upstream,
    cfg: &ServerConfig,
    request: reqwest::Request,
    timeout: Duration,
) -> Result<reqwest::Response, UpstreamError> {
    match tokio::time::timeout(timeout, upstream.http().execute(request)).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(unreachable(cfg, describe(&e))),
        Err(_) => Err(unreachable(
            cfg,
            format!("no response within {} s", timeout.as_secs()),
        )),
    }
}

/// Adds the upstream credential to a built request: [`attach`], or for a DPoP-bound token the
/// configured headers, `Authorization: DPoP <token>` and a proof for this method and URL (signed
/// here, once per attempt). A bearer credential costs nothing more than [`attach`].
pub fn authorize(request: &mut reqwest::Request, credential: &Credential) {
    match &credential.dpop {
        None => attach(request.headers_mut(), credential),
        Some(dpop) => {
            let proof = credential.bearer.as_ref().and_then(|token| {
                let (method, url) = (request.method().as_str(), request.url());
                dpop.proof_header(method, url, Some(token), crate::clock::unix_now())
            });
            let headers = request.headers_mut();
            attach_headers(headers, credential);
            if let (Some(proof), Some(token)) = (proof, credential.bearer.as_ref()) {
                if let Some(value) = dpop::authorization(token) {
                    headers.insert(AUTHORIZATION, value);
                    headers.insert(dpop::DPOP, proof);
                }
            }
        }
    }
}

/// The configured headers of `credential`, each marked sensitive.
fn attach_headers(headers: &mut HeaderMap, credential: &Credential) {
    for (name, value) in &credential.headers {
        if let Ok(mut v) = HeaderValue::from_str(value.expose()) {
            v.set_sensitive(true);
            headers.insert(name.clone(), v);
        }
    }
}

/// Adds a bearer credential to request headers (configured headers, then the flow's bearer),
/// every value marked sensitive so no `Debug` shows it. A configured value a header cannot
/// carry is left out (validation refuses such values; the upstream then answers 401). A
/// DPoP-bound credential needs the request's method and URL: [`authorize`].
pub fn attach(headers: &mut HeaderMap, credential: &Credential) {
    attach_headers(headers, credential);
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

/// The innermost cause of a transport error ("Connection refused"), without the URL (which may
/// carry a query the person did not mean to show).
pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// One upstream MCP endpoint reached through [`send`]: a [`Transport`] for
/// [`crate::protocol::client::Client`]. A failure of the exchange reaches the client session as
/// words (the trait's `Err`); the typed [`UpstreamError`] (e.g. `NeedsSignIn`, for a sign-in
/// link) is kept for the caller: [`Endpoint::take_failure`].
pub struct Endpoint {
    upstream: Upstream,
    cfg: ServerConfig,
    url: Url,
    timeout: Duration,
    failure: Mutex<Option<UpstreamError>>,
}

impl Endpoint {
    /// The server's own MCP endpoint (`cfg.url`), headers within [`HEADERS_TIMEOUT`].
    pub fn new(upstream: Upstream, cfg: ServerConfig) -> Endpoint {
        Endpoint {
            url: cfg.url.clone(),
            upstream,
            cfg,
            timeout: HEADERS_TIMEOUT,
            failure: Mutex::new(None),
        }
    }

    /// Another URL of the same server (the legacy transport's message endpoint).
    pub fn with_url(mut self, url: Url) -> Endpoint {
        self.url = url;
        self
    }

    /// How long the upstream may take to send response headers.
    pub fn with_timeout(mut self, timeout: Duration) -> Endpoint {
        self.timeout = timeout;
        self
    }

    pub fn cfg(&self) -> &ServerConfig {
        &self.cfg
    }

    /// The exchange's last failure, typed (taken: a second call returns `None`). With requests
    /// in parallel on one endpoint it is the latest of them.
    pub fn take_failure(&self) -> Option<UpstreamError> {
        lock(&self.failure).take()
    }

    /// [`send`] of one request with these headers and body (the credential added per attempt).
    pub async fn exchange(
        &self,
        method: Method,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<reqwest::Response, UpstreamError> {
        self.exchange_within(method, headers, body, self.timeout)
            .await
    }

    /// [`Endpoint::exchange`] waiting at most `timeout` for each attempt's response headers.
    pub async fn exchange_within(
        &self,
        method: Method,
        headers: HeaderMap,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<reqwest::Response, UpstreamError> {
        let build = |c: &Credential| request(&method, &self.url, &headers, body.as_ref(), c);
        send(&self.upstream, &self.cfg, timeout, build).await
    }
}

/// A request of these parts with `credential` attached: the `build` of [`send`] for callers
/// that hold their headers and body apart (a body in `Bytes` is shared, not copied, per try).
pub fn request(
    method: &Method,
    url: &Url,
    headers: &HeaderMap,
    body: Option<&Bytes>,
    credential: &Credential,
) -> reqwest::Request {
    let mut request = reqwest::Request::new(method.clone(), url.clone());
    request.headers_mut().clone_from(headers);
    authorize(&mut request, credential);
    if let Some(body) = body {
        *request.body_mut() = Some(body.clone().into());
    }
    request
}

impl Transport for Endpoint {
    async fn send(
        &self,
        method: Method,
        headers: HeaderMap,
        body: Option<String>,
    ) -> Result<reqwest::Response, String> {
        match self.exchange(method, headers, body.map(Bytes::from)).await {
            Ok(response) => Ok(response),
            Err(e) => {
                let words = e.to_string();
                *lock(&self.failure) = Some(e);
                Err(words)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn the_credential_goes_in_as_sensitive_headers_with_an_exact_bearer() {
        let credential = Credential {
            bearer: Some(Secret::new("t0k".to_string())),
            headers: vec![(
                http::HeaderName::from_static("x-api-key"),
                Secret::new("k".to_string()),
            )],
            dpop: None,
        };
        let mut h = HeaderMap::new();
        attach(&mut h, &credential);
        let v = h.get(AUTHORIZATION).unwrap();
        assert_eq!(v, "Bearer t0k");
        assert!(v.is_sensitive());
        assert!(h.get("x-api-key").unwrap().is_sensitive());
        assert!(!format!("{h:?}").contains("t0k"));
    }
}
