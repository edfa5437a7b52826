//! The gateway as an OAuth protected resource (RFC 9728): per-server metadata and the bearer
//! check every `/{server}/mcp` request passes.
//!
//! Credentials accepted: a broker access token as `Authorization: Bearer <token>`, or a local API
//! key (`mab_key_…`) as `Authorization: Bearer <key>` or `x-api-key: <key>`. Tokens in the query
//! string are never read.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use super::error::GatewayError;
use super::host::ClientOrigin;
use super::state::GatewayState;
use crate::broker::Broker;
use crate::clock::unix_now;
use crate::issuer::{AuthFailure, Principal};

pub fn routes() -> Router<Broker> {
    Router::new().route(
        "/.well-known/oauth-protected-resource/{server}/mcp",
        get(metadata),
    )
}

async fn metadata(
    State(broker): State<Broker>,
    Extension(gw): Extension<Arc<GatewayState>>,
    Path(server): Path<String>,
    origin: ClientOrigin,
) -> Result<Json<Value>, GatewayError> {
    let config = broker.config();
    let Some(cfg) = config.server(&server) else {
        return Err(GatewayError::UnknownServer(server));
    };
    if cfg.delegate_auth_to_upstream {
        return super::delegate::metadata(&broker, &gw.delegate, cfg, &origin).await;
    }
    Ok(Json(json!({
        "resource": origin.resource(&server),
        "authorization_servers": [origin.0],
        "bearer_methods_supported": ["header"],
        "resource_name": format!("{server} (via MCP Auth Broker)"),
    })))
}

/// The credential a request carries, if any.
fn presented(headers: &HeaderMap) -> Option<Result<&str, ()>> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let text = value.to_str().map_err(|_| ());
        return Some(text.and_then(|t| {
            let (scheme, token) = t.split_once(' ').ok_or(())?;
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
                Ok(token.trim())
            } else {
                Err(())
            }
        }));
    }
    headers
        .get("x-api-key")
        .map(|v| v.to_str().map(str::trim).map_err(|_| ()))
}

/// Checks the request's credential for `server`; a 401 with the resource's challenge otherwise.
pub fn authenticate(
    broker: &Broker,
    headers: &HeaderMap,
    server: &str,
    origin: &ClientOrigin,
) -> Result<Principal, GatewayError> {
    let unauthorized = |invalid_token: bool, description: String| GatewayError::Unauthorized {
        resource_metadata: origin.resource_metadata(server),
        invalid_token,
        description,
    };
    match presented(headers) {
        None => Err(unauthorized(false, format!("authorization required for server \"{server}\": sign in through this broker (OAuth; see resource_metadata) or send a local API key"))),
        Some(Err(())) => Err(unauthorized(true, "the Authorization header must be \"Bearer <token>\"".into())),
        Some(Ok(token)) => broker.issuer().authenticate(token, server, unix_now()).map_err(|failure| {
            let why = match failure {
                AuthFailure::Unknown => "the token is not known to this broker (revoked, or from elsewhere)".to_string(),
                AuthFailure::Expired => "the access token expired; refresh it".to_string(),
                AuthFailure::WrongServer => format!("the token was issued for another server, not \"{server}\""),
            };
            unauthorized(true, why)
        }),
    }
}

/// The 401 a principal gets when it authenticated with an API key but the upstream needs an
/// interactive sign-in: OAuth-capable clients then start the browser flow through the broker
/// (whose consent chains into the upstream sign-in); scripts read the description.
pub fn sign_in_challenge(origin: &ClientOrigin, server: &str, description: String) -> GatewayError {
    GatewayError::Unauthorized {
        resource_metadata: origin.resource_metadata(server),
        invalid_token: false,
        description,
    }
}
