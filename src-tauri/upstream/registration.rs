//! Who the broker is to an upstream authorization server, in the spec's priority: a
//! pre-registered client (config / keychain) → a client ID metadata document URL (when the AS
//! supports CIMD) → dynamic client registration (RFC 7591). What was registered, and the AS
//! endpoints a sign-in used, are kept in `data_dir/upstream/{server}.json` (nothing secret);
//! a DCR-issued secret lives in the vault. A client belongs to the authorization server that
//! issued it: dynamic registrations are kept per issuer, so when the protected resource names
//! another authorization server the broker registers with that one (or reuses the client it
//! already has there) and never presents one server's client to another (SEP-2352). A changed
//! redirect URI means a new registration too, and so does a scope the kept one was not registered
//! with. The per-server record itself is in [`record`](super::record), the RFC 7591 request in
//! [`dcr`](super::dcr).

use std::path::Path;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::ServerConfig;
use crate::secret::Secret;
use crate::vault::Vault;

use super::assertion::{self, ClientKey};
use super::clientauth::{self, Inputs, Plan};
use super::dcr;
use super::discovery::AsMetadata;
use super::keyclient;
pub use super::keyclient::key_client;
pub use super::record::{
    load_record, refused_dcr, remove_record, save_record, Endpoints, Record, Refusal, REFUSED_AGAIN,
};
use super::UpstreamError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Preregistered,
    Cimd,
    Dcr,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    None,
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 7523 client assertions (`assertion.rs`).
    PrivateKeyJwt,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub method: Method,
    pub issuer: String,
    pub redirect_uri: String,
    pub client_id: String,
    pub auth: ClientAuth,
    /// A DCR-issued secret is stored in the vault under [`Registration::secret_key`].
    pub has_secret: bool,
    /// That vault entry, one per issuer (records written before had none: the server's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_entry: Option<String>,
    /// The scope registered with the client (servers built on the MCP SDKs refuse `/authorize`
    /// scopes a client was not registered with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl Registration {
    /// The vault entry of this registration's DCR-issued secret.
    pub fn secret_key(&self, server: &str) -> String {
        self.secret_entry
            .clone()
            .unwrap_or_else(|| format!("upstream/{server}/client_secret"))
    }
}

/// The vault entry for a secret `issuer` gave `server`'s client: a short digest of the issuer
/// keeps entries of several authorization servers apart.
pub fn secret_entry(server: &str, issuer: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(issuer.as_bytes());
    let short: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("upstream/{server}/client_secret/{short}")
}

/// The client the broker presents, secret resolved.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub client_id: String,
    pub secret: Option<Secret>,
    /// The client authentication tried first ([`clientauth`](super::clientauth)).
    pub auth: ClientAuth,
    /// The one other method tried when the first is refused.
    pub fallback: Option<ClientAuth>,
    /// The signing key of a `private_key_jwt` client.
    pub key: Option<ClientKey>,
}

impl ClientInfo {
    /// The client with its authentication plan.
    pub fn new(client_id: String, secret: Option<Secret>, plan: Plan) -> ClientInfo {
        ClientInfo {
            client_id,
            secret,
            auth: plan.first,
            fallback: plan.fallback,
            key: None,
        }
    }
}

pub(super) fn setup(server: &ServerConfig, detail: impl Into<String>) -> UpstreamError {
    UpstreamError::Setup {
        server: server.name.to_string(),
        detail: detail.into(),
    }
}

/// The authentication plan of a client holding `secret` (or not), for a server's config.
fn plan_for(
    server: &ServerConfig,
    secret: &Option<Secret>,
    registered: Option<ClientAuth>,
    methods: Option<&[String]>,
) -> Plan {
    clientauth::plan(Inputs {
        has_secret: secret.is_some(),
        configured: server.token_endpoint_auth_method,
        registered,
        advertised: methods,
    })
}

/// Resolves the configured (pre-registered) client, if any.
pub async fn configured_client(
    vault: &Vault,
    server: &ServerConfig,
    methods: Option<&[String]>,
) -> Result<Option<ClientInfo>, UpstreamError> {
    let Some(id) = &server.client_id else {
        return Ok(None);
    };
    let secret = match &server.client_secret {
        Some(r) => Some(
            vault
                .resolve(r)
                .await
                .map_err(|source| UpstreamError::Vault {
                    server: server.name.to_string(),
                    source,
                })?,
        ),
        None => None,
    };
    let plan = plan_for(server, &secret, None, methods);
    let mut client = ClientInfo::new(id.clone(), secret, plan);
    if assertion::uses_key(server) {
        client.key = Some(assertion::server_key(vault, server).await?);
    }
    Ok(Some(client))
}

/// A dynamically registered client with its secret (when it has one) from the vault.
pub fn dcr_client(
    server: &ServerConfig,
    reg: &Registration,
    secret: Option<Secret>,
    methods: Option<&[String]>,
) -> ClientInfo {
    let plan = plan_for(server, &secret, Some(reg.auth), methods);
    ClientInfo::new(reg.client_id.clone(), secret, plan)
}

pub struct Ctx<'a> {
    pub http: &'a reqwest::Client,
    pub vault: &'a Vault,
    pub data_dir: &'a Path,
    pub redirect_uri: &'a Url,
}

pub(super) fn registration(
    method: Method,
    issuer: &str,
    redirect_uri: &Url,
    client_id: &str,
    auth: ClientAuth,
) -> Registration {
    Registration {
        method,
        issuer: issuer.into(),
        redirect_uri: redirect_uri.to_string(),
        client_id: client_id.into(),
        auth,
        has_secret: false,
        secret_entry: None,
        scope: None,
    }
}

/// True when a client registered with `registered` may ask for `asked`.
fn covers(registered: Option<&str>, asked: Option<&str>) -> bool {
    let have: Vec<&str> = registered.unwrap_or("").split_whitespace().collect();
    asked
        .unwrap_or("")
        .split_whitespace()
        .all(|s| have.contains(&s))
}

/// Picks or makes the client for an interactive sign-in that asks for `scope`, in the spec's
/// priority order. A kept dynamic registration is reused unless it lacks a scope now asked for.
pub async fn ensure_client(
    ctx: &Ctx<'_>,
    server: &ServerConfig,
    issuer: &str,
    meta: Option<&AsMetadata>,
    legacy_register: Option<String>,
    scope: Option<&str>,
) -> Result<(ClientInfo, Registration), UpstreamError> {
    let methods = meta.and_then(|m| m.token_endpoint_auth_methods_supported.as_deref());
    if let Some(client) = configured_client(ctx.vault, server, methods).await? {
        let reg = registration(
            Method::Preregistered,
            issuer,
            ctx.redirect_uri,
            &client.client_id,
            client.auth,
        );
        return Ok((client.for_issuer(Some(issuer)), reg));
    }
    if let Some(cimd) = &server.client_id_metadata_url {
        if meta.is_some_and(|m| m.client_id_metadata_document_supported) {
            let (id, none) = (cimd.to_string(), ClientAuth::None);
            let reg = registration(Method::Cimd, issuer, ctx.redirect_uri, &id, none);
            return Ok((
                ClientInfo::new(id, None, plan_for(server, &None, None, None)),
                reg,
            ));
        }
    }
    if let Some(kept) = kept_client(ctx, server, issuer, scope, methods).await? {
        return Ok(kept);
    }
    let endpoint = meta
        .and_then(|m| m.registration_endpoint.clone())
        .or_else(|| server.registration_url.as_ref().map(Url::to_string))
        .or(legacy_register)
        .ok_or_else(|| setup(server, format!("the authorization server {issuer} offers no dynamic client registration; register an OAuth app with it (redirect URI {}) and set \"client_id\" (and \"client_secret\") for this server", ctx.redirect_uri)))?;
    // A server offering device sign-in lets only clients registered for it use it.
    let mut grants = vec!["authorization_code", "refresh_token"];
    if meta.is_some_and(|m| m.device_authorization_endpoint.is_some()) {
        grants.push(super::device::GRANT_TYPE);
    }
    let (client, reg) =
        dcr::register(ctx, server, issuer, &endpoint, methods, scope, &grants).await?;
    Ok((
        keyclient::with_key(ctx.vault, server, issuer, client).await?,
        reg,
    ))
}

/// The dynamic registration kept with `issuer` that covers `scope`, with its secret, if any.
async fn kept_client(
    ctx: &Ctx<'_>,
    server: &ServerConfig,
    issuer: &str,
    scope: Option<&str>,
    methods: Option<&[String]>,
) -> Result<Option<(ClientInfo, Registration)>, UpstreamError> {
    let name = server.name.as_str();
    let record = load_record(ctx.data_dir, name);
    let Some(reg) = record
        .dcr_for(issuer, ctx.redirect_uri.as_str())
        .filter(|r| covers(r.scope.as_deref(), scope))
        .cloned()
    else {
        return Ok(None);
    };
    let secret = match reg.has_secret {
        true => ctx
            .vault
            .get(&reg.secret_key(name))
            .await
            .map_err(|source| UpstreamError::Vault {
                server: name.into(),
                source,
            })?,
        false => None,
    };
    if reg.has_secret && secret.is_none() {
        return Ok(None);
    }
    let client = dcr_client(server, &reg, secret, methods);
    let client = keyclient::with_key(ctx.vault, server, issuer, client).await?;
    Ok(Some((client, reg)))
}

#[cfg(test)]
#[path = "registration_tests.rs"]
mod tests;
