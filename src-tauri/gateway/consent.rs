//! `/authorize`, the consent page and its chaining into the upstream sign-in.
//!
//! Flow: `/authorize` checks the client, redirect URI (exact, loopback port free per RFC 8252)
//! and PKCE (S256 only). Unusable client or redirect → an error page, never a redirect. A client
//! already approved for the server whose upstream is ready gets its code at once (302).
//! Otherwise the consent page (POST + CSRF token, never framed). On approval: upstream ready →
//! 303 to the client with the code; upstream needs sign-in → the upstream sign-in is started
//! with the broker's opener (a new browser tab) and the browser is sent (303) to
//! `/authorize/continue`, which waits for the sign-in and then redirects to the client with
//! the code. Every response to the client carries `state` and `iss` (RFC 9207).
//!
//! Which server: the `resource` parameter (`http://<loopback>:PORT/{server}/mcp`), else the
//! `/{server}/authorize` path alias, else the only configured server; with several servers and
//! none named, the person picks it on the consent page.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;
use tokio::sync::watch;
use url::Url;

use super::authserver::{is_metadata_url, resolve_metadata_client};
use super::error::GatewayError;
use super::host::ClientOrigin;
use super::pages::{self, ConsentView};
use super::state::{GatewayState, MAX_PENDING};
use crate::broker::Broker;
use crate::config::ServerConfig;
use crate::issuer::{crypto, redirect, unix_now, CodeRequest, PENDING_TTL};
use crate::upstream::FailureKind;

/// How long one `/authorize/continue` request waits for the upstream sign-in before the page
/// reloads itself.
const CONTINUE_WAIT: Duration = Duration::from_secs(20);

type SignInResult = Option<Result<(), String>>;

/// An authorization request waiting for consent or for the upstream sign-in.
pub struct Pending {
    csrf: String,
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
    scope: Option<String>,
    server: Option<String>,
    /// The issuer as the client addressed it, echoed as `iss`.
    iss: String,
    created_at: u64,
    /// Set once the person approved and an upstream sign-in was started.
    sign_in: Mutex<Option<(String, String, watch::Receiver<SignInResult>)>>,
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

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    request: String,
    csrf: String,
    decision: String,
    server: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ContinueParams {
    request: String,
}

pub fn routes() -> Router<Broker> {
    Router::new()
        .route("/authorize", get(authorize_root))
        .route("/{server}/authorize", get(authorize_alias))
        .route("/consent", post(consent))
        .route("/authorize/continue", get(continue_sign_in))
}

fn page_error(message: impl Into<String>) -> GatewayError {
    GatewayError::Page {
        status: StatusCode::BAD_REQUEST,
        title: "This sign-in request cannot be used",
        message: message.into(),
    }
}

/// A redirect to the client with `params` added to its redirect URI's query.
fn redirect_to(
    redirect_uri: &str,
    params: &[(&str, Option<&str>)],
    status: StatusCode,
) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return page_error("the redirect URI is not a URL").into_response();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
    }
    let mut response = status.into_response();
    if let Ok(v) = HeaderValue::from_str(url.as_str()) {
        response.headers_mut().insert(LOCATION, v);
    }
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}

fn error_redirect(p: &Pending, error: &str, description: &str, status: StatusCode) -> Response {
    redirect_to(
        &p.redirect_uri,
        &[
            ("error", Some(error)),
            ("error_description", Some(description)),
            ("state", p.state.as_deref()),
            ("iss", Some(&p.iss)),
        ],
        status,
    )
}

/// The server a `resource` parameter names: `Ok(None)` for the gateway root (no server named).
fn server_from_resource(broker: &Broker, resource: &str) -> Result<Option<String>, String> {
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

enum UpstreamReadiness {
    Ready,
    NeedsSignIn,
    Problem(String),
}

async fn readiness(broker: &Broker, cfg: &ServerConfig) -> UpstreamReadiness {
    match broker.upstream().credential(cfg).await {
        Ok(_) => UpstreamReadiness::Ready,
        Err(e) if e.kind() == FailureKind::NeedsSignIn => UpstreamReadiness::NeedsSignIn,
        Err(e) => UpstreamReadiness::Problem(e.to_string()),
    }
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
        .filter(|s| s.enabled)
        .map(|s| s.name.to_string())
        .collect();
    pending.server = named
        .or(path_server)
        .or_else(|| (enabled.len() == 1).then(|| enabled[0].clone()));
    let status = match pending.server.as_deref().and_then(|s| config.server(s)) {
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
        server: pending.server.as_deref().ok_or(enabled.as_slice()),
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

/// Issues the code and redirects to the client.
fn complete(broker: &Broker, p: &Pending, server: &str, status: StatusCode) -> Response {
    let request = CodeRequest {
        client_id: p.client_id.clone(),
        server: server.to_string(),
        redirect_uri: p.redirect_uri.clone(),
        code_challenge: p.code_challenge.clone(),
        scope: p.scope.clone(),
    };
    let code = broker.issuer().issue_code(request, unix_now());
    redirect_to(
        &p.redirect_uri,
        &[
            ("code", Some(code.expose())),
            ("state", p.state.as_deref()),
            ("iss", Some(&p.iss)),
        ],
        status,
    )
}

fn take_pending(gw: &GatewayState, id: &str) -> Result<Arc<Pending>, GatewayError> {
    let now = unix_now();
    gw.pending().get(id).filter(|p| p.created_at + PENDING_TTL > now).cloned().ok_or_else(|| page_error("this sign-in request expired or was already used; start the sign-in again from your application"))
}

async fn consent(
    State(broker): State<Broker>,
    Extension(gw): Extension<Arc<GatewayState>>,
    Form(form): Form<ConsentForm>,
) -> Result<Response, GatewayError> {
    let p = take_pending(&gw, &form.request)?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        p.csrf.as_bytes(),
        form.csrf.as_bytes(),
    )) {
        return Err(page_error("the form's security token does not match; start the sign-in again from your application"));
    }
    if p.sign_in
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_some()
    {
        return Ok(continue_redirect(&form.request));
    }
    if form.decision != "approve" {
        gw.pending().remove(&form.request);
        return Ok(error_redirect(
            &p,
            "access_denied",
            "the person denied the request",
            StatusCode::SEE_OTHER,
        ));
    }
    let server = match (&p.server, &form.server) {
        (Some(s), _) => s.clone(),
        (None, Some(s)) => s.clone(),
        (None, None) => return Err(page_error("pick a server")),
    };
    let config = broker.config();
    let cfg = config
        .server(&server)
        .ok_or_else(|| page_error(format!("no server named \"{server}\" is configured")))?;
    broker
        .issuer()
        .add_consent(&p.client_id, &server, unix_now())?;
    if let UpstreamReadiness::NeedsSignIn = readiness(&broker, cfg).await {
        let sign_in = broker
            .upstream()
            .sign_in(cfg, &broker.settings().opener)
            .await
            .map_err(|e| GatewayError::Page {
                status: StatusCode::BAD_GATEWAY,
                title: "Sign-in could not start",
                message: e.to_string(),
            })?;
        let (tx, rx) = watch::channel(None);
        *p.sign_in.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((server.clone(), sign_in.authorize_url.to_string(), rx));
        tokio::spawn(async move {
            let result = sign_in
                .done
                .await
                .unwrap_or_else(|_| Err("the sign-in was abandoned".into()));
            tx.send_replace(Some(result));
        });
        return Ok(continue_redirect(&form.request));
    }
    gw.pending().remove(&form.request);
    Ok(complete(&broker, &p, &server, StatusCode::SEE_OTHER))
}

fn continue_redirect(request_id: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/authorize/continue?request={request_id}")) {
        response.headers_mut().insert(LOCATION, v);
    }
    response
}

async fn continue_sign_in(
    State(broker): State<Broker>,
    Extension(gw): Extension<Arc<GatewayState>>,
    Query(params): Query<ContinueParams>,
) -> Result<Response, GatewayError> {
    let p = take_pending(&gw, &params.request)?;
    let progress = p.sign_in.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let Some((server, authorize_url, mut done)) = progress else {
        return Err(page_error("nothing to continue: approve the request first"));
    };
    let _ = tokio::time::timeout(CONTINUE_WAIT, done.wait_for(Option::is_some)).await;
    let result = done.borrow().clone();
    match result {
        None => Ok(pages::waiting_page(&server, &authorize_url)),
        Some(Ok(())) => {
            gw.pending().remove(&params.request);
            Ok(complete(&broker, &p, &server, StatusCode::SEE_OTHER))
        }
        Some(Err(why)) => {
            gw.pending().remove(&params.request);
            Ok(error_redirect(
                &p,
                "access_denied",
                &format!("signing in to \"{server}\" failed: {why}"),
                StatusCode::SEE_OTHER,
            ))
        }
    }
}
