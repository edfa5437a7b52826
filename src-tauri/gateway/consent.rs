//! The consent page and its chaining into the upstream sign-in (the request side is
//! [`super::authorize`]).
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

use crate::aggregate::{names, AUDIENCE};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;
use tokio::sync::watch;
use url::Url;

use super::error::GatewayError;
use super::pages;
use super::state::GatewayState;
use crate::broker::Broker;
use crate::clock::unix_now;
use crate::config::ServerConfig;
use crate::issuer::{CodeRequest, PENDING_TTL};
use crate::sync::lock;
use crate::upstream::FailureKind;
use crate::words::{self, Problem};

/// How long one `/authorize/continue` request waits for the upstream sign-in before the page
/// reloads itself.
pub(super) const CONTINUE_WAIT: Duration = Duration::from_secs(20);

pub(super) type SignInResult = Option<Result<(), String>>;

/// An authorization request waiting for consent or for the upstream sign-in.
pub struct Pending {
    pub(super) csrf: String,
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) state: Option<String>,
    pub(super) code_challenge: String,
    pub(super) scope: Option<String>,
    pub(super) server: Option<String>,
    /// The issuer as the client addressed it, echoed as `iss`.
    pub(super) iss: String,
    pub(super) created_at: u64,
    /// Set once the person approved and an upstream sign-in was started.
    pub(super) sign_in: Mutex<Option<(String, String, watch::Receiver<SignInResult>)>>,
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
        .route("/consent", post(consent))
        .route("/authorize/continue", get(continue_sign_in))
}

pub(super) fn page_error(message: impl Into<String>) -> GatewayError {
    GatewayError::Page {
        status: StatusCode::BAD_REQUEST,
        title: "This sign-in request cannot be used",
        message: message.into(),
    }
}

/// A redirect to the client with `params` added to its redirect URI's query.
pub(super) fn redirect_to(
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

pub(super) fn error_redirect(
    p: &Pending,
    error: &str,
    description: &str,
    status: StatusCode,
) -> Response {
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

pub(super) enum UpstreamReadiness {
    Ready,
    NeedsSignIn,
    /// Signing in cannot work now (keychain, setup, the server itself): the page shows the fix.
    Problem(Problem),
}

/// How the consent page names the aggregate endpoint.
pub(super) const AGGREGATE_LABEL: &str = "All servers (/mcp)";

/// The servers `/mcp` covers and whether each is ready, for the consent page.
pub(super) async fn covered(broker: &Broker) -> String {
    let config = broker.config();
    let mut lines = Vec::new();
    for cfg in config.servers.values().filter(|c| names::aggregated(c)) {
        let state = match readiness(broker, cfg).await {
            UpstreamReadiness::Ready => "ready".to_string(),
            UpstreamReadiness::NeedsSignIn => {
                "not signed in: sign in from the tray to use its tools".to_string()
            }
            UpstreamReadiness::Problem(p) => format!("cannot be used now: {}", p.sentence),
        };
        lines.push(format!("{}: {state}", cfg.name));
    }
    if lines.is_empty() {
        return "Covers no servers yet: add one in the tray app".into();
    }
    format!("Covers {}", lines.join("; "))
}

pub(super) async fn readiness(broker: &Broker, cfg: &ServerConfig) -> UpstreamReadiness {
    match broker.upstream().credential(cfg).await {
        Ok(_) => UpstreamReadiness::Ready,
        Err(e) if e.kind() == FailureKind::NeedsSignIn => UpstreamReadiness::NeedsSignIn,
        Err(e) => UpstreamReadiness::Problem(words::explain_upstream(&e)),
    }
}

/// `ready` for the person deciding: a server whose last check found it unusable in a way no
/// sign-in fixes (it refuses connections, its keychain is locked, its setup is unfinished, it
/// does not speak MCP) is a problem even when a credential is at hand.
pub(super) fn with_last_check(
    broker: &Broker,
    cfg: &ServerConfig,
    ready: UpstreamReadiness,
) -> UpstreamReadiness {
    if let UpstreamReadiness::Problem(_) = ready {
        return ready;
    }
    let checked = broker.health().snapshot().remove(cfg.name.as_str());
    match checked.as_ref().and_then(words::explain_status) {
        Some(p) if !p.kind.signing_in_fixes() => UpstreamReadiness::Problem(p),
        _ => ready,
    }
}

/// Issues the code and redirects to the client.
pub(super) fn complete(broker: &Broker, p: &Pending, server: &str, status: StatusCode) -> Response {
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
    if lock(&p.sign_in).is_some() {
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
    if server == AUDIENCE {
        broker
            .issuer()
            .add_consent(&p.client_id, AUDIENCE, unix_now())?;
        gw.pending().remove(&form.request);
        return Ok(complete(&broker, &p, AUDIENCE, StatusCode::SEE_OTHER));
    }
    let config = broker.config();
    let cfg = config
        .server(&server)
        .ok_or_else(|| page_error(format!("no server named \"{server}\" is configured")))?;
    super::delegate::refuse_broker_sign_in(cfg)?;
    let ready = with_last_check(&broker, cfg, readiness(&broker, cfg).await);
    if let UpstreamReadiness::Problem(problem) = &ready {
        // The page offered no Allow for this; a form sent anyway gets the fix, not a code.
        return Ok(cannot_sign_in(&server, problem));
    }
    broker
        .issuer()
        .add_consent(&p.client_id, &server, unix_now())?;
    if let UpstreamReadiness::NeedsSignIn = ready {
        return start_sign_in(&broker, &p, cfg, &form.request).await;
    }
    gw.pending().remove(&form.request);
    Ok(complete(&broker, &p, &server, StatusCode::SEE_OTHER))
}

/// Why a server cannot be signed in, and the fix, as a page.
fn cannot_sign_in(server: &str, p: &Problem) -> Response {
    pages::problem_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "This server cannot be used yet",
        &format!("Signing in to \"{server}\" cannot work right now. Fix this, then start again from your app."),
        p,
    )
}

/// Approved, the server needs the person's sign-in: open it in a new tab and send this browser
/// to wait for it.
async fn start_sign_in(
    broker: &Broker,
    p: &Pending,
    cfg: &ServerConfig,
    request: &str,
) -> Result<Response, GatewayError> {
    let server = cfg.name.to_string();
    let sign_in = match broker
        .upstream()
        .sign_in(cfg, &broker.settings().opener)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            let status = match e.kind() {
                FailureKind::Unreachable => StatusCode::BAD_GATEWAY,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            return Ok(pages::problem_page(
                status,
                "Sign-in could not start",
                &format!("The sign-in to \"{server}\" could not start."),
                &words::explain_upstream(&e),
            ));
        }
    };
    let (tx, rx) = watch::channel(None);
    *lock(&p.sign_in) = Some((server, sign_in.authorize_url.to_string(), rx));
    tokio::spawn(async move {
        let result = sign_in
            .done
            .await
            .unwrap_or_else(|_| Err("the sign-in was abandoned".into()));
        tx.send_replace(Some(result));
    });
    Ok(continue_redirect(request))
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
    let progress = lock(&p.sign_in).clone();
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
