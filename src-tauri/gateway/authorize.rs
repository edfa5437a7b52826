//! `/authorize` (and the `/{server}/authorize` alias): checks the client, its redirect URI
//! (exact, loopback port free per RFC 8252) and PKCE (S256 only), picks the server, and either
//! issues the code at once (client already approved, upstream ready) or shows the consent page
//! ([`super::consent`]). An unusable client or redirect URI gets an error page, never a redirect.
//!
//! Which server: the `resource` parameter (`http://<loopback>:PORT/{server}/mcp`, or `/mcp` for
//! the aggregate endpoint, whose consent lists the servers it covers), else the
//! `/{server}/authorize` path alias, else the only configured server; with several servers and
//! none named, the person picks it on the consent page.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;
use url::Url;

use super::authserver::{is_metadata_url, resolve_metadata_client};
use super::consent::{
    complete, covered, error_redirect, page_error, readiness, with_last_check, Pending,
    UpstreamReadiness, AGGREGATE_LABEL,
};
use super::error::GatewayError;
use super::host::ClientOrigin;
use super::pages::{self, ConsentView};
use super::state::{GatewayState, MAX_PENDING};
use crate::aggregate::AUDIENCE;
use crate::broker::Broker;
use crate::clock::unix_now;
use crate::issuer::PENDING_TTL;
use crate::issuer::{crypto, redirect, Client};
use crate::words::Problem;

pub fn routes() -> Router<Broker> {
    Router::new()
        .route("/authorize", get(authorize_root))
        .route("/{server}/authorize", get(authorize_alias))
}

#[derive(Debug, Default, Deserialize)]
pub struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    state: Option<String>,
    resource: Option<String>,
    scope: Option<String>,
}

/// The server a `resource` parameter names: `Ok(None)` for the gateway root (no server named).
pub(super) fn server_from_resource(
    broker: &Broker,
    resource: &str,
) -> Result<Option<String>, String> {
    let bad = || {
        format!("resource \"{resource}\" is not one of this broker's servers (expected http://127.0.0.1:{}/SERVER/mcp)", broker.settings().port)
    };
    let url = Url::parse(resource).map_err(|_| bad())?;
    let authority = format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    );
    if url.scheme() != "http"
        || !super::guard::is_loopback_authority(&authority, broker.settings().port)
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(bad());
    }
    let path = url.path().trim_end_matches('/');
    if path.is_empty() {
        return Ok(None);
    }
    if path == "/mcp" {
        return Ok(Some(AUDIENCE.to_string()));
    }
    let server = path
        .strip_prefix('/')
        .and_then(|p| p.strip_suffix("/mcp"))
        .filter(|s| !s.contains('/'))
        .ok_or_else(bad)?;
    broker
        .config()
        .server(server)
        .map(|_| Some(server.to_string()))
        .ok_or_else(bad)
}

async fn authorize_root(
    State(broker): State<Broker>,
    Extension(gw): Extension<Arc<GatewayState>>,
    origin: ClientOrigin,
    Query(params): Query<AuthorizeParams>,
) -> Result<Response, GatewayError> {
    authorize(broker, gw, origin, None, params).await
}

async fn authorize_alias(
    State(broker): State<Broker>,
    Extension(gw): Extension<Arc<GatewayState>>,
    origin: ClientOrigin,
    Path(server): Path<String>,
    Query(params): Query<AuthorizeParams>,
) -> Result<Response, GatewayError> {
    if broker.config().server(&server).is_none() {
        return Err(GatewayError::UnknownServer(server));
    }
    authorize(broker, gw, origin, Some(server), params).await
}

/// The requesting client: registered, or known by its metadata document (fetched now).
async fn requesting_client(
    broker: &Broker,
    client_id: Option<&str>,
) -> Result<Client, GatewayError> {
    let client_id = client_id.ok_or_else(|| {
        page_error("client_id is missing; the application must register with this broker first")
    })?;
    match broker.issuer().client(client_id) {
        Some(c) if !c.metadata_document => Ok(c),
        _ if is_metadata_url(client_id) => resolve_metadata_client(broker, client_id).await.map_err(page_error),
        _ => Err(page_error("this application (client_id) is not registered with the broker; restart its sign-in so it registers again")),
    }
}

/// The redirect URI to use: one the client registered (loopback port free), or its only one.
fn registered_redirect(client: &Client, requested: Option<String>) -> Result<String, GatewayError> {
    match requested {
        Some(uri)
            if client
                .redirect_uris
                .iter()
                .any(|r| redirect::matches(r, &uri)) =>
        {
            Ok(uri)
        }
        Some(uri) => Err(page_error(format!(
            "the redirect URI {uri} is not registered for this application"
        ))),
        None if client.redirect_uris.len() == 1 => Ok(client.redirect_uris[0].clone()),
        None => Err(page_error(
            "redirect_uri is missing and the application registered several",
        )),
    }
}

/// `response_type=code` and a S256 `code_challenge`: the challenge, or the error code and why.
fn code_challenge(params: &AuthorizeParams) -> Result<String, (&'static str, &'static str)> {
    if params.response_type.as_deref() != Some("code") {
        return Err((
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    match (
        &params.code_challenge,
        params.code_challenge_method.as_deref(),
    ) {
        (None, _) => Err((
            "invalid_request",
            "code_challenge is required (PKCE with S256)",
        )),
        (Some(_), m) if m != Some("S256") => Err((
            "invalid_request",
            "code_challenge_method must be S256 (plain is not accepted)",
        )),
        (Some(c), _) if !crypto::challenge_is_well_formed(c) => {
            Err(("invalid_request", "code_challenge is not a S256 challenge"))
        }
        (Some(c), _) => Ok(c.clone()),
    }
}

/// An error before consent. A registered client gets it at its redirect URI (RFC 6749
/// §4.1.2.1). A client known only by its metadata document gets a page on the broker: its
/// redirect URI is vouched for by nobody but the requester (any web page can name any
/// document), so redirecting there would make the broker an open redirector.
fn refuse_before_consent(
    client: &Client,
    pending: &Pending,
    error: &str,
    description: &str,
) -> Result<Response, GatewayError> {
    if client.metadata_document {
        return Err(page_error(format!("{description} ({error}). The application is known only by its metadata document, so the broker does not send you back to it before you approve it; start the sign-in again from the application.")));
    }
    Ok(error_redirect(
        pending,
        error,
        description,
        StatusCode::FOUND,
    ))
}

async fn authorize(
    broker: Broker,
    gw: Arc<GatewayState>,
    origin: ClientOrigin,
    path_server: Option<String>,
    mut params: AuthorizeParams,
) -> Result<Response, GatewayError> {
    let now = unix_now();
    let target = params
        .resource
        .as_deref()
        .map(|r| server_from_resource(&broker, r));
    if let Some(cfg) = target
        .and_then(|t| t.ok().flatten())
        .or(path_server.clone())
        .and_then(|s| broker.config().server(&s).cloned())
    {
        super::delegate::refuse_broker_sign_in(&cfg)?;
    }
    let client = requesting_client(&broker, params.client_id.as_deref()).await?;
    let redirect_uri = registered_redirect(&client, params.redirect_uri.take())?;
    let mut pending = Pending {
        csrf: crypto::random_token(""),
        client_id: client.client_id.clone(),
        redirect_uri,
        state: params.state.take(),
        code_challenge: String::new(),
        scope: params.scope.take(),
        server: None,
        iss: origin.0.clone(),
        created_at: now,
        sign_in: Mutex::new(None),
    };
    match code_challenge(&params) {
        Ok(c) => pending.code_challenge = c,
        Err((error, why)) => return refuse_before_consent(&client, &pending, error, why),
    }
    let found = target_server(&broker, params.resource.as_deref(), path_server);
    let enabled = match found {
        Ok((server, enabled)) => {
            pending.server = server;
            enabled
        }
        Err(why) => return refuse_before_consent(&client, &pending, "invalid_target", &why),
    };
    let status = match settle(&broker, &client, &pending, &enabled).await? {
        Settled::Done(response) => return Ok(response),
        Settled::Ask(status) => status,
    };
    Ok(show_consent(&gw, &client, pending, &enabled, status, now))
}

/// The server a request is for — named by `resource` (which must agree with the URL path), by
/// the path, or the only one a person may sign in to — and the servers they may pick from.
fn target_server(
    broker: &Broker,
    resource: Option<&str>,
    path_server: Option<String>,
) -> Result<(Option<String>, Vec<String>), String> {
    let named = match resource.map(|r| server_from_resource(broker, r)) {
        Some(Err(e)) => return Err(e),
        Some(Ok(s)) => s,
        None => None,
    };
    if let (Some(a), Some(b)) = (&named, &path_server) {
        if a != b {
            return Err("resource names a different server than the URL path".into());
        }
    }
    let enabled: Vec<String> = broker
        .config()
        .servers
        .values()
        .filter(|s| s.enabled && !s.delegate_auth_to_upstream)
        .map(|s| s.name.to_string())
        .collect();
    let server = named
        .or(path_server)
        .or_else(|| (enabled.len() == 1).then(|| enabled[0].clone()));
    Ok((server, enabled))
}

/// What a request with a client, redirect URI and PKCE in order comes to.
enum Settled {
    /// Consent given before and the upstream ready (the code), or a refusal.
    Done(Response),
    /// Ask the person; the consent page's words on the server's readiness, or why it cannot be
    /// signed in now (no Allow then, the fix instead).
    Ask(Result<String, Problem>),
}

async fn settle(
    broker: &Broker,
    client: &Client,
    pending: &Pending,
    enabled: &[String],
) -> Result<Settled, GatewayError> {
    if pending.server.as_deref() == Some(AUDIENCE) {
        if broker.issuer().has_consent(&client.client_id, AUDIENCE) {
            return Ok(Settled::Done(complete(
                broker,
                pending,
                AUDIENCE,
                StatusCode::FOUND,
            )));
        }
        return Ok(Settled::Ask(Ok(covered(broker).await)));
    }
    let config = broker.config();
    let Some(cfg) = pending.server.as_deref().and_then(|s| config.server(s)) else {
        if enabled.is_empty() {
            let why = "the broker has no enabled servers; add one in the tray app";
            return refuse_before_consent(client, pending, "invalid_target", why)
                .map(Settled::Done);
        }
        let status = "Depends on the server you pick; allowing signs you in if needed";
        return Ok(Settled::Ask(Ok(status.to_string())));
    };
    let ready = readiness(broker, cfg).await;
    let server = cfg.name.as_str();
    if matches!(ready, UpstreamReadiness::Ready)
        && broker.issuer().has_consent(&client.client_id, server)
    {
        return Ok(Settled::Done(complete(
            broker,
            pending,
            server,
            StatusCode::FOUND,
        )));
    }
    // Asking the person: what the last check found counts too.
    let ready = with_last_check(broker, cfg, ready);
    Ok(Settled::Ask(match ready {
        UpstreamReadiness::Ready => Ok("Signed in and ready".to_string()),
        UpstreamReadiness::NeedsSignIn => Ok(format!(
            "Not signed in yet: allowing opens the sign-in page of \"{server}\" in a new tab"
        )),
        UpstreamReadiness::Problem(p) => Err(p),
    }))
}

/// The consent page, with the request kept (bounded, oldest dropped) until it is answered.
fn show_consent(
    gw: &GatewayState,
    client: &Client,
    pending: Pending,
    enabled: &[String],
    status: Result<String, Problem>,
    now: u64,
) -> Response {
    let id = crypto::random_id();
    let client_name = client
        .client_name
        .clone()
        .unwrap_or_else(|| "An unnamed application".into());
    let response = pages::consent_page(&ConsentView {
        request_id: &id,
        csrf: &pending.csrf,
        client_name: &client_name,
        client_id: &client.client_id,
        redirect_host: &redirect::display_host(&pending.redirect_uri),
        redirect_uri: &pending.redirect_uri,
        server: pending
            .server
            .as_deref()
            .map(|s| if s == AUDIENCE { AGGREGATE_LABEL } else { s })
            .ok_or(enabled),
        upstream: status.as_deref(),
        metadata_document: client.metadata_document,
    });
    let mut all = gw.pending();
    all.retain(|_, p| p.created_at + PENDING_TTL > now);
    if all.len() >= MAX_PENDING {
        if let Some(oldest) = all
            .iter()
            .min_by_key(|(_, p)| p.created_at)
            .map(|(k, _)| k.clone())
        {
            all.remove(&oldest);
        }
    }
    all.insert(id, Arc::new(pending));
    response
}
