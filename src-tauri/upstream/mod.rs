//! The broker as an OAuth client of each upstream MCP server: discovery, flow classification,
//! registration, authorization code + PKCE, client credentials, refresh, sign-out.
//!
//! CONTRACT (used by gateway, health, desktop, cli): the public items of this file keep their
//! signatures; everything else in `upstream/` is this module's own business.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::broadcast;
use url::Url;

use crate::broker::Event;
use crate::config::{ServerConfig, ServerName};
use crate::opener::Opener;
use crate::secret::Secret;
use crate::vault::{Vault, VaultError};

/// What the upstream side needs from the broker.
pub struct UpstreamDeps {
    pub vault: Vault,
    /// `http://127.0.0.1:PORT/oauth/callback`, registered with every upstream AS.
    pub redirect_uri: Url,
    pub data_dir: PathBuf,
    pub events: broadcast::Sender<Event>,
}

/// The flow a server uses, as decided by classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    None,
    Static,
    AuthorizationCode,
    ClientCredentials,
    Delegate,
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
    pub headers: Vec<(http::HeaderName, Secret)>,
}

/// Facts about a server's stored token, never the token itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TokenFacts {
    pub has_token: bool,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    pub has_refresh_token: bool,
    pub last_refresh: Option<RefreshOutcome>,
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
    #[error("server \"{server}\" is unreachable at {url}: {cause}")]
    Unreachable {
        server: String,
        url: String,
        cause: String,
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
            UpstreamError::NeedsSignIn { .. } => FailureKind::NeedsSignIn,
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
    /// Resolves when the callback arrives (or the attempt expires).
    pub done: tokio::sync::oneshot::Receiver<Result<(), String>>,
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

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Upstream")
    }
}

/// Cheap `Clone` handle over the upstream side.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    #[allow(dead_code)]
    deps: UpstreamDeps,
    /// One pooled client for every upstream call of the process.
    http: reqwest::Client,
}

impl Upstream {
    pub fn new(deps: UpstreamDeps) -> Upstream {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client builds");
        Upstream {
            inner: Arc::new(Inner { deps, http }),
        }
    }

    /// The process-wide pooled HTTP client (no redirects, connect timeout set).
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Credentials for one request to `server` (configured headers plus the flow's token,
    /// refreshed or fetched as needed). Never opens a browser, never starts a sign-in.
    pub async fn credential(&self, server: &ServerConfig) -> Result<Credential, UpstreamError> {
        let _ = server;
        Ok(Credential::default())
    }

    /// The upstream refused `rejected` (401): refresh once per server at a time and return the
    /// new credential, or `NeedsSignIn`.
    pub async fn after_rejection(
        &self,
        server: &ServerConfig,
        rejected: &Credential,
    ) -> Result<Credential, UpstreamError> {
        let _ = rejected;
        Err(UpstreamError::NeedsSignIn {
            server: server.name.to_string(),
            reason: "the upstream rejected the credential".into(),
        })
    }

    /// Starts an interactive sign-in (only on a user action or a local client's authorization).
    pub async fn sign_in(
        &self,
        server: &ServerConfig,
        opener: &Opener,
    ) -> Result<SignIn, UpstreamError> {
        let _ = opener;
        Err(UpstreamError::Setup {
            server: server.name.to_string(),
            detail: "sign-in is not available yet".into(),
        })
    }

    /// Completes a sign-in from the `/oauth/callback` query; returns the server signed in.
    pub async fn callback(&self, query: &CallbackQuery) -> Result<ServerName, UpstreamError> {
        let _ = query;
        Err(UpstreamError::Protocol {
            server: "?".into(),
            detail: "no sign-in is pending for this state".into(),
        })
    }

    /// Revokes (when offered) and deletes the server's tokens; local deletion happens even if
    /// revocation fails.
    pub async fn sign_out(&self, server: &ServerConfig) -> Result<(), UpstreamError> {
        let _ = server;
        Ok(())
    }

    pub async fn token_facts(&self, server: &ServerName) -> TokenFacts {
        let _ = server;
        TokenFacts::default()
    }

    /// Discovers the server's auth requirements (no credentials sent) and classifies its flow.
    pub async fn classify(&self, server: &ServerConfig) -> Result<Classification, UpstreamError> {
        let _ = server;
        Ok(Classification {
            flow: Some(Flow::None),
            evidence: vec![],
            choices: vec![],
        })
    }
}
