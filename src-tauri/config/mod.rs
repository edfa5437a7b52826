//! Configuration: the raw file ([`raw`]), its validation into typed config ([`validate`], with
//! the field parsers in `fields`), the file on disk ([`file`]: default path, atomic writes) and
//! noticing its changes ([`watch`]).
//!
//! Architecture Invariant: code outside this module sees only validated [`Config`] values.

mod combinations;
mod enterprise;
mod fields;
pub mod file;
pub mod litellm;
pub mod machine;
pub mod profiles;
pub mod raw;
mod store;
pub mod validate;
pub mod watch;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::secret::SecretRef;
use crate::vault::StoreKind;

pub use enterprise::EnterpriseConfig;
pub use fields::is_sensitive_header;
pub use raw::{RawConfig, RawEnterprise, RawServer};
pub use validate::{validate, ConfigError, Validated};

/// The default gateway port: fixed so redirect URIs and client configs stay stable. Chosen from
/// the unassigned IANA range, away from common dev ports.
pub const DEFAULT_PORT: u16 = 47823;

/// Default seconds between health probes.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(60);

/// Validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub servers: BTreeMap<ServerName, ServerConfig>,
    pub port: Option<u16>,
    pub health_interval: Duration,
    /// `token_store`: `None` leaves the choice to `--store` (default: the keychain).
    pub token_store: Option<StoreKind>,
    /// `token_store_key_file`: the file store's key file, when not from the environment.
    pub token_store_key_file: Option<PathBuf>,
    /// The company identity provider, when the file configures one (`enterprise`).
    pub enterprise: Option<std::sync::Arc<EnterpriseConfig>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            servers: BTreeMap::new(),
            port: None,
            health_interval: DEFAULT_HEALTH_INTERVAL,
            token_store: None,
            token_store_key_file: None,
            enterprise: None,
        }
    }
}

impl Config {
    pub fn server(&self, name: &str) -> Option<&ServerConfig> {
        self.servers.get(name)
    }
}

impl ServerConfig {
    /// Whether the admin's tool lists let clients see and call `tool`: it must be on
    /// `allowed_tools` when that list is set, and never on `disallowed_tools` (deny wins).
    /// Names match exactly, as the upstream spells them (before any aggregate prefix).
    pub fn permits_tool(&self, tool: &str) -> bool {
        let allowed = self
            .allowed_tools
            .as_ref()
            .is_none_or(|list| list.iter().any(|t| t == tool));
        allowed && !self.disallowed_tools.iter().any(|t| t == tool)
    }

    /// True when the admin restricted this server's tools at all (so answers need filtering).
    pub fn filters_tools(&self) -> bool {
        self.allowed_tools.is_some() || !self.disallowed_tools.is_empty()
    }
}

/// The gateway's fixed first path segments (`/mcp`, `/signin/{nonce}`, `/api/…`, …): a server so
/// named would be shadowed by the gateway's own route, so none may be. The gateway's test checks
/// this list is exactly the fixed first segments of its routes.
pub const RESERVED_NAMES: &[&str] = &[
    "api",
    "authorize",
    "consent",
    "healthz",
    "mcp",
    "oauth",
    "register",
    "revoke",
    "signin",
    "token",
];

/// A server's name: the `{server}` path segment of its client URL, so URL-safe by construction
/// (`[a-z0-9_-]`, starts with a letter or digit, at most 64 characters, no `__`, no trailing `_`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerName(String);

impl ServerName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(name: &str) -> Result<ServerName, String> {
        let ok_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        if name.is_empty() || name.len() > Self::MAX_LEN {
            return Err(format!("must be 1 to {} characters long", Self::MAX_LEN));
        }
        if !name.chars().all(ok_char) {
            return Err("may only contain lowercase letters, digits, '-' and '_'".into());
        }
        if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err("must start with a letter or digit".into());
        }
        // The aggregate endpoint names tools `SERVER__TOOL` and splits at the first `__`.
        if name.contains("__") || name.ends_with('_') {
            return Err("may not contain \"__\" or end with '_' (the /mcp endpoint joins server and tool names with \"__\")".into());
        }
        if RESERVED_NAMES.contains(&name) {
            return Err(format!(
                "'{name}' is reserved for the gateway's own routes (/{name}/…); pick another name"
            ));
        }
        Ok(ServerName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A name no config entry can take (it starts with `_`), for what the broker keeps like a
    /// server's sign-in without being a server: the company sign-in.
    pub fn internal(name: &'static str) -> ServerName {
        debug_assert!(name.starts_with('_') && ServerName::parse(name).is_err());
        ServerName(name.to_string())
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for ServerName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP (2025-03-26 and later).
    Http,
    /// The older HTTP+SSE transport (2024-11-05).
    Sse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    None,
    BearerToken,
    ApiKey,
    OAuth2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthFlow {
    AuthorizationCode,
    ClientCredentials,
    /// Enterprise-managed authorization: tokens come from the company sign-in (`enterprise`),
    /// exchanged for an ID-JAG and redeemed with the jwt-bearer grant; nobody signs in here.
    Enterprise,
    /// Workload identity federation: a platform-issued JWT (`assertion_file` / `assertion_env`)
    /// exchanged with the jwt-bearer grant (RFC 7523 §2.1); a machine token like
    /// client_credentials.
    JwtBearer,
}

/// A configured token-endpoint client authentication method (`token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A public client: only `client_id` is sent, never a secret.
    None,
    /// RFC 7523 client assertions signed with the client's private key (`private_key`, or one
    /// the broker generates): no shared secret.
    PrivateKeyJwt,
}

/// A header sent upstream on every request: a literal, or a secret reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Literal(String),
    Secret(SecretRef),
}

/// One validated upstream server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub name: ServerName,
    /// The upstream MCP endpoint.
    pub url: Url,
    pub transport: Transport,
    pub auth_type: AuthType,
    /// The static credential of `bearer_token` / `api_key`.
    pub auth_value: Option<SecretRef>,
    /// Explicit flow: when set it wins over anything discovered.
    pub oauth_flow: Option<OAuthFlow>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretRef>,
    /// A *configured* token URL. A discovered one never lives here.
    pub token_url: Option<Url>,
    pub authorization_url: Option<Url>,
    pub registration_url: Option<Url>,
    pub client_id_metadata_url: Option<Url>,
    /// Sent as `audience` on the authorization request and the client_credentials token request,
    /// for authorization servers that issue API tokens only when asked for one (Auth0 and kin);
    /// RFC 8707 `resource` is sent as well unless `send_resource` is off.
    pub audience: Option<String>,
    pub scopes: Vec<String>,
    pub headers: BTreeMap<String, HeaderValue>,
    pub delegate_auth_to_upstream: bool,
    pub send_resource: bool,
    /// Sender-constrained tokens (DPoP, RFC 9449): `Some(true)` always, `Some(false)` never,
    /// `None` when the authorization server advertises it (`upstream::dpop::wanted`).
    pub dpop: Option<bool>,
    /// Extra parameters on the authorization request, for providers that need one (Google's
    /// `access_type=offline`); never one the broker sets itself.
    pub authorization_params: BTreeMap<String, String>,
    /// Overrides how the broker authenticates at the token endpoint (no fallback then).
    pub token_endpoint_auth_method: Option<TokenAuthMethod>,
    /// The `private_key_jwt` key, when configured; unset, the broker generates one.
    pub private_key: Option<machine::KeySource>,
    /// The `aud` of its client assertions, when the provider wants another than the issuer.
    pub assertion_audience: Option<String>,
    /// The workload token of `oauth_flow: "jwt_bearer"`.
    pub assertion: Option<machine::AssertionSource>,
    pub allowed_tools: Option<Vec<String>>,
    pub disallowed_tools: Vec<String>,
    /// False for a server turned off in the config, and for one that needs setup.
    pub enabled: bool,
    /// Why the entry cannot be used yet: the config's `needs_setup` reason, an environment
    /// variable its `client_id` names that is unset, or (for a `needs_setup` entry) what
    /// validation found. Such a server is not enabled and shows as "needs setup".
    pub needs_setup: Option<String>,
    /// The company identity provider, for a server with `oauth_flow: "enterprise"` (the
    /// top-level `enterprise` block, shared).
    pub enterprise: Option<std::sync::Arc<EnterpriseConfig>>,
}
