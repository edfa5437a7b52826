//! The test AS's token endpoint (and `/register`, `/revoke`): authorization_code (PKCE S256), refresh_token (rotation,
//! invalid_grant on reuse or revocation) and client_credentials (basic or post auth).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::auth_server::{AsState, ClientAuthRule, IssuedToken, Refresh, TokenFault};
use super::random_token;

pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// The client id and secret as the AS's [`ClientAuthRule`] reads them, or its refusal.
fn client_auth(
    rule: ClientAuthRule,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(Option<String>, Option<String>), Box<Response>> {
    match rule {
        ClientAuthRule::Any => Ok(basic_or_form(headers, form)),
        ClientAuthRule::FormOnly => match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => Ok((Some(id.clone()), Some(secret.clone()))),
            _ => Err(Box::new(
                (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"detail": [{"type": "missing", "loc": ["body", "client_id"], "msg": "Field required"}]})),
            )
                .into_response(),
            )),
        },
        ClientAuthRule::ClientIdInBody => match form.get("client_id") {
            None => Err(Box::new(oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Missing client_id",
            ))),
            Some(_) => Ok(basic_or_form(headers, form)),
        },
    }
}

/// The client id and secret from Basic auth or the form.
fn basic_or_form(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> (Option<String>, Option<String>) {
    if let Some(basic) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        if let Some((id, secret)) = STANDARD
            .decode(basic)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| {
                t.split_once(':')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            })
        {
            let dec = |t: &str| {
                url::form_urlencoded::parse(format!("x={t}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            return (Some(dec(&id)), Some(dec(&secret)));
        }
    }
    (
        form.get("client_id").cloned(),
        form.get("client_secret").cloned(),
    )
}

pub(crate) async fn token(
    State(s): State<Arc<AsState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    s.counters.token.fetch_add(1, Ordering::SeqCst);
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    let by_grant = match grant.as_str() {
        "authorization_code" => Some(&s.counters.token_authorization_code),
        "refresh_token" => Some(&s.counters.token_refresh),
        "client_credentials" => Some(&s.counters.token_client_credentials),
        _ => None,
    };
    if let Some(counter) = by_grant {
        counter.fetch_add(1, Ordering::SeqCst);
    }
    let fault = s.fault.lock().unwrap().clone();
    match fault {
        TokenFault::None => {}
        TokenFault::Html => {
            return (
                StatusCode::OK,
                [("content-type", "text/html")],
                "<html><body>Login</body></html>",
            )
                .into_response()
        }
        TokenFault::Empty => {
            return (StatusCode::OK, [("content-type", "application/json")], "").into_response()
        }
        TokenFault::NotJson => {
            return (
                StatusCode::OK,
                [("content-type", "application/json")],
                "access_token=nope",
            )
                .into_response()
        }
        TokenFault::NoAccessToken => {
            return Json(json!({ "token_type": "Bearer", "expires_in": 3600 })).into_response()
        }
        TokenFault::ServerError => {
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the test AS is failing on purpose",
            )
        }
        TokenFault::Slow(d) => tokio::time::sleep(d).await,
        TokenFault::Hold => s.held.acquire().await.expect("semaphore open").forget(),
        TokenFault::Status(code, body) => {
            return (StatusCode::from_u16(code).unwrap(), Json(body)).into_response()
        }
    }
    if let (Some((error, description)), Some(_)) =
        (&s.options.refuse_resource, form.get("resource"))
    {
        return oauth_error(StatusCode::BAD_REQUEST, error, description);
    }
    let jkt = match token_proof(&s, &headers) {
        Ok(jkt) => jkt,
        Err(why) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_dpop_proof", &why),
    };
    let (client_id, client_secret) = match super::workload::assertion_client(&s, &form) {
        Ok(Some(client)) => (Some(client), None),
        Err(why) => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why),
        Ok(None) => match client_auth(s.options.client_auth, &headers, &form) {
            Ok(found) => found,
            Err(refused) => return *refused,
        },
    };
    let Some(client_id) = client_id else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "no client authentication",
        );
    };
    let known = s.clients.lock().unwrap().get(&client_id).cloned();
    match (&known, &client_secret) {
        (Some(Some(expected)), Some(given)) if expected == given => {}
        (Some(Some(_)), _) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "wrong client secret",
            )
        }
        (Some(None), _) => {}
        (None, _) if s.options.open_clients && grant != "client_credentials" => {}
        (None, _) => {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client")
        }
    }
    let (resource, audience, scope, refresh) = match grant.as_str() {
        "authorization_code" => {
            let Some(code) = form
                .get("code")
                .and_then(|c| s.codes.lock().unwrap().remove(c))
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown or used code",
                );
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if computed != code.challenge {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "PKCE verification failed",
                );
            }
            if code.client_id != client_id || form.get("redirect_uri") != Some(&code.redirect_uri) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "client_id or redirect_uri mismatch",
                );
            }
            (
                code.resource,
                code.audience,
                code.scope,
                s.options.refresh_tokens && code.offline,
            )
        }
        "refresh_token" => {
            let given = form.get("refresh_token").cloned().unwrap_or_default();
            let mut refresh = s.refresh.lock().unwrap();
            let Some(entry) = refresh.get_mut(&given) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "refresh token unknown or revoked",
                );
            };
            if entry.used || entry.client_id != client_id {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "refresh token already used",
                );
            }
            if entry.jkt.is_some() && entry.jkt != jkt {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the refresh token is bound to another DPoP key",
                );
            }
            entry.used = true;
            (
                form.get("resource").cloned().or(entry.resource.clone()),
                entry.audience.clone(),
                entry.scope.clone(),
                true,
            )
        }
        "client_credentials" => (
            form.get("resource").cloned(),
            form.get("audience").cloned(),
            form.get("scope").cloned(),
            false,
        ),
        // An AS that trusts an identity provider takes ID-JAGs; else workload tokens.
        super::workload::JWT_BEARER if s.options.id_jag_issuer.is_some() => {
            match super::id_jag::redeem(&s, &form, &client_id).await {
                Ok((resource, scope)) => (resource, None, scope, false),
                Err(why) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &why),
            }
        }
        super::auth_server::DEVICE_GRANT => match super::device::redeem(&s, &form, &client_id) {
            Ok((resource, scope)) => (resource, None, scope, s.options.refresh_tokens),
            Err(error) => return oauth_error(StatusCode::BAD_REQUEST, error, error),
        },
        super::workload::JWT_BEARER => match super::workload::redeem(&s, &form) {
            Ok((resource, scope)) => (resource, None, scope, false),
            Err(error) => return oauth_error(StatusCode::BAD_REQUEST, error, error),
        },
        other => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant_type {other:?}"),
            )
        }
    };
    let offline = scope
        .as_deref()
        .is_some_and(|s| s.split_whitespace().any(|s| s == "offline_access"));
    let refresh = refresh && (offline || !s.options.refresh_needs_offline_access);
    let access = random_token();
    let issued = IssuedToken {
        client_id: client_id.clone(),
        grant: grant_name(&grant),
        resource: resource.clone(),
        audience: audience.clone(),
        scope: scope.clone(),
        expires_at: s.expiry(),
        jkt: jkt.clone(),
    };
    s.access.lock().unwrap().insert(access.clone(), issued);
    let token_type = if jkt.is_some() { "DPoP" } else { "Bearer" };
    let mut body = json!({ "access_token": access, "token_type": token_type });
    let expires_in = s.expires_in.lock().unwrap().clone();
    if !expires_in.is_null() {
        body["expires_in"] = expires_in;
    }
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    if refresh {
        let rt = random_token();
        s.refresh.lock().unwrap().insert(
            rt.clone(),
            Refresh {
                client_id,
                resource,
                audience,
                scope: body.get("scope").and_then(Value::as_str).map(Into::into),
                used: false,
                jkt,
            },
        );
        body["refresh_token"] = json!(rt);
    }
    ([("cache-control", "no-store")], Json(body)).into_response()
}

/// The key a token request proved (when this AS does DPoP and the request sent a proof), checked
/// for `POST` to the token endpoint; or why the proof is refused.
fn token_proof(s: &AsState, headers: &HeaderMap) -> Result<Option<String>, String> {
    let Some(proof) = headers.get("dpop").filter(|_| s.options.dpop) else {
        return Ok(None);
    };
    let proof = proof.to_str().map_err(|_| "the DPoP header is not text")?;
    let htu = format!("{}/token", s.issuer);
    let expect = super::dpop::Expect {
        htm: "POST",
        htu: &htu,
        token: None,
    };
    let jkt = s.check_proof(proof, &expect)?;
    s.dpop_proofs.lock().unwrap().push(jkt.clone());
    Ok(Some(jkt))
}

fn grant_name(grant: &str) -> &'static str {
    match grant {
        "authorization_code" => "authorization_code",
        "refresh_token" => "refresh_token",
        super::auth_server::DEVICE_GRANT => "device_code",
        super::workload::JWT_BEARER => "jwt_bearer",
        _ => "client_credentials",
    }
}

pub(crate) async fn register(State(s): State<Arc<AsState>>, Json(body): Json<Value>) -> Response {
    s.counters.register.fetch_add(1, Ordering::SeqCst);
    if !s.options.registration {
        return StatusCode::NOT_FOUND.into_response();
    }
    let machine = body["grant_types"] == json!(["client_credentials"]);
    if !machine
        && body
            .get("redirect_uris")
            .and_then(Value::as_array)
            .is_none_or(|a| a.is_empty())
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "redirect_uris is required",
        );
    }
    let method = body["token_endpoint_auth_method"].as_str();
    let client_id = random_token();
    // A private_key_jwt client proves itself with the keys it registers (`workload.rs`).
    let keyed = method == Some("private_key_jwt");
    let secret = (method != Some("none") && !keyed).then(random_token);
    s.clients
        .lock()
        .unwrap()
        .insert(client_id.clone(), secret.clone());
    if keyed {
        s.register_keys(&client_id, body["jwks"].clone());
    }
    let mut out = body.clone();
    out["client_id"] = json!(client_id);
    s.registrations.lock().unwrap().push(out.clone());
    out["client_id_issued_at"] = json!(0);
    if let Some(secret) = secret {
        out["client_secret"] = json!(secret);
        out["client_secret_expires_at"] = json!(0);
    }
    (StatusCode::CREATED, Json(out)).into_response()
}

pub(crate) async fn revoke(
    State(s): State<Arc<AsState>>,
    Form(form): Form<HashMap<String, String>>,
) -> StatusCode {
    s.counters.revoke.fetch_add(1, Ordering::SeqCst);
    if let Some(token) = form.get("token") {
        s.access.lock().unwrap().remove(token);
        s.refresh.lock().unwrap().remove(token);
        s.revoked.lock().unwrap().insert(token.clone());
    }
    StatusCode::OK
}

/// The first asked scope the client's registration lacks, when the AS checks them.
pub(crate) fn unregistered_scope(
    s: &AsState,
    client_id: &str,
    asked: Option<&String>,
) -> Option<String> {
    if !s.options.registered_scopes {
        return None;
    }
    let registered = s
        .registrations
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["client_id"] == client_id)
        .and_then(|r| r["scope"].as_str().map(str::to_string))
        .unwrap_or_default();
    let have: Vec<&str> = registered.split_whitespace().collect();
    asked?
        .split_whitespace()
        .find(|a| !have.contains(a))
        .map(str::to_string)
}
