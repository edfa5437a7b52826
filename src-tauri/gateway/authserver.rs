//! The authorization server's discovery and registration: RFC 8414 / OIDC discovery metadata,
//! RFC 7591 registration, and client ID metadata documents (CIMD) fetched under the URL, size
//! and time guards.
//!
//! The issuer is the gateway root URL in the loopback spelling the client used (see
//! [`super::host`]); the metadata's `issuer` always equals the URL it was fetched from.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::error::GatewayError;
use super::host::ClientOrigin;
use super::state::GatewayState;
use crate::broker::Broker;
use crate::clock::unix_now;
use crate::issuer::{Client, RegistrationError, RegistrationRequest};
use crate::upstream::http::PublicResolver;
use crate::urlcheck;
use url::Url;

/// Largest registration request or metadata document read.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// Time allowed to fetch a client ID metadata document.
pub const CIMD_TIMEOUT: Duration = Duration::from_secs(5);

pub fn routes() -> Router<Broker> {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/register", post(register))
        .route("/{server}/register", post(register))
}

pub fn metadata_document(origin: &ClientOrigin) -> Value {
    json!({
        "issuer": origin.0,
        "authorization_endpoint": origin.endpoint("/authorize"),
        "token_endpoint": origin.endpoint("/token"),
        "registration_endpoint": origin.endpoint("/register"),
        "revocation_endpoint": origin.endpoint("/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
        "scopes_supported": [],
    })
}

async fn metadata(origin: ClientOrigin) -> Json<Value> {
    Json(metadata_document(&origin))
}

async fn register(
    State(broker): State<Broker>,
    Extension(gw): Extension<Arc<GatewayState>>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), GatewayError> {
    let now = unix_now();
    if !gw.allow_registration(now) {
        return Err(GatewayError::TooManyRequests);
    }
    if body.len() > MAX_METADATA_BYTES {
        return Err(GatewayError::PayloadTooLarge(MAX_METADATA_BYTES));
    }
    let request: RegistrationRequest = serde_json::from_slice(&body).map_err(|e| {
        oauth_error(RegistrationError::InvalidMetadata(format!(
            "the body must be a JSON client metadata object ({e})"
        )))
    })?;
    let client = broker
        .issuer()
        .register(request, now)?
        .map_err(oauth_error)?;
    tracing::info!(client_id = %client.client_id, name = ?client.client_name, "registered a local client");
    Ok((StatusCode::CREATED, Json(client_json(&client))))
}

fn oauth_error(e: RegistrationError) -> GatewayError {
    GatewayError::OAuth {
        status: StatusCode::BAD_REQUEST,
        code: e.code(),
        description: e.to_string(),
    }
}

fn client_json(c: &Client) -> Value {
    let mut v = json!({
        "client_id": c.client_id,
        "client_id_issued_at": c.created_at,
        "redirect_uris": c.redirect_uris,
        "grant_types": c.grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": c.application_type,
    });
    if let Some(name) = &c.client_name {
        v["client_name"] = json!(name);
    }
    v
}

/// True when a `client_id` is a client ID metadata document URL rather than a registered id.
pub fn is_metadata_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Fetches and validates a client ID metadata document: https off loopback ([`document_url`]),
/// no redirects, 64 KiB and 5 s caps, `client_id` equal to the URL, redirect URIs under the
/// registration rules. Falls back to the last good copy when the fetch fails (never when the
/// URL itself is refused).
pub async fn resolve_metadata_client(broker: &Broker, client_id: &str) -> Result<Client, String> {
    let url = document_url(broker, client_id)?;
    let fetched = fetch_document(url, client_id).await;
    match fetched {
        Ok(client) => {
            if let Err(e) = broker.issuer().upsert_metadata_client(client.clone()) {
                tracing::warn!("cannot record client metadata document: {e}");
            }
            Ok(client)
        }
        Err(e) => broker
            .issuer()
            .client(client_id)
            .filter(|c| c.metadata_document)
            .ok_or(e),
    }
}

/// The client that fetches metadata documents: any web page can name one (a cross-site
/// navigation to `/authorize`), so its resolver also refuses loopback answers, and it follows
/// no redirect.
fn document_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(PublicResolver))
            .connect_timeout(CIMD_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client builds")
    })
}

/// The URL of a client ID metadata document: https and never this computer
/// ([`urlcheck::check_public_url`]); plain `http://127.0.0.1` only under the issuer's test-only
/// allowance.
fn document_url(broker: &Broker, client_id: &str) -> Result<Url, String> {
    let checked = if broker.issuer().plain_loopback_documents()
        && client_id.starts_with("http://127.0.0.1:")
    {
        urlcheck::check_remote_url(client_id)
    } else {
        urlcheck::check_public_url(client_id)
    };
    let url = checked.map_err(|p| format!("the client_id URL {p}; a client ID metadata document must be served over https from a public host"))?;
    if url.path() == "/" || url.path().is_empty() {
        return Err("a client ID metadata document URL must have a path".into());
    }
    Ok(url)
}

async fn fetch_document(url: Url, client_id: &str) -> Result<Client, String> {
    let work = async {
        let response = document_client()
            .get(url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("cannot fetch the client's metadata document: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "the client's metadata document answered HTTP {}",
                response.status()
            ));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| format!("reading the client's metadata document failed: {e}"))?;
            if body.len() + chunk.len() > MAX_METADATA_BYTES {
                return Err(format!(
                    "the client's metadata document is larger than {MAX_METADATA_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    let body = tokio::time::timeout(CIMD_TIMEOUT, work)
        .await
        .map_err(|_| "fetching the client's metadata document timed out".to_string())??;
    let doc: RegistrationRequest = serde_json::from_slice(&body).map_err(|e| {
        format!("the client's metadata document is not valid client metadata JSON ({e})")
    })?;
    if doc.client_id.as_deref() != Some(client_id) {
        return Err(
            "the client's metadata document names a different client_id than its URL".into(),
        );
    }
    let mut client = doc
        .into_client_with_id(client_id.to_string(), unix_now())
        .map_err(|e| e.to_string())?;
    client.metadata_document = true;
    Ok(client)
}
