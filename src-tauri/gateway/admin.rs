//! The local admin API the CLI uses against a running broker: start a sign-in (the CLI opens the
//! browser on its side), sign out, check now. Authenticated by the per-start admin token in
//! `<data dir>/admin.token`; POST only, behind the loopback guard like everything else.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::mpsc;

use super::error::GatewayError;
use crate::broker::Broker;
use crate::clock::unix_now;
use crate::opener::Opener;
use crate::upstream::paste::PasteError;
use crate::upstream::{SignInKind, Started};

/// How long a sign-in started from the CLI may take before the CLI is told it expired.
pub const SIGN_IN_WAIT: Duration = Duration::from_secs(600);

pub fn routes() -> Router<Broker> {
    Router::new()
        .route("/api/admin/servers/{name}/sign-in", post(sign_in))
        .route("/api/admin/sign-in/paste", post(paste))
        .route("/api/admin/enterprise/sign-in", post(sign_in_company))
        .route("/api/admin/enterprise/sign-out", post(sign_out_company))
        .route("/api/admin/servers/{name}/sign-out", post(sign_out))
        .route("/api/admin/servers/{name}/check", post(check))
        .route("/api/admin/servers/{name}/key", get(public_key))
        .route("/api/admin/clients", get(list_clients))
        .route("/api/admin/clients/{id}/revoke", post(revoke_client))
        .route("/api/admin/grants/{id}/revoke", post(revoke_grant))
        .route("/api/admin/api-keys", post(create_api_key))
        .route("/api/admin/api-keys/{id}/revoke", post(revoke_api_key))
}

fn require_admin(broker: &Broker, headers: &HeaderMap) -> Result<(), GatewayError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(token) if broker.is_admin_token(token) => Ok(()),
        _ => Err(GatewayError::AdminTokenRequired),
    }
}

/// The server an admin request names, once the request is the admin's.
fn admin_server(
    broker: &Broker,
    headers: &HeaderMap,
    name: String,
) -> Result<crate::config::ServerConfig, GatewayError> {
    require_admin(broker, headers)?;
    broker
        .server(&name)
        .map_err(|_| GatewayError::UnknownServer(name))
}

#[derive(serde::Deserialize, Default)]
struct SignInParams {
    /// `auto` (device sign-in when offered, else the browser's), `browser` or `device`.
    #[serde(default)]
    kind: SignInKind,
}

/// Starts a sign-in and streams NDJSON: first what to show — `{"authorize_url": …,
/// "warnings": […]}` for the browser (what to know before it opens), or `{"device": {user_code,
/// verification_uri, verification_uri_complete, expires_at}}` for a device sign-in — then
/// `{"done": true, "ok": bool, "error": …}` when it ends or the wait expires.
async fn sign_in(
    State(broker): State<Broker>,
    Path(name): Path<String>,
    params: Result<Query<SignInParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    require_admin(&broker, &headers)?;
    let Query(params) = params
        .map_err(|_| GatewayError::BadRequest("kind must be auto, browser or device".into()))?;
    let server = broker
        .server(&name)
        .map_err(|_| GatewayError::UnknownServer(name))?;
    // The broker never opens a browser for the CLI: the CLI does, on the person's side.
    let started = broker
        .upstream()
        .sign_in_kind(&server, &Opener::Custom(Arc::new(|_| {})), params.kind)
        .await
        .map_err(GatewayError::AdminUpstream)?;
    Ok(sign_in_stream(started).await)
}

/// The company sign-in (`login --enterprise`), streamed as [`sign_in`] streams a server's.
async fn sign_in_company(
    State(broker): State<Broker>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    require_admin(&broker, &headers)?;
    let company = company(&broker)?;
    let started = broker
        .upstream()
        .sign_in_company(&company, &Opener::Custom(Arc::new(|_| {})))
        .await
        .map_err(GatewayError::AdminUpstream)?;
    Ok(sign_in_stream(Started::Browser(started)).await)
}

async fn sign_out_company(
    State(broker): State<Broker>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, GatewayError> {
    require_admin(&broker, &headers)?;
    let company = company(&broker)?;
    let upstream = broker.upstream();
    let config = broker.config();
    let signed_out = upstream.sign_out_company(&company, config.servers.values());
    signed_out.await.map_err(GatewayError::AdminUpstream)?;
    Ok(Json(json!({ "ok": true })))
}

/// The configured company identity provider, or why there is none.
fn company(broker: &Broker) -> Result<Arc<crate::config::EnterpriseConfig>, GatewayError> {
    broker.config().enterprise.clone().ok_or_else(|| {
        GatewayError::BadRequest("the config has no \"enterprise\" block naming the company identity provider; add one (see the README's \"Company sign-in\")".into())
    })
}

/// A started sign-in as NDJSON: what to show first, then how it ended.
async fn sign_in_stream(started: Started) -> Response {
    let (first, done, wait) = match started {
        Started::Browser(a) => (
            json!({ "authorize_url": a.authorize_url.as_str(), "warnings": a.warnings }),
            a.done,
            SIGN_IN_WAIT,
        ),
        Started::Device(d) => {
            // The sign-in ends by itself when the code expires; this is only a backstop.
            let left = d.code.expires_at.saturating_sub(unix_now());
            let wait = Duration::from_secs(left + 60);
            (json!({ "device": d.code }), d.done, wait)
        }
    };
    let (tx, rx) = mpsc::channel::<String>(2);
    let _ = tx.send(format!("{first}\n")).await;
    tokio::spawn(async move {
        let line = match tokio::time::timeout(wait, done).await {
            Ok(Ok(Ok(()))) => json!({ "done": true, "ok": true }),
            Ok(Ok(Err(reason))) => json!({ "done": true, "ok": false, "error": reason }),
            Ok(Err(_)) => {
                json!({ "done": true, "ok": false, "error": "the sign-in was abandoned by the broker (another sign-in to this server replaced it, or the broker stopped)" })
            }
            Err(_) => {
                json!({ "done": true, "ok": false, "error": "the sign-in did not finish in time; run the command again" })
            }
        };
        let _ = tx.send(format!("{line}\n")).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (Ok::<_, Infallible>(line), rx))
    });
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// A `private_key_jwt` server's public key (JWK and JWK Set) to register with the provider;
/// the key is generated on first need and its private half never leaves the token store.
async fn public_key(
    State(broker): State<Broker>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, GatewayError> {
    let server = admin_server(&broker, &headers, name)?;
    let shown = crate::upstream::assertion::public_key(broker.vault(), &server).await;
    shown.map(Json).map_err(GatewayError::AdminUpstream)
}

#[derive(serde::Deserialize)]
struct Paste {
    /// The `state` of the sign-in the CLI started (from its authorization URL).
    state: String,
    /// What the person pasted: the address the browser ended on, or just the code.
    input: String,
}

/// Finishes a sign-in with what the person pasted into `login --no-browser`, through the
/// callback's own completion; the sign-in stream then reports the result as usual.
async fn paste(
    State(broker): State<Broker>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, GatewayError> {
    require_admin(&broker, &headers)?;
    let p: Paste = serde_json::from_slice(&body).map_err(|e| {
        GatewayError::BadRequest(format!(
            "expected {{\"state\": \"...\", \"input\": \"...\"}}: {e}"
        ))
    })?;
    match broker.upstream().paste(&p.input, &p.state).await {
        Ok(server) => Ok(Json(json!({ "ok": true, "server": server.as_str() }))),
        Err(PasteError::Input(why)) => Err(GatewayError::BadRequest(why)),
        Err(PasteError::SignIn(e)) => Err(GatewayError::AdminUpstream(e)),
    }
}

async fn sign_out(
    State(broker): State<Broker>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, GatewayError> {
    let server = admin_server(&broker, &headers, name)?;
    broker
        .upstream()
        .sign_out(&server)
        .await
        .map_err(GatewayError::AdminUpstream)?;
    Ok(Json(json!({ "ok": true })))
}

async fn check(
    State(broker): State<Broker>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, GatewayError> {
    let server = admin_server(&broker, &headers, name)?;
    broker.health().check_now(&server.name);
    Ok(StatusCode::ACCEPTED)
}

/// Registered clients, their grants, and API keys (never a token or key value).
async fn list_clients(
    State(broker): State<Broker>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, GatewayError> {
    require_admin(&broker, &headers)?;
    let issuer = broker.issuer();
    Ok(Json(
        json!({ "clients": issuer.list_clients(), "grants": issuer.list_grants(), "api_keys": issuer.list_api_keys() }),
    ))
}

async fn revoke_client(
    State(broker): State<Broker>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, GatewayError> {
    require_admin(&broker, &headers)?;
    found(broker.issuer().revoke_client(&id)?, "client", &id)
}

async fn revoke_grant(
    State(broker): State<Broker>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, GatewayError> {
    require_admin(&broker, &headers)?;
    found(broker.issuer().revoke_grant(&id)?, "grant", &id)
}

#[derive(serde::Deserialize)]
struct NewKey {
    name: String,
    server: Option<String>,
}

/// Creates an API key; the response is the only time its value is shown.
async fn create_api_key(
    State(broker): State<Broker>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, GatewayError> {
    // Authenticate before looking at the body, so a stranger learns nothing from parse errors.
    require_admin(&broker, &headers)?;
    let new: NewKey = serde_json::from_slice(&body).map_err(|e| {
        GatewayError::BadRequest(format!(
            "expected {{\"name\": \"...\", \"server\": \"...\"}}: {e}"
        ))
    })?;
    if let Some(server) = &new.server {
        broker
            .server(server)
            .map_err(|_| GatewayError::UnknownServer(server.clone()))?;
    }
    if new.name.trim().is_empty() || new.name.len() > 100 {
        return Err(GatewayError::BadRequest(
            "an API key needs a name of 1 to 100 characters".into(),
        ));
    }
    let (info, key) = broker
        .issuer()
        .create_api_key(new.name.trim(), new.server.as_deref())?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "api_key": info, "key": key.expose() })),
    )
        .into_response())
}

async fn revoke_api_key(
    State(broker): State<Broker>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, GatewayError> {
    require_admin(&broker, &headers)?;
    found(broker.issuer().revoke_api_key(&id)?, "API key", &id)
}

fn found(revoked: bool, what: &str, id: &str) -> Result<Json<serde_json::Value>, GatewayError> {
    if revoked {
        Ok(Json(json!({ "ok": true })))
    } else {
        Err(GatewayError::NotFound(format!(
            "{what} {id}; list them with `mcp-auth-broker clients`"
        )))
    }
}
