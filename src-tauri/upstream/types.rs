//! The upstream contract's plain types: flows and their evidence, credentials, token facts,
//! failures, sign-ins. Re-exported by [`super`]; none holds a token value except `Credential`,
//! whose fields are [`Secret`]s.

use url::Url;

use crate::secret::Secret;
use crate::vault::VaultError;

/// The flow a server uses, as decided by classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    None,
    Static,
    AuthorizationCode,
    ClientCredentials,
    Delegate,
    /// Enterprise-managed authorization: the company sign-in's ID token, exchanged for an
    /// ID-JAG and redeemed with the jwt-bearer grant (`enterprise`).
    Enterprise,
}

/// A classification and the evidence that decided it (shown to the person).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Classification {
    /// `None` means "needs your choice": the evidence conflicts; see `choices`.
    pub flow: Option<Flow>,
    pub evidence: Vec<String>,
    pub choices: Vec<Flow>,
}

/// Credentials to attach to one upstream request (configured headers plus the flow's token).
#[derive(Debug, Clone, Default)]
pub struct Credential {
    pub bearer: Option<Secret>,
    pub headers: Vec<(::http::HeaderName, Secret)>,
    /// The key `bearer` is bound to (DPoP, RFC 9449): it goes with the `DPoP` scheme and a fresh
    /// proof per request (`exchange::authorize`). `None` for a bearer token.
    pub dpop: Option<std::sync::Arc<super::dpop::Prover>>,
}

/// Facts about a server's stored token, never the token itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TokenFacts {
    pub has_token: bool,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    pub has_refresh_token: bool,
    pub last_refresh: Option<RefreshOutcome>,
    /// Scopes a 403 `insufficient_scope` asked for that the stored token was not granted: the
    /// person should sign in again ([`stepup`]).
    pub needs_scope: Option<String>,
    /// The stored token is DPoP-bound (RFC 9449) to the key with this thumbprint (`cnf.jkt`).
    pub dpop_jkt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RefreshOutcome {
    /// Unix seconds.
    pub at: u64,
    pub ok: bool,
    pub detail: Option<String>,
}

/// The broad kind of an upstream failure, stable for callers to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No token, or the refresh token was rejected: the person must sign in.
    NeedsSignIn,
    /// DNS, connect, TLS or timeout.
    Unreachable,
    /// The upstream or its AS refuses a fresh credential.
    AuthRejected,
    /// A response that does not follow the protocol.
    Protocol,
    /// Config or keychain problem the person must fix.
    Setup,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("server \"{server}\" needs sign-in: {reason}. Sign in from the tray menu (MCP Auth Broker → {server} → Sign in) or run `mcp-auth-broker login {server}`")]
    NeedsSignIn { server: String, reason: String },
    /// A server whose tokens come via the company sign-in (`oauth_flow: "enterprise"`), while
    /// there is no company session to use.
    #[error("server \"{server}\" needs company sign-in: {reason}. Sign in to {company} from the tray menu (MCP Auth Broker → Sign in to {company}) or run `mcp-auth-broker login --enterprise`; one sign-in serves every server that uses it")]
    NeedsCompanySignIn {
        server: String,
        company: String,
        reason: String,
    },
    #[error("server \"{server}\" is unreachable at {url}: {cause}")]
    Unreachable {
        server: String,
        url: String,
        /// Its words and, where the transport said, its kind (refused, DNS, TLS, timeout).
        cause: super::cause::Cause,
    },
    #[error("server \"{server}\": {detail}")]
    AuthRejected { server: String, detail: String },
    #[error("server \"{server}\": {detail}")]
    Protocol { server: String, detail: String },
    #[error("server \"{server}\": {source}")]
    Vault {
        server: String,
        #[source]
        source: VaultError,
    },
    #[error("server \"{server}\": {detail}")]
    Setup { server: String, detail: String },
}

impl UpstreamError {
    pub fn kind(&self) -> FailureKind {
        match self {
            UpstreamError::NeedsSignIn { .. } | UpstreamError::NeedsCompanySignIn { .. } => {
                FailureKind::NeedsSignIn
            }
            UpstreamError::Unreachable { .. } => FailureKind::Unreachable,
            UpstreamError::AuthRejected { .. } => FailureKind::AuthRejected,
            UpstreamError::Protocol { .. } => FailureKind::Protocol,
            UpstreamError::Vault { .. } | UpstreamError::Setup { .. } => FailureKind::Setup,
        }
    }
}

/// An interactive sign-in in progress.
pub struct SignIn {
    /// The validated authorization URL that was opened (or printed).
    pub authorize_url: Url,
    /// What the person should know before the browser opens (e.g. endpoints that were guessed).
    pub warnings: Vec<String>,
    /// Resolves when the callback arrives (or the attempt expires).
    pub done: tokio::sync::oneshot::Receiver<Result<(), String>>,
}

/// A running device sign-in as the person sees it (RFC 8628). Nothing here is secret: the code
/// is meant to be read off a screen, and the device code the broker polls with stays inside.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceCode {
    pub user_code: String,
    pub verification_uri: String,
    /// The address with the code filled in, when the server gives one.
    pub verification_uri_complete: Option<String>,
    /// Unix seconds.
    pub expires_at: u64,
}

impl DeviceCode {
    /// The address to open: the one with the code filled in when there is one.
    pub fn open_uri(&self) -> &str {
        self.verification_uri_complete
            .as_deref()
            .unwrap_or(&self.verification_uri)
    }
}

/// A device sign-in in progress.
pub struct DeviceSignIn {
    pub code: DeviceCode,
    /// Resolves when the code is confirmed (and the tokens kept), refused, or expired.
    pub done: tokio::sync::oneshot::Receiver<Result<(), String>>,
}

/// Which sign-in to start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInKind {
    /// A device sign-in when the authorization server offers one, else the browser's.
    #[default]
    Auto,
    Browser,
    Device,
}

/// A sign-in that started.
pub enum Started {
    Browser(SignIn),
    Device(DeviceSignIn),
}

/// Query parameters of `/oauth/callback`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}
