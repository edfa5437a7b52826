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
    complete, covered, error_redirect, page_error, readiness, Pending, UpstreamReadiness,
    AGGREGATE_LABEL,
};
use super::error::GatewayError;
use super::host::ClientOrigin;
use super::pages::{self, ConsentView};
use super::state::{GatewayState, MAX_PENDING};
use crate::aggregate::AUDIENCE;
use crate::broker::Broker;
use crate::issuer::PENDING_TTL;
use crate::issuer::{crypto, redirect, unix_now};

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

async fn authorize(
    broker: Broker,
    gw: Arc<GatewayState>,
    origin: ClientOrigin,
    path_server: Option<String>,
    params: AuthorizeParams,
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
    let client_id = params.client_id.ok_or_else(|| {
        page_error("client_id is missing; the application must register with this broker first")
    })?;
    let client = match broker.issuer().client(&client_id) {
        Some(c) if !c.metadata_document => c,
        _ if is_metadata_url(&client_id) => resolve_metadata_client(&broker, &client_id).await.map_err(page_error)?,
        _ => return Err(page_error("this application (client_id) is not registered with the broker; restart its sign-in so it registers again")),
    };
    let redirect_uri = match params.redirect_uri {
        Some(uri)
            if client
                .redirect_uris
                .iter()
                .any(|r| redirect::matches(r, &uri)) =>
        {
            uri
        }
        Some(uri) => {
            return Err(page_error(format!(
                "the redirect URI {uri} is not registered for this application"
            )))
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Err(page_error(
                "redirect_uri is missing and the application registered several",
            ))
        }
    };
    let mut pending = Pending {
        csrf: crypto::random_token(""),
        client_id: client.client_id.clone(),
        redirect_uri,
        state: params.state,
        code_challenge: String::new(),
        scope: params.scope,
        server: None,
        iss: origin.0.clone(),
        created_at: now,
        sign_in: Mutex::new(None),
    };
    if params.response_type.as_deref() != Some("code") {
        return Ok(error_redirect(
            &pending,
            "unsupported_response_type",
            "only response_type=code is supported",
            StatusCode::FOUND,
        ));
    }
    match (
        params.code_challenge,
        params.code_challenge_method.as_deref(),
    ) {
        (None, _) => {
            return Ok(error_redirect(
                &pending,
                "invalid_request",
                "code_challenge is required (PKCE with S256)",
                StatusCode::FOUND,
            ))
        }
        (Some(_), m) if m != Some("S256") => {
            return Ok(error_redirect(
                &pending,
                "invalid_request",
                "code_challenge_method must be S256 (plain is not accepted)",
                StatusCode::FOUND,
            ))
        }
        (Some(c), _) if !crypto::challenge_is_well_formed(&c) => {
            return Ok(error_redirect(
                &pending,
                "invalid_request",
                "code_challenge is not a S256 challenge",
                StatusCode::FOUND,
            ))
        }
        (Some(c), _) => pending.code_challenge = c,
    }
    let named = match params
        .resource
        .as_deref()
        .map(|r| server_from_resource(&broker, r))
    {
        Some(Err(e)) => {
            return Ok(error_redirect(
                &pending,
                "invalid_target",
                &e,
                StatusCode::FOUND,
            ))
        }
        Some(Ok(s)) => s,
        None => None,
    };
    if let (Some(a), Some(b)) = (&named, &path_server) {
        if a != b {
            return Ok(error_redirect(
                &pending,
                "invalid_target",
                "resource names a different server than the URL path",
                StatusCode::FOUND,
            ));
        }
    }
    let config = broker.config();
    let enabled: Vec<String> = config
        .servers
        .values()
        .filter(|s| s.enabled && !s.delegate_auth_to_upstream)
        .map(|s| s.name.to_string())
        .collect();
    pending.server = named
        .or(path_server)
        .or_else(|| (enabled.len() == 1).then(|| enabled[0].clone()));
    let status = if pending.server.as_deref() == Some(AUDIENCE) {
        if broker.issuer().has_consent(&client.client_id, AUDIENCE) {
            return Ok(complete(&broker, &pending, AUDIENCE, StatusCode::FOUND));
        }
        covered(&broker).await
    } else {
        match pending.server.as_deref().and_then(|s| config.server(s)) {
            Some(cfg) => {
                let ready = readiness(&broker, cfg).await;
                if matches!(ready, UpstreamReadiness::Ready)
                    && broker
                        .issuer()
                        .has_consent(&client.client_id, cfg.name.as_str())
                {
                    return Ok(complete(
                        &broker,
                        &pending,
                        cfg.name.as_str(),
                        StatusCode::FOUND,
                    ));
                }
                match ready {
                    UpstreamReadiness::Ready => "Ready".to_string(),
                    UpstreamReadiness::NeedsSignIn => format!(
                        "Not signed in: approving opens the sign-in page of \"{}\" in a new tab",
                        cfg.name
                    ),
                    UpstreamReadiness::Problem(p) => format!("Problem: {p}"),
                }
            }
            None if enabled.is_empty() => {
                return Ok(error_redirect(
                    &pending,
                    "invalid_target",
                    "the broker has no enabled servers; add one in the tray app",
                    StatusCode::FOUND,
                ))
            }
            None => "Depends on the server you pick; approving signs you in if needed".to_string(),
        }
    };
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
            .ok_or(enabled.as_slice()),
        upstream_status: &status,
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
    Ok(response)
}
