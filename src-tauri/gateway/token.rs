//! `/token` (authorization code with PKCE, refresh with rotation) and `/revoke` (RFC 7009).
//! Public clients identify themselves with `client_id` in the form (or HTTP Basic with an empty
//! secret). Every answer carries `Cache-Control: no-store`; errors use RFC 6749 §5.2 bodies.

use axum::body::Bytes;
use std::sync::Arc;

use axum::extract::{Extension, Path, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;

use super::authorize::server_from_resource;
use super::error::GatewayError;
use super::limit::{TOKEN_FAILURES, TOKEN_WINDOW};
use super::state::GatewayState;
use crate::broker::Broker;
use crate::clock::unix_now;
use crate::events::Event;
use crate::issuer::{Client, IssuerError, Revocation, TokenError, TokenSet};

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
    Extension(gw): Extension<Arc<GatewayState>>,
    Path(path_server): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GatewayError> {
    token_for(broker, gw, Some(path_server), headers, body).await
}

async fn token(
    State(broker): State<Broker>,
    Extension(gw): Extension<Arc<GatewayState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GatewayError> {
    token_for(broker, gw, None, headers, body).await
}

async fn token_for(
    broker: Broker,
    gw: Arc<GatewayState>,
    path_server: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, GatewayError> {
    let fields = Fields::parse(&body)?;
    let grant_type = fields.require("grant_type")?;
    let client = known_client(&broker, &fields, &headers)?;
    let client_id = client.client_id.clone();
    let now = unix_now();
    if let Err(wait) = gw.token_failures().check(&client_id, now) {
        return Ok(too_many_failures(wait));
    }
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
    let grant = Grant::from_fields(grant_type, &fields)?;
    let tokens = match redeem(&broker, grant, client_id.clone(), server, now).await? {
        Ok(tokens) => tokens,
        Err(e) => {
            gw.token_failures().failed(&client_id, now);
            return Err(oauth(e));
        }
    };
    if let Some(e) = delegated(&tokens.server) {
        return Err(e);
    }
    if grant_type == "authorization_code" {
        broker.emit(Event::ClientAuthorized {
            client_name: client.client_name.unwrap_or_else(|| client_id.clone()),
            server: tokens.server.clone(),
        });
    }
    Ok(token_response(tokens))
}

/// What a token request presents, owned (it crosses to the blocking pool).
enum Grant {
    Code {
        code: String,
        redirect_uri: Option<String>,
        verifier: Option<String>,
    },
    Refresh(String),
}

impl Grant {
    fn from_fields(grant_type: &str, fields: &Fields) -> Result<Grant, GatewayError> {
        let owned = |name| fields.get(name).map(str::to_string);
        match grant_type {
            "authorization_code" => Ok(Grant::Code {
                code: fields.require("code")?.to_string(),
                redirect_uri: owned("redirect_uri"),
                verifier: owned("code_verifier"),
            }),
            "refresh_token" => Ok(Grant::Refresh(fields.require("refresh_token")?.to_string())),
            other => Err(oauth(TokenError::UnsupportedGrantType(format!(
                "grant_type \"{other}\" is not supported; use authorization_code or refresh_token"
            )))),
        }
    }
}

/// Redeems the grant on the blocking pool: issuing tokens writes and fsyncs the issuer state,
/// which must not stall the async runtime (nor the proxied requests it serves).
async fn redeem(
    broker: &Broker,
    grant: Grant,
    client_id: String,
    server: Option<String>,
    now: u64,
) -> Result<Result<TokenSet, TokenError>, GatewayError> {
    let broker = broker.clone();
    let redeemed = tokio::task::spawn_blocking(move || {
        let (issuer, server) = (broker.issuer(), server.as_deref());
        match &grant {
            Grant::Code {
                code,
                redirect_uri,
                verifier,
            } => issuer.exchange_code(
                code,
                &client_id,
                redirect_uri.as_deref(),
                verifier.as_deref(),
                server,
                now,
            ),
            Grant::Refresh(token) => issuer.refresh(token, &client_id, server, now),
        }
    })
    .await
    .map_err(|e| IssuerError::Store(format!("the token request did not finish: {e}")))?;
    Ok(redeemed?)
}

/// 429 for a client that spent its failed token requests of the current window.
fn too_many_failures(wait: u64) -> Response {
    let error = GatewayError::OAuth {
        status: StatusCode::TOO_MANY_REQUESTS,
        code: "too_many_requests",
        description: format!("this client made {TOKEN_FAILURES} failed token requests within {TOKEN_WINDOW} s; wait {wait} s before trying again (a code or refresh token that keeps failing will not start working: authorize again)"),
    };
    let mut response = error.into_response();
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        response.headers_mut().insert(RETRY_AFTER, v);
    }
    response
}

fn token_response(tokens: TokenSet) -> Response {
    let mut body = json!({
        "access_token": tokens.access_token.expose(),
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
        "refresh_token": tokens.refresh_token.expose(),
    });
    if let Some(scope) = tokens.scope {
        body["scope"] = json!(scope);
    }
    no_store(Json(body).into_response())
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
