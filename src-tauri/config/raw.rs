//! The config file as written: LiteLLM-compatible field names, every field optional, unknown
//! fields kept (so they are reported, and survive a rewrite by the app).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RawConfig {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mcp_servers: BTreeMap<String, RawServer>,
    /// Gateway port; `--port` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Seconds between health probes of a server (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_interval_secs: Option<u64>,
    /// Where upstream tokens are kept: "keychain" (default) or "file" (encrypted files under
    /// the data dir); `--store` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_store: Option<String>,
    /// The file store's key file (an absolute path to an owner-only file); without it the key
    /// is read from `MCP_AUTH_BROKER_STORE_KEY`. `--store-key-file` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_store_key_file: Option<String>,
    /// The company identity provider (enterprise-managed authorization): signed in to once,
    /// it vouches for the person at every server marked `oauth_flow: "enterprise"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise: Option<RawEnterprise>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

/// The top-level `enterprise` block as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RawEnterprise {
    /// What the person calls it ("Acme"): "Sign in to Acme", "via Acme".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Value>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

/// One `mcp_servers` entry. Field names follow LiteLLM's so a config block can move over as is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RawServer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<String>,
    /// The static credential for `bearer_token` / `api_key` (a secret reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_flow: Option<String>,
    /// LiteLLM's name for `oauth_flow`, accepted as written (both may be set if they agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2_flow: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_url: Option<String>,
    /// A client ID metadata document URL (CIMD) to use as `client_id` where the AS supports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_metadata_url: Option<String>,
    /// The `audience` some authorization servers (Auth0, Ory Hydra, Okta custom ASes) need before
    /// they issue a token for an API, sent with the sign-in and the client_credentials request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// LiteLLM's name for fixed headers sent upstream; merged with `headers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_headers: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegate_auth_to_upstream: Option<bool>,
    /// Extra parameters on the authorization request (Google's `access_type=offline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_params: Option<BTreeMap<String, String>>,
    /// Send RFC 8707 `resource` upstream (default true); off for ASes that reject it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_resource: Option<bool>,
    /// DPoP-bound upstream tokens (RFC 9449): `true` always, `false` never; unset, when the
    /// authorization server advertises ES256 in `dpop_signing_alg_values_supported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop: Option<Value>,
    /// How the broker authenticates at the token endpoint: `client_secret_basic`,
    /// `client_secret_post` or `none`; unset, the broker follows the metadata and falls back once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// The `private_key_jwt` key: `os.environ/VAR`, `keychain:ENTRY` or an absolute PEM file path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// The `aud` of `private_key_jwt` client assertions (an http(s) URL); unset: the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion_audience: Option<String>,
    /// `oauth_flow: "jwt_bearer"`: the file holding the platform-issued workload JWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion_file: Option<String>,
    /// `oauth_flow: "jwt_bearer"`: the environment variable holding the workload JWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_tools: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disallowed_tools: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Why this entry cannot be used yet (written by `import` for an entry it could not take
    /// over whole). The server is kept out of service and shown as "needs setup" with this
    /// reason until the line is removed (the dashboard's edit form removes it on save).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_setup: Option<String>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}
