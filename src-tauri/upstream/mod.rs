//! The broker as an OAuth client of each upstream MCP server: discovery, flow classification,
//! registration, authorization code + PKCE, client credentials, refresh, sign-out.
//!
//! CONTRACT (used by gateway, health, desktop, cli): the public items of this file keep their
//! signatures; everything else in `upstream/` is this module's own business.
//!
//! Map: [`wwwauth`] parses challenges; [`discovery`] probes and reads PRM / AS metadata;
//! [`classify`] decides the flow (pure); [`registration`] picks pre-registered / CIMD / DCR and
//! [`record`] keeps what it chose; [`clientauth`] is how the client authenticates at token endpoints;
//! [`authcode`] runs sign-in, callback and sign-out with [`pending`] bookkeeping (pure);
//! [`m2m`] serves client-credentials tokens; [`refresh`] decides which token a request gets and
//! refreshes user tokens; [`oauth`] wraps the `oauth2` crate and words its failures; [`http`]
//! is every remote read (validated URL, timeout, size cap, same-origin redirects); [`tokens`]
//! stores tokens in the vault and holds the lifetime arithmetic (pure).
//!
//! Per server, one async lock ("flight") serialises refreshes and client-credentials fetches,
//! so a burst makes one token request. Tokens are bound to the server URL they were obtained
//! for. Events: `SignInStarted/Finished/Failed`, `SignedOut`, `TokenRefreshed`,
//! `RefreshFailed`, and `NeedsSignIn` — sent by this module only (the gateway does not), once
//! per change: the first time a server is found without a usable sign-in (never signed in, a
//! refused refresh token, an expiry with nothing to refresh with, a moved AS or URL), and again
//! only after a sign-in or refresh has worked in between.

pub mod assertion;
pub mod authcode;
pub mod cause;
pub mod classify;
pub mod clientauth;
mod credential;
mod dcr;
pub mod device;
pub mod discovery;
pub mod dns;
pub mod dpop;
pub mod enterprise;
pub mod exchange;
mod flowtoken;
pub mod formgrant;
pub mod hints;
pub mod http;
pub mod jose;
mod keyclient;
pub mod m2m;
mod machine;
pub mod oauth;
pub mod paste;
pub mod pending;
mod preflight;
mod probe;
pub mod record;
pub mod refresh;
pub mod registration;
mod signin;
pub mod stepup;
pub mod timeline;
pub mod tokenfailure;
pub mod tokens;
mod types;
pub mod wwwauth;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::broadcast;
use url::Url;

/// The clock, as `now` for this module's children (`use super::now`).
use crate::clock::unix_now as now;
use crate::config::{ServerConfig, ServerName};
use crate::events::Event;
use crate::opener::Opener;
use crate::secret::Secret;
use crate::sync::lock;
use crate::vault::{Vault, VaultError};
pub use types::*;

/// What the upstream side needs from the broker.
pub struct UpstreamDeps {
    pub vault: Vault,
    /// `http://127.0.0.1:PORT/oauth/callback`, registered with every upstream AS.
    pub redirect_uri: Url,
    pub data_dir: PathBuf,
    pub events: broadcast::Sender<Event>,
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
    deps: UpstreamDeps,
    /// One pooled client for every upstream call of the process.
    http: reqwest::Client,
    /// Per-server single-flight locks and bookkeeping, created on first use.
    servers: std::sync::Mutex<HashMap<ServerName, Arc<ServerState>>>,
    /// Interactive sign-ins waiting for their callback, keyed by `state`.
    pending: std::sync::Mutex<pending::Pending>,
}

/// What the broker keeps in memory per server.
#[derive(Default)]
struct ServerState {
    /// Held across a refresh or a client-credentials fetch, so a burst of callers makes one
    /// token request and the rest reuse its result.
    flight: tokio::sync::Mutex<Flight>,
    /// `Event::NeedsSignIn` was sent and nothing has fixed it since (sent once per change).
    needs_sign_in_sent: AtomicBool,
    last_refresh: std::sync::Mutex<Option<RefreshOutcome>>,
    /// The last discovery of this server (used by client credentials without a token_url).
    discovery: std::sync::Mutex<Option<Arc<discovery::Discovery>>>,
    /// Scopes the server's 403 `insufficient_scope` challenges asked for, added to every later
    /// token request for it ([`stepup`]).
    step_up: std::sync::Mutex<stepup::Held>,
    /// What happened to this server's auth since the broker started ([`timeline`]).
    timeline: std::sync::Mutex<timeline::Timeline>,
    /// The device sign-in running for this server ([`device`]).
    device: std::sync::Mutex<Option<device::Running>>,
    /// The server's DPoP key, read or made on first need, dropped at sign-out ([`dpop`]).
    dpop: tokio::sync::Mutex<Option<Arc<dpop::Prover>>>,
}

#[derive(Default)]
struct Flight {
    m2m: Option<m2m::Cached>,
    /// Consecutive transient refresh failures, and when the next attempt is allowed.
    failures: u32,
    retry_after: Option<u64>,
    /// The last client-credentials failure, served to callers until it expires.
    m2m_failure: Option<m2m::Failure>,
}

fn vault_err(server: &str) -> impl FnOnce(VaultError) -> UpstreamError + '_ {
    move |source| UpstreamError::Vault {
        server: server.to_string(),
        source,
    }
}

impl Upstream {
    pub fn new(deps: UpstreamDeps) -> Upstream {
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(http::GuardedResolver))
            .tcp_nodelay(true)
            .connect_timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client builds");
        Upstream {
            inner: Arc::new(Inner {
                deps,
                http,
                servers: Default::default(),
                pending: Default::default(),
            }),
        }
    }

    /// The process-wide pooled HTTP client (no redirects, connect timeout set).
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    fn state(&self, server: &ServerName) -> Arc<ServerState> {
        lock(&self.inner.servers)
            .entry(server.clone())
            .or_default()
            .clone()
    }

    fn emit(&self, event: Event) {
        if let Some((server, kind, ok, detail)) = timeline::event_step(&event) {
            self.note(server, kind, ok, &detail);
        }
        tracing::info!(?event, "event");
        let _ = self.inner.deps.events.send(event);
    }

    /// Sends `NeedsSignIn` once per change and returns the matching error.
    fn needs_sign_in(&self, server: &ServerName, reason: impl Into<String>) -> UpstreamError {
        let reason = reason.into();
        self.note(server, timeline::StepKind::NeedsSignIn, false, &reason);
        if !self
            .state(server)
            .needs_sign_in_sent
            .swap(true, Ordering::SeqCst)
        {
            self.emit(Event::NeedsSignIn {
                server: server.clone(),
            });
        }
        UpstreamError::NeedsSignIn {
            server: server.to_string(),
            reason,
        }
    }

    fn signed_in(&self, server: &ServerName) {
        self.state(server)
            .needs_sign_in_sent
            .store(false, Ordering::SeqCst);
    }

    /// Credentials for one request to `server` (configured headers plus the flow's token,
    /// refreshed or fetched as needed). Never opens a browser, never starts a sign-in.
    ///
    /// Static credentials: `bearer_token` → `Authorization: Bearer <auth_value>`; `api_key` →
    /// `x-api-key: <auth_value>`, unless `headers` already configures `x-api-key` or
    /// `authorization` (then the configured headers are what is sent, and `auth_value` is not
    /// added a second time). Delegate and none attach no broker-held token.
    pub async fn credential(&self, server: &ServerConfig) -> Result<Credential, UpstreamError> {
        let headers = self.config_headers(server).await?;
        let bearer = self.flow_token(server, None).await?;
        let mut cred = Credential {
            bearer: None,
            headers,
            dpop: None,
        };
        match bearer {
            FlowToken::None => {}
            FlowToken::Bearer(t) => cred.bearer = Some(t),
            FlowToken::Bound(t) => {
                cred.bearer = Some(t);
                cred.dpop = Some(self.dpop_prover(&server.name).await?);
            }
            FlowToken::ApiKey(k) => {
                let configured = cred
                    .headers
                    .iter()
                    .any(|(n, _)| n.as_str() == "x-api-key" || n == ::http::header::AUTHORIZATION);
                if !configured {
                    cred.headers
                        .push((::http::HeaderName::from_static("x-api-key"), k));
                }
            }
        }
        Ok(cred)
    }

    /// The upstream refused `rejected` (401): refresh once per server at a time and return the
    /// new credential, or `NeedsSignIn`.
    pub async fn after_rejection(
        &self,
        server: &ServerConfig,
        rejected: &Credential,
    ) -> Result<Credential, UpstreamError> {
        let detail = "the upstream answered HTTP 401 to the broker's credential";
        self.note(&server.name, timeline::StepKind::Rejected, false, detail);
        let headers = self.config_headers(server).await?;
        match self.flow_token(server, Some(rejected)).await? {
            FlowToken::Bearer(t) => Ok(Credential {
                bearer: Some(t),
                headers,
                dpop: None,
            }),
            FlowToken::Bound(t) => Ok(Credential {
                bearer: Some(t),
                headers,
                dpop: Some(self.dpop_prover(&server.name).await?),
            }),
            FlowToken::None | FlowToken::ApiKey(_) => unreachable_rejection(server),
        }
    }

    /// Starts an interactive sign-in (only on a user action or a local client's authorization).
    pub async fn sign_in(
        &self,
        server: &ServerConfig,
        opener: &Opener,
    ) -> Result<SignIn, UpstreamError> {
        self.start_sign_in(server, opener, None).await
    }

    /// [`Upstream::sign_in`] asking for `scope` (a step-up after a 403 `insufficient_scope`,
    /// whose challenge scope is authoritative); `None` = the usual scope selection.
    pub async fn sign_in_with_scope(
        &self,
        server: &ServerConfig,
        opener: &Opener,
        scope: Option<String>,
    ) -> Result<SignIn, UpstreamError> {
        self.start_sign_in(server, opener, scope).await
    }

    /// Starts the sign-in `kind` asks for (only on a user action): `Auto` is a device sign-in
    /// when the server's authorization server offers one (RFC 8628), else the browser's.
    pub async fn sign_in_kind(
        &self,
        server: &ServerConfig,
        opener: &Opener,
        kind: SignInKind,
    ) -> Result<Started, UpstreamError> {
        self.start_kind(server, opener, kind).await
    }

    /// The device sign-in running for `server`: its code and address, for the tray and the
    /// dashboard to show.
    pub fn device_code(&self, server: &ServerName) -> Option<DeviceCode> {
        let state = self.state(server);
        let running = lock(&state.device);
        running.as_ref().map(|r| r.code.clone())
    }

    /// Completes a sign-in from the `/oauth/callback` query; returns the server signed in.
    pub async fn callback(&self, query: &CallbackQuery) -> Result<ServerName, UpstreamError> {
        self.finish_sign_in(query).await
    }

    /// Revokes (when offered) and deletes the server's tokens; local deletion happens even if
    /// revocation fails.
    pub async fn sign_out(&self, server: &ServerConfig) -> Result<(), UpstreamError> {
        self.do_sign_out(server).await
    }

    pub async fn token_facts(&self, server: &ServerName) -> TokenFacts {
        let last_refresh = lock(&self.state(server).last_refresh).clone();
        match tokens::load(&self.inner.deps.vault, server.as_str()).await {
            Ok(Some(s)) => TokenFacts {
                has_token: true,
                expires_at: s.meta.expires_at,
                has_refresh_token: s.refresh.is_some() && !s.meta.refresh_rejected,
                last_refresh,
                needs_scope: stepup::lacking(
                    self.stepped_up(server).as_deref(),
                    s.meta.scope.as_deref(),
                ),
                dpop_jkt: s.meta.dpop_jkt,
            },
            Ok(None) | Err(_) => TokenFacts {
                last_refresh,
                ..TokenFacts::default()
            },
        }
    }

    /// Discovers the server's auth requirements (no credentials sent) and classifies its flow.
    pub async fn classify(&self, server: &ServerConfig) -> Result<Classification, UpstreamError> {
        if let Some(c) = classify::from_config(server) {
            if matches!(c.flow, Some(Flow::Delegate | Flow::Static)) {
                return Ok(c);
            }
        }
        let d = self.discover(server).await;
        let mut c = classify::classify(server, Some(&d.evidence()));
        if matches!(
            c.flow,
            Some(Flow::AuthorizationCode | Flow::ClientCredentials | Flow::Enterprise) | None
        ) {
            let name = server.name.as_str();
            c.evidence
                .extend(clientauth::evidence(&self.inner.deps.data_dir, name));
            let key = assertion::evidence(&self.inner.deps.vault, server).await;
            c.evidence.extend(key);
        }
        Ok(c)
    }

    /// Runs discovery now and remembers the result for this server.
    pub async fn discover(&self, server: &ServerConfig) -> Arc<discovery::Discovery> {
        let d = Arc::new(discovery::discover(&self.inner.http, &server.url).await);
        let (ok, detail) = timeline::discovery_step(&d);
        self.note(&server.name, timeline::StepKind::Discovery, ok, &detail);
        *lock(&self.state(&server.name).discovery) = Some(d.clone());
        d
    }
}

fn unreachable_rejection(server: &ServerConfig) -> Result<Credential, UpstreamError> {
    Err(UpstreamError::AuthRejected {
        server: server.name.to_string(),
        detail: "the upstream rejected the configured credential (HTTP 401); check the token or key configured for this server".into(),
    })
}

/// The token a flow contributes to a request.
enum FlowToken {
    None,
    Bearer(Secret),
    /// A DPoP-bound access token (RFC 9449): sent with the `DPoP` scheme and a proof.
    Bound(Secret),
    ApiKey(Secret),
}

impl From<tokens::Stored> for FlowToken {
    fn from(s: tokens::Stored) -> FlowToken {
        if s.bound() {
            FlowToken::Bound(s.access)
        } else {
            FlowToken::Bearer(s.access)
        }
    }
}
