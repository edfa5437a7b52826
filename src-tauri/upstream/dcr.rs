//! Dynamic client registration (RFC 7591) of the broker's client at an upstream authorization
//! server: the request (a sign-in's client with the fixed loopback redirect URI and the scope it
//! asks for, or a machine client without redirects; `application_type: "native"`; a public
//! client where the server allows it; a `private_key_jwt` client's public key as `jwks`), the
//! answer read and its secret kept in the vault per issuer, and the registration kept in the
//! server's record. Which client to use, and when to register, is [`registration`]'s.

use std::path::Path;

use serde::Deserialize;
use url::Url;

use crate::config::ServerConfig;
use crate::secret::Secret;

use super::assertion;
use super::http::{checked, send};
use super::registration::{
    dcr_client, load_record, registration, save_record, secret_entry, setup, ClientAuth,
    ClientInfo, Ctx, Method, Registration,
};
use super::UpstreamError;

/// How a registered client authenticates: as the server answered (else as asked), given
/// whether it was issued a secret.
fn registered_auth(method: &str, secret: &Option<Secret>) -> ClientAuth {
    match (method, secret) {
        ("private_key_jwt", _) => ClientAuth::PrivateKeyJwt,
        (_, None) => ClientAuth::None,
        ("client_secret_post", Some(_)) => ClientAuth::ClientSecretPost,
        (_, Some(_)) => ClientAuth::ClientSecretBasic,
    }
}

/// The `token_endpoint_auth_method` to register with: the configured one, else a public client
/// when the AS allows it (or says nothing), else what it does accept.
fn requested_method(server: &ServerConfig, methods: Option<&[String]>) -> &'static str {
    if let Some(m) = server.token_endpoint_auth_method {
        return ClientAuth::from_config(m).as_str();
    }
    match methods {
        Some(m) if !m.iter().any(|x| x == "none") => {
            if m.iter().any(|x| x == "client_secret_basic") {
                "client_secret_basic"
            } else if m.iter().any(|x| x == "client_secret_post") {
                "client_secret_post"
            } else {
                "none"
            }
        }
        _ => "none",
    }
}

/// The RFC 7591 request: a sign-in's client with the redirect URI, a machine client without.
async fn request_body(
    ctx: &Ctx<'_>,
    server: &ServerConfig,
    requested: &str,
    scope: Option<&str>,
    grants: &[&str],
) -> Result<serde_json::Value, UpstreamError> {
    let redirects = match grants.contains(&"authorization_code") {
        true => (vec![ctx.redirect_uri.as_str()], vec!["code"]),
        false => (vec![], vec![]),
    };
    let mut body = serde_json::json!({
        "client_name": "MCP Auth Broker",
        // A desktop app with a loopback redirect (OIDC DCR / SEP-837).
        "application_type": "native",
        "redirect_uris": redirects.0,
        "grant_types": grants,
        "response_types": redirects.1,
        "token_endpoint_auth_method": requested,
    });
    if requested == ClientAuth::PrivateKeyJwt.as_str() {
        body["jwks"] = assertion::client_key(ctx.vault, server)
            .await?
            .public_jwks();
    }
    if let Some(scope) = scope {
        body["scope"] = serde_json::Value::from(scope);
    }
    Ok(body)
}

/// A registration endpoint's refusal in words: status, OAuth error, and the way around it.
fn refused(name: &str, url: &Url, status: u16, body: &[u8]) -> UpstreamError {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    UpstreamError::AuthRejected {
        server: name.into(),
        detail: format!(
            "client registration at {url} failed with HTTP {status}{}{}; register an OAuth app by hand and set \"client_id\" for this server",
            v["error"].as_str().map(|e| format!(", error \"{e}\"")).unwrap_or_default(),
            v["error_description"].as_str().map(|e| format!(": {e}")).unwrap_or_default()
        ),
    }
}

/// What a registration endpoint answered.
#[derive(Deserialize)]
struct Answer {
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// RFC 7591 registration for `grants`: a sign-in's with the fixed redirect URI and the scope it
/// asks for; a machine client's without redirects. A `private_key_jwt` client sends its public
/// key (`jwks`), so the server can check its assertions.
pub(super) async fn register(
    ctx: &Ctx<'_>,
    server: &ServerConfig,
    issuer: &str,
    endpoint: &str,
    methods: Option<&[String]>,
    scope: Option<&str>,
    grants: &[&str],
) -> Result<(ClientInfo, Registration), UpstreamError> {
    let name = server.name.as_str();
    let requested = requested_method(server, methods);
    let url = checked(endpoint).map_err(|e| UpstreamError::Protocol {
        server: name.into(),
        detail: e.to_string(),
    })?;
    let body = request_body(ctx, server, requested, scope, grants).await?;
    let builder = ctx
        .http
        .post(url.clone())
        .header("accept", "application/json")
        .json(&body);
    let got = send(builder, &url)
        .await
        .map_err(|e| UpstreamError::Unreachable {
            server: name.into(),
            url: url.to_string(),
            cause: e.cause(),
        })?;
    if !(200..300).contains(&got.status) {
        return Err(refused(name, &url, got.status, &got.body));
    }
    let a: Answer = serde_json::from_slice(&got.body).map_err(|e| UpstreamError::Protocol {
        server: name.into(),
        detail: format!(
            "client registration at {url} answered HTTP {} without a usable client_id ({e})",
            got.status
        ),
    })?;
    let secret = a.client_secret.filter(|s| !s.is_empty()).map(Secret::new);
    let answered = a.token_endpoint_auth_method.as_deref();
    let auth = registered_auth(answered.unwrap_or(requested), &secret);
    let key = secret_entry(name, issuer);
    match &secret {
        Some(s) => ctx.vault.set(&key, s.clone()).await,
        None => ctx.vault.delete(&key).await,
    }
    .map_err(|source| UpstreamError::Vault {
        server: name.into(),
        source,
    })?;
    let reg = Registration {
        has_secret: secret.is_some(),
        secret_entry: Some(key),
        scope: a.scope.or_else(|| scope.map(str::to_string)),
        ..registration(Method::Dcr, issuer, ctx.redirect_uri, &a.client_id, auth)
    };
    keep_registration(ctx.data_dir, server, &reg)?;
    Ok((dcr_client(server, &reg, secret, methods), reg))
}

/// Keeps `reg` in the server's record, as its current registration and the one with its issuer.
fn keep_registration(
    data_dir: &Path,
    server: &ServerConfig,
    reg: &Registration,
) -> Result<(), UpstreamError> {
    let name = server.name.as_str();
    let mut record = load_record(data_dir, name);
    record.keep(reg);
    record.registration = Some(reg.clone());
    save_record(data_dir, name, &record).map_err(|e| {
        let detail = format!(
            "cannot save the client registration in {}: {e}",
            data_dir.display()
        );
        setup(server, detail)
    })
}
