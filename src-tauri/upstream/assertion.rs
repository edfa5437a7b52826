//! RFC 7523 toward upstreams, both ways a JWT replaces a shared secret:
//!
//! - **client assertions** (`private_key_jwt`, §2.2): the client proves itself with a short-lived
//!   JWT signed by its private key. The key is the config's (`private_key`) or one the broker
//!   generates on first need and keeps only in the token store; its public JWK is what the
//!   person registers at the provider (`mcp-auth-broker key NAME`, the admin API, status).
//! - **workload identity federation** (§2.1, `oauth_flow: "jwt_bearer"`): a platform-issued JWT
//!   (a file or an environment variable, re-read on each use: platforms rotate it) is the grant.
//!
//! Keys and signatures themselves are [`jose`](super::jose)'s.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::config::machine::{AssertionSource, KeySource};
use crate::config::{ServerConfig, TokenAuthMethod};
use crate::secret::Secret;
use crate::vault::Vault;

use super::jose::EsKey;
use super::UpstreamError;

/// RFC 7523 §2.2 `client_assertion_type`.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// RFC 7523 §2.1 `grant_type`.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long a client assertion is valid: long enough for clock skew, short against replay.
pub const LIFETIME_SECS: u64 = 60;

/// A client's signing key and who its assertions are for.
#[derive(Debug, Clone)]
pub struct ClientKey {
    key: Arc<EsKey>,
    /// The config's `assertion_audience`: wins over both below, for providers that want
    /// another `aud` than the issuer.
    pub configured: Option<String>,
    /// The authorization server's issuer, when known: the `aud` RFC 7523bis asks for.
    pub issuer: Option<String>,
    /// The token endpoint the assertion goes to: the `aud` when the issuer is unknown.
    pub endpoint: Option<String>,
}

impl ClientKey {
    pub fn new(key: EsKey) -> ClientKey {
        ClientKey {
            key: Arc::new(key),
            configured: None,
            issuer: None,
            endpoint: None,
        }
    }

    pub fn key(&self) -> &EsKey {
        &self.key
    }

    /// The `aud` of this client's assertions: the configured one, else the issuer, else the
    /// token endpoint.
    pub fn audience(&self) -> &str {
        self.configured
            .as_deref()
            .or(self.issuer.as_deref())
            .or(self.endpoint.as_deref())
            .unwrap_or_default()
    }

    /// The form parameters of RFC 7523 §2.2 for one token request at `now`.
    pub fn params(&self, client_id: &str, now: u64) -> Vec<(String, String)> {
        let jti = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        let claims = claims(client_id, self.audience(), now, &jti);
        let header = json!({"typ": "JWT", "kid": self.key.thumbprint()});
        vec![
            ("client_assertion_type".into(), CLIENT_ASSERTION_TYPE.into()),
            ("client_assertion".into(), self.key.sign(&header, &claims)),
        ]
    }
}

/// A client assertion's claims (RFC 7523 §3): the client is both issuer and subject.
pub fn claims(client_id: &str, audience: &str, now: u64, jti: &str) -> Value {
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": jti,
        "iat": now,
        "exp": now + LIFETIME_SECS,
    })
}

/// The token-store entry of the key the broker generated for `server`.
pub fn key_entry(server: &str) -> String {
    format!("upstream/{server}/private_key")
}

/// Whether the server's client authenticates with `private_key_jwt`.
pub fn uses_key(server: &ServerConfig) -> bool {
    server.token_endpoint_auth_method == Some(TokenAuthMethod::PrivateKeyJwt)
}

fn setup(server: &ServerConfig, detail: String) -> UpstreamError {
    UpstreamError::Setup {
        server: server.name.to_string(),
        detail,
    }
}

/// Serialises first-time generation, so two first uses cannot store two different keys.
static GENERATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The server's `private_key_jwt` key: the configured one, else the one kept in the token store,
/// else a new one generated and stored now. A stored key that does not decode is an error, never
/// replaced (the provider may have its public half registered).
pub async fn client_key(vault: &Vault, server: &ServerConfig) -> Result<EsKey, UpstreamError> {
    let vault_err = |source| UpstreamError::Vault {
        server: server.name.to_string(),
        source,
    };
    let pem = match &server.private_key {
        Some(KeySource::Secret(r)) => vault.resolve(r).await.map_err(vault_err)?,
        Some(KeySource::File(path)) => tokio::fs::read_to_string(path)
            .await
            .map(Secret::new)
            .map_err(|e| {
                let detail = format!("private_key: cannot read {}: {e}; check the path and that the broker may read it", path.display());
                setup(server, detail)
            })?,
        None => return stored_or_generated(vault, server).await,
    };
    EsKey::from_pem(pem.expose()).map_err(|e| setup(server, format!("private_key: {e}")))
}

/// The server's signing key with the audience its config asks for (`assertion_audience`).
pub async fn server_key(vault: &Vault, server: &ServerConfig) -> Result<ClientKey, UpstreamError> {
    let mut key = ClientKey::new(client_key(vault, server).await?);
    key.configured = server.assertion_audience.clone();
    Ok(key)
}

async fn stored_or_generated(vault: &Vault, server: &ServerConfig) -> Result<EsKey, UpstreamError> {
    let entry = key_entry(server.name.as_str());
    let vault_err = |source| UpstreamError::Vault {
        server: server.name.to_string(),
        source,
    };
    let _one = GENERATING.lock().await;
    if let Some(pem) = vault.get(&entry).await.map_err(vault_err)? {
        return EsKey::from_pem(pem.expose()).map_err(|e| {
            let detail = format!("the key kept in the token store ({entry}) is damaged: {e}; delete that entry to have a new key generated, then register its public key again");
            setup(server, detail)
        });
    }
    let key = EsKey::generate();
    vault.set(&entry, key.to_pem()).await.map_err(vault_err)?;
    tracing::info!(
        server = server.name.as_str(),
        kid = key.thumbprint(),
        "generated a private_key_jwt key; register its public key with the provider (`mcp-auth-broker key {}`)",
        server.name
    );
    Ok(key)
}

/// What the person registers at the provider for `server`'s client: its public key as a JWK
/// and a JWK Set, generating the key on first need. Never the private key.
pub async fn public_key(vault: &Vault, server: &ServerConfig) -> Result<Value, UpstreamError> {
    if !uses_key(server) {
        let detail = "does not authenticate with a key: set \"token_endpoint_auth_method\": \"private_key_jwt\" for it first (the broker then generates a key, or uses \"private_key\")".to_string();
        return Err(setup(server, detail));
    }
    let key = client_key(vault, server).await?;
    let source = match &server.private_key {
        Some(_) => "configured (private_key)",
        None => "generated by the broker, kept in the token store",
    };
    Ok(json!({
        "server": server.name.as_str(),
        "client_id": server.client_id,
        "kid": key.thumbprint(),
        "source": source,
        "jwk": key.public_jwk(),
        "jwks": key.public_jwks(),
    }))
}

/// The status line of a `private_key_jwt` server: which key, without creating one.
pub async fn evidence(vault: &Vault, server: &ServerConfig) -> Option<String> {
    if !uses_key(server) {
        return None;
    }
    let name = server.name.as_str();
    let show =
        format!("`mcp-auth-broker key {name}` shows the public key to register with the provider");
    if server.private_key.is_some() {
        return Some(format!(
            "client authentication private_key_jwt with the configured private_key; {show}"
        ));
    }
    let kid = match vault.get(&key_entry(name)).await {
        Ok(Some(pem)) => EsKey::from_pem(pem.expose()).ok().map(|k| k.thumbprint()),
        _ => None,
    };
    Some(match kid {
        Some(kid) => format!("client authentication private_key_jwt with the broker's key {kid}; {show}"),
        None => format!("client authentication private_key_jwt: the broker generates its key on first use; {show}"),
    })
}

/// The workload's JWT, read now (platforms rotate it). The error names where it was looked for,
/// never its content.
pub async fn workload_token(source: &AssertionSource) -> Result<Secret, String> {
    let text = match source {
        AssertionSource::File(path) => tokio::fs::read_to_string(path)
            .await
            .map_err(|e| format!("cannot read the workload token from {source}: {e}"))?,
        AssertionSource::Env(var) => std::env::var(var)
            .map_err(|_| format!("{source} is not set for the broker; the platform provides the workload token there"))?,
    };
    let token = text.trim();
    if token.split('.').count() != 3 || token.chars().any(char::is_whitespace) {
        return Err(format!(
            "{source} does not hold a JWT (three dot-separated parts); check the platform's token"
        ));
    }
    Ok(Secret::new(token))
}

#[cfg(test)]
#[path = "assertion_tests.rs"]
mod tests;
