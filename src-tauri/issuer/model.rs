//! The records the authorization server keeps. Token values never appear here: only the hex
//! SHA-256 of each token is stored (see [`super::crypto::hash`]).

use serde::{Deserialize, Serialize};

/// Lifetime of a broker access token (seconds).
pub const ACCESS_TTL: u64 = 3600;
/// Lifetime of a refresh token (seconds); every rotation starts a new one.
pub const REFRESH_TTL: u64 = 30 * 24 * 3600;
/// Lifetime of an authorization code (seconds; RFC 6749 recommends at most 10 minutes).
pub const CODE_TTL: u64 = 300;
/// How long a pending authorization request (consent page, upstream sign-in) stays usable.
pub const PENDING_TTL: u64 = 15 * 60;

/// A local client (Claude Code, Cursor, a script) registered by DCR or known by its client ID
/// metadata document URL.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    /// Untrusted display text from the registration (escaped wherever it is shown).
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub created_at: u64,
    /// Unix seconds of the last code or token issued to it (`None`: never used).
    pub last_used: Option<u64>,
    /// True when `client_id` is the URL of a client ID metadata document.
    #[serde(default)]
    pub metadata_document: bool,
    /// What the client said it is at registration (`native` when it did not say).
    #[serde(default)]
    pub application_type: ApplicationType,
}

/// RFC 7591 / OIDC registration's `application_type`: recorded and echoed; redirect URIs are
/// checked by the same loopback-or-https rules either way.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationType {
    #[default]
    Native,
    Web,
}

/// A person's approval of one client for one server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Consent {
    pub client_id: String,
    pub server: String,
    pub approved_at: u64,
}

/// One authorization: the family of access and refresh tokens that came from one code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    /// The audience: tokens of this grant are accepted at `/{server}/mcp` only.
    pub server: String,
    pub scope: Option<String>,
    pub created_at: u64,
    /// Unix seconds of the last refresh (`None`: never refreshed).
    pub refreshed_at: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessRecord {
    pub grant_id: String,
    pub server: String,
    pub client_id: String,
    pub expires_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefreshRecord {
    pub grant_id: String,
    pub expires_at: u64,
    /// A rotated refresh token is kept only to detect its reuse (which revokes the family).
    pub rotated: bool,
}

/// An issued authorization code (in memory only: codes live minutes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub client_id: String,
    pub server: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: Option<String>,
    pub expires_at: u64,
    /// Set by the first request that presents the code, whatever its outcome: a code is
    /// redeemable once (RFC 6749 §4.1.2), so a failed attempt spends it too.
    pub spent: Option<Spent>,
}

/// What became of a code's one redemption attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spent {
    /// The attempt was refused (wrong client, redirect URI or verifier, another server).
    Refused,
    /// The attempt issued tokens of this grant; a replay revokes it.
    Issued(String),
}

/// A local API key for scripts; accepted for every server unless bound to one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub hash: String,
    /// `None`: valid for every server.
    pub server: Option<String>,
    pub created_at: u64,
    /// Unix seconds of the last request it authenticated. Kept in memory on every use and
    /// persisted with the next change, so a restart may lose the latest value.
    #[serde(default)]
    pub last_used: Option<u64>,
}

/// What the desktop/CLI shows about an API key (never the key or its hash).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    pub server: Option<String>,
    pub created_at: u64,
    pub last_used: Option<u64>,
}

/// What the desktop/CLI shows about a client.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClientInfo {
    pub client_id: String,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub created_at: u64,
    pub last_used: Option<u64>,
    /// Servers this client was approved for.
    pub approved_servers: Vec<String>,
}

/// What the desktop/CLI shows about a grant.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GrantInfo {
    pub id: String,
    pub client_id: String,
    pub client_name: Option<String>,
    pub server: String,
    pub created_at: u64,
    pub refreshed_at: Option<u64>,
}

/// Who made an authenticated request to `/{server}/mcp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A broker access token issued to this client.
    Client { client_id: String },
    /// A local API key.
    ApiKey { id: String },
}

impl Principal {
    /// A stable key for binding upstream sessions to their owner.
    pub fn key(&self) -> String {
        match self {
            Principal::Client { client_id } => format!("client:{client_id}"),
            Principal::ApiKey { id } => format!("apikey:{id}"),
        }
    }

    pub fn is_api_key(&self) -> bool {
        matches!(self, Principal::ApiKey { .. })
    }
}

/// Tokens handed to a client by `/token`.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: crate::secret::Secret,
    pub refresh_token: crate::secret::Secret,
    pub expires_in: u64,
    pub scope: Option<String>,
    /// The server the tokens are bound to.
    pub server: String,
}
