//! Who the broker is to an upstream authorization server, in the spec's priority: a
//! pre-registered client (config / keychain) → a client ID metadata document URL (when the AS
//! supports CIMD) → dynamic client registration (RFC 7591). What was registered, and the AS
//! endpoints a sign-in used, are kept in `data_dir/upstream/{server}.json` (nothing secret);
//! a DCR-issued secret lives in the vault. A client belongs to the authorization server that
//! issued it: dynamic registrations are kept per issuer, so when the protected resource names
//! another authorization server the broker registers with that one (or reuses the client it
//! already has there) and never presents one server's client to another (SEP-2352). A changed
//! redirect URI means a new registration too.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::ServerConfig;
use crate::secret::Secret;
use crate::vault::Vault;

use super::discovery::AsMetadata;
use super::http::{checked, send};
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
}

/// The AS endpoints a sign-in used; refresh and revocation need them without re-discovery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    pub issuer: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: String,
    pub revocation_endpoint: Option<String>,
    pub iss_supported: bool,
    /// RFC 8707 `resource` sent with every request (`None` when the server opts out).
    pub resource: Option<String>,
    #[serde(default)]
    pub auth_methods: Option<Vec<String>>,
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

/// Everything non-secret kept per server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub endpoints: Option<Endpoints>,
    /// The client the current sign-in used.
    pub registration: Option<Registration>,
    /// Dynamic registrations, one per issuer, for a server that moves between authorization
    /// servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registrations: Vec<Registration>,
}

impl Record {
    /// The dynamic registration with `issuer` for `redirect_uri`, if one is kept.
    pub fn dcr_for(&self, issuer: &str, redirect_uri: &str) -> Option<&Registration> {
        self.registrations
            .iter()
            .chain(self.registration.iter())
            .find(|r| {
                r.method == Method::Dcr && r.issuer == issuer && r.redirect_uri == redirect_uri
            })
    }

    /// Keeps `reg` as the registration with its issuer (replacing an older one there).
    pub fn keep(&mut self, reg: &Registration) {
        self.registrations.retain(|r| r.issuer != reg.issuer);
        if reg.method == Method::Dcr {
            self.registrations.push(reg.clone());
        }
    }
}

/// The client the broker presents, secret resolved.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub client_id: String,
    pub secret: Option<Secret>,
    pub auth: ClientAuth,
}

fn record_path(data_dir: &Path, server: &str) -> PathBuf {
    data_dir.join("upstream").join(format!("{server}.json"))
}

pub fn load_record(data_dir: &Path, server: &str) -> Record {
    std::fs::read(record_path(data_dir, server))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Written atomically and owner-only (`fsutil::write_private`).
pub fn save_record(data_dir: &Path, server: &str, record: &Record) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(record).expect("record serialises");
    crate::fsutil::write_private(&record_path(data_dir, server), &bytes)
}

/// Drops a dynamic registration the AS no longer accepts (`invalid_client`).
pub fn forget_dcr(data_dir: &Path, server: &str) {
    let mut record = load_record(data_dir, server);
    if let Some(dropped) = record.registration.take_if(|r| r.method == Method::Dcr) {
        record.registrations.retain(|r| r.issuer != dropped.issuer);
        let _ = save_record(data_dir, server, &record);
    }
}

pub fn remove_record(data_dir: &Path, server: &str) {
    let _ = std::fs::remove_file(record_path(data_dir, server));
}

/// `client_secret_basic` when the AS lists it or lists nothing (the RFC 8414 default), else
/// `client_secret_post` when listed.
pub fn secret_auth(methods: Option<&[String]>) -> ClientAuth {
    match methods {
        None => ClientAuth::ClientSecretBasic,
        Some(m) if m.iter().any(|x| x == "client_secret_basic") => ClientAuth::ClientSecretBasic,
        Some(m) if m.iter().any(|x| x == "client_secret_post") => ClientAuth::ClientSecretPost,
        Some(_) => ClientAuth::ClientSecretBasic,
    }
}

fn setup(server: &ServerConfig, detail: impl Into<String>) -> UpstreamError {
    UpstreamError::Setup {
        server: server.name.to_string(),
        detail: detail.into(),
    }
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
    let auth = if secret.is_some() {
        secret_auth(methods)
    } else {
        ClientAuth::None
    };
    Ok(Some(ClientInfo {
        client_id: id.clone(),
        secret,
        auth,
    }))
}

pub struct Ctx<'a> {
    pub http: &'a reqwest::Client,
    pub vault: &'a Vault,
    pub data_dir: &'a Path,
    pub redirect_uri: &'a Url,
}

/// Picks or makes the client for an interactive sign-in, in the spec's priority order.
pub async fn ensure_client(
    ctx: &Ctx<'_>,
    server: &ServerConfig,
    issuer: &str,
    meta: Option<&AsMetadata>,
    legacy_register: Option<String>,
) -> Result<(ClientInfo, Registration), UpstreamError> {
    let methods = meta.and_then(|m| m.token_endpoint_auth_methods_supported.as_deref());
    let name = server.name.as_str();
    if let Some(client) = configured_client(ctx.vault, server, methods).await? {
        let reg = Registration {
            method: Method::Preregistered,
            issuer: issuer.into(),
            redirect_uri: ctx.redirect_uri.to_string(),
            client_id: client.client_id.clone(),
            auth: client.auth,
            has_secret: false,
            secret_entry: None,
        };
        return Ok((client, reg));
    }
    if let Some(cimd) = &server.client_id_metadata_url {
        if meta.is_some_and(|m| m.client_id_metadata_document_supported) {
            let reg = Registration {
                method: Method::Cimd,
                issuer: issuer.into(),
                redirect_uri: ctx.redirect_uri.to_string(),
                client_id: cimd.to_string(),
                auth: ClientAuth::None,
                has_secret: false,
                secret_entry: None,
            };
            return Ok((
                ClientInfo {
                    client_id: cimd.to_string(),
                    secret: None,
                    auth: ClientAuth::None,
                },
                reg,
            ));
        }
    }
    let record = load_record(ctx.data_dir, name);
    if let Some(reg) = record.dcr_for(issuer, ctx.redirect_uri.as_str()).cloned() {
        let secret = if reg.has_secret {
            ctx.vault
                .get(&reg.secret_key(name))
                .await
                .map_err(|source| UpstreamError::Vault {
                    server: name.into(),
                    source,
                })?
        } else {
            None
        };
        if !reg.has_secret || secret.is_some() {
            return Ok((
                ClientInfo {
                    client_id: reg.client_id.clone(),
                    secret,
                    auth: reg.auth,
                },
                reg,
            ));
        }
    }
    let endpoint = meta
        .and_then(|m| m.registration_endpoint.clone())
        .or_else(|| server.registration_url.as_ref().map(Url::to_string))
        .or(legacy_register)
        .ok_or_else(|| setup(server, format!("the authorization server {issuer} offers no dynamic client registration; register an OAuth app with it (redirect URI {}) and set \"client_id\" (and \"client_secret\") for this server", ctx.redirect_uri)))?;
    register(ctx, server, issuer, &endpoint, methods).await
}

/// RFC 7591 registration as a public client with refresh tokens and the fixed redirect URI.
async fn register(
    ctx: &Ctx<'_>,
    server: &ServerConfig,
    issuer: &str,
    endpoint: &str,
    methods: Option<&[String]>,
) -> Result<(ClientInfo, Registration), UpstreamError> {
    let name = server.name.as_str();
    // A public client when the AS allows it (or says nothing); else what it does accept.
    let requested = match methods {
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
    };
    let url = checked(endpoint).map_err(|e| UpstreamError::Protocol {
        server: name.into(),
        detail: e.to_string(),
    })?;
    let body = serde_json::json!({
        "client_name": "MCP Auth Broker",
        // A desktop app with a loopback redirect (OIDC DCR / SEP-837).
        "application_type": "native",
        "redirect_uris": [ctx.redirect_uri.as_str()],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": requested,
    });
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
            cause: e.to_string(),
        })?;
    if !(200..300).contains(&got.status) {
        let v: serde_json::Value = serde_json::from_slice(&got.body).unwrap_or_default();
        return Err(UpstreamError::AuthRejected {
            server: name.into(),
            detail: format!(
                "client registration at {url} failed with HTTP {}{}{}; register an OAuth app by hand and set \"client_id\" for this server",
                got.status,
                v["error"].as_str().map(|e| format!(", error \"{e}\"")).unwrap_or_default(),
                v["error_description"].as_str().map(|e| format!(": {e}")).unwrap_or_default()
            ),
        });
    }
    #[derive(Deserialize)]
    struct Answer {
        client_id: String,
        #[serde(default)]
        client_secret: Option<String>,
        #[serde(default)]
        token_endpoint_auth_method: Option<String>,
    }
    let a: Answer = serde_json::from_slice(&got.body).map_err(|e| UpstreamError::Protocol {
        server: name.into(),
        detail: format!(
            "client registration at {url} answered HTTP {} without a usable client_id ({e})",
            got.status
        ),
    })?;
    let secret = a.client_secret.filter(|s| !s.is_empty()).map(Secret::new);
    let auth = match (
        a.token_endpoint_auth_method.as_deref().unwrap_or(requested),
        &secret,
    ) {
        (_, None) => ClientAuth::None,
        ("client_secret_post", Some(_)) => ClientAuth::ClientSecretPost,
        ("client_secret_basic", Some(_)) => ClientAuth::ClientSecretBasic,
        (_, Some(_)) => secret_auth(methods),
    };
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
        method: Method::Dcr,
        issuer: issuer.into(),
        redirect_uri: ctx.redirect_uri.to_string(),
        client_id: a.client_id.clone(),
        auth,
        has_secret: secret.is_some(),
        secret_entry: Some(key),
    };
    let mut record = load_record(ctx.data_dir, name);
    record.keep(&reg);
    record.registration = Some(reg.clone());
    save_record(ctx.data_dir, name, &record).map_err(|e| {
        setup(
            server,
            format!(
                "cannot save the client registration in {}: {e}",
                ctx.data_dir.display()
            ),
        )
    })?;
    Ok((
        ClientInfo {
            client_id: a.client_id,
            secret,
            auth,
        },
        reg,
    ))
}

#[cfg(test)]
#[path = "registration_tests.rs"]
mod tests;
