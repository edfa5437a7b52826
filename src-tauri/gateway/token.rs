//! `/token` (authorization code with PKCE, refresh with rotation) and `/revoke` (RFC 7009).
//! Public clients identify themselves with `client_id` in the form (or HTTP Basic with an empty
//! secret). Every answer carries `Cache-Control: no-store`; errors use RFC 6749 §5.2 bodies.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;

use super::authorize::server_from_resource;
use super::error::GatewayError;
use crate::broker::{Broker, Event};
use crate::issuer::{unix_now, Client, Revocation, TokenError, TokenSet};

/// Largest token or revocation request read.
const MAX_FORM: usize = 16 * 1024;

pub fn routes() -> Router<Broker> {
    Router::new()
        .route("/token", post(token))
        .route("/{server}/token", post(token_alias))
        .route("/revoke", post(revoke))
}

fn oauth(e: TokenError) -> GatewayError {
    let status = if matches!(e, TokenError::InvalidClient(_)) {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    GatewayError::OAuth {
        status,
        code: e.code(),
        description: e.to_string(),
    }
}

/// The form fields, refusing duplicates (RFC 6749 §3.2: parameters must not repeat).
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(body: &Bytes) -> Result<Fields, GatewayError> {
        if body.len() > MAX_FORM {
            return Err(GatewayError::PayloadTooLarge(MAX_FORM));
        }
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
        for (i, (k, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(k2, _)| k2 == k) {
                return Err(oauth(TokenError::InvalidRequest(format!(
                    "the parameter {k} is repeated"
                ))));
            }
        }
        Ok(Fields(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn require(&self, name: &str) -> Result<&str, GatewayError> {
        self.get(name)
            .ok_or_else(|| oauth(TokenError::InvalidRequest(format!("{name} is required"))))
    }
}

/// `client_id` from the form or from HTTP Basic (public clients: any secret is ignored).
fn client_id(fields: &Fields, headers: &HeaderMap) -> Option<String> {
    if let Some(id) = fields.get("client_id") {
        return Some(id.to_string());
    }
    let basic = headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(basic.trim()).ok()?).ok()?;
    let id = decoded
        .split_once(':')
        .map(|(id, _)| id)
        .unwrap_or(&decoded);
    let id = url::form_urlencoded::parse(format!("x={id}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    (!id.is_empty()).then_some(id)
}

/// The requesting client, which must be registered (`invalid_client` otherwise).
fn known_client(
    broker: &Broker,
    fields: &Fields,
    headers: &HeaderMap,
) -> Result<Client, GatewayError> {
    let client_id = client_id(fields, headers).ok_or_else(|| {
        oauth(TokenError::InvalidClient(
            "client_id is required (this server has public clients only)".into(),
        ))
    })?;
    broker.issuer().client(&client_id).ok_or_else(|| {
        oauth(TokenError::InvalidClient(
            "unknown client_id; register again".into(),
        ))
    })
}

/// The server a token request's `resource` names (`None` when absent or the gateway root).
fn resource_server(
    broker: &Broker,
    resource: Option<&str>,
) -> Result<Option<String>, GatewayError> {
    match resource {
        None => Ok(None),
        Some(r) => server_from_resource(broker, r).map_err(|e| oauth(TokenError::InvalidTarget(e))),
    }
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `/{server}/token`: as `/token`, with the server named by the path (a `resource` naming
/// another server, or a code or refresh token for another server, is `invalid_target`).
async fn token_alias(
    State(broker): State<Broker>,
    Path(path_server): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GatewayError> {
    token_for(broker, Some(path_server), headers, body).await
}

async fn token(
    State(broker): State<Broker>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GatewayError> {
    token_for(broker, None, headers, body).await
}

async fn token_for(
    broker: Broker,
    path_server: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let fields = Fields::parse(&body)?;
    let grant_type = fields.require("grant_type")?;
    let client = known_client(&broker, &fields, &headers)?;
    let client_id = client.client_id.clone();
    let named = resource_server(&broker, fields.get("resource"))?;
    let server = match (named, path_server) {
        (Some(a), Some(b)) if a != b => {
            return Err(oauth(TokenError::InvalidTarget(format!(
                "resource names server \"{a}\" but the URL names \"{b}\""
            ))))
        }
        (named, path) => named.or(path),
    };
    let delegated = |s: &str| {
        broker.config().server(s).is_some_and(|c| c.delegate_auth_to_upstream).then(|| oauth(TokenError::InvalidTarget(format!("server \"{s}\" delegates sign-in to its upstream; get tokens from the upstream's authorization server, not from this broker"))))
    };
    if let Some(e) = server.as_deref().and_then(delegated) {
        return Err(e);
    }
    let now = unix_now();
    let result = match grant_type {
        "authorization_code" => {
            let code = fields.require("code")?;
            broker.issuer().exchange_code(
                code,
                &client_id,
                fields.get("redirect_uri"),
                fields.get("code_verifier"),
                server.as_deref(),
                now,
            )?
        }
        "refresh_token" => {
            let rt = fields.require("refresh_token")?;
            broker
                .issuer()
                .refresh(rt, &client_id, server.as_deref(), now)?
        }
        other => {
            return Err(oauth(TokenError::UnsupportedGrantType(format!(
                "grant_type \"{other}\" is not supported; use authorization_code or refresh_token"
            ))))
        }
    };
    let tokens: TokenSet = result.map_err(oauth)?;
    if let Some(e) = delegated(&tokens.server) {
        return Err(e);
    }
    if grant_type == "authorization_code" {
        broker.emit(Event::ClientAuthorized {
            client_name: client.client_name.unwrap_or_else(|| client_id.clone()),
            server: tokens.server.clone(),
        });
    }
    let mut body = json!({
        "access_token": tokens.access_token.expose(),
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
        "refresh_token": tokens.refresh_token.expose(),
    });
    if let Some(scope) = tokens.scope {
        body["scope"] = json!(scope);
    }
    Ok(no_store(Json(body).into_response()))
}

/// RFC 7009: the client identifies itself (public clients: `client_id`), and only a token
/// issued to it is revoked (§2.1); an unknown token is answered 200 (§2.2), a token of another
/// client is refused with `invalid_grant` (RFC 6749 §5.2: "issued to another client").
async fn revoke(
    State(broker): State<Broker>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let fields = Fields::parse(&body)?;
    let client = known_client(&broker, &fields, &headers)?;
    let token = fields.require("token")?;
    match broker.issuer().revoke_token(token, &client.client_id)? {
        Revocation::Revoked | Revocation::Unknown => Ok(no_store(StatusCode::OK.into_response())),
        Revocation::OtherClient => Err(oauth(TokenError::InvalidGrant(
            "this token was issued to another client; only that client can revoke it".into(),
        ))),
    }
}
