//! One server's monitor: probe, publish, wait (interval with backoff and jitter, or a wake-up),
//! repeat until cancelled. Probes never open a browser and never start a sign-in: they only use
//! `Upstream::credential` / `after_rejection`, which promise exactly that.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::probe::{self, ProbeError, ProbeOk};
use super::{schedule, HealthState, Shared};
use crate::clock::unix_now;
use crate::config::{AuthType, Config, OAuthFlow, ServerConfig, Transport};
use crate::upstream::discovery::same_issuer;
use crate::upstream::{Classification, Credential, Flow, Upstream, UpstreamError};
use crate::vault::VaultError;

/// Each request of a probe must answer within this.
pub const PER_REQUEST: Duration = Duration::from_secs(10);
/// A whole probe (credential fetch included) must finish within this.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// What every monitor uses: the upstream client and the running config.
#[derive(Clone)]
pub(super) struct Deps {
    pub upstream: Upstream,
    pub config: watch::Receiver<Arc<Config>>,
}

pub(super) struct Monitor {
    shared: Arc<Shared>,
    deps: Deps,
    server: ServerConfig,
    cancel: CancellationToken,
    wake: Arc<Notify>,
    /// Cleared on every triggered check so a changed upstream is re-classified.
    classification: Option<Classification>,
    /// The authorization servers the upstream's challenge named at the first check of this
    /// sign-in; a later, different answer means the person must sign in again.
    baseline_issuers: Option<Vec<String>>,
    failures: u32,
}

impl Monitor {
    pub(super) fn new(
        shared: Arc<Shared>,
        deps: Deps,
        server: ServerConfig,
        cancel: CancellationToken,
        wake: Arc<Notify>,
    ) -> Monitor {
        Monitor {
            shared,
            deps,
            server,
            cancel,
            wake,
            classification: None,
            baseline_issuers: None,
            failures: 0,
        }
    }

    pub(super) async fn run(mut self, first_delay: Duration) {
        if !first_delay.is_zero() {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(first_delay) => {}
            }
        }
        let mut triggered = true;
        loop {
            if triggered {
                self.classification = None;
                self.shared
                    .update(&self.server.name, |s| s.state = HealthState::Checking);
            }
            let cancel = self.cancel.clone();
            let state = tokio::select! {
                _ = cancel.cancelled() => return,
                state = tokio::time::timeout(PROBE_TIMEOUT, self.check()) => state.unwrap_or_else(|_| HealthState::Unreachable {
                    cause: format!("the check did not finish within {} s (the server or its token endpoint is too slow)", PROBE_TIMEOUT.as_secs()),
                }),
            };
            self.failures = if matches!(state, HealthState::Healthy { .. }) {
                0
            } else {
                self.failures.saturating_add(1)
            };
            let token = self.deps.upstream.token_facts(&self.server.name).await;
            if self.cancel.is_cancelled() {
                return;
            }
            let flow = self.classification.clone();
            if matches!(state, HealthState::Unreachable { .. }) {
                // Classified while down: "no auth" is a guess, made again once it answers.
                self.classification = None;
            }
            let now = unix_now();
            self.shared.update(&self.server.name, |s| {
                s.state = state;
                s.checked_at = Some(now);
                s.flow = flow;
                s.token = token;
            });
            let delay = schedule::next_delay(
                self.deps.config.borrow().health_interval,
                self.failures,
                rand::random::<f64>(),
            );
            triggered = tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = self.wake.notified() => true,
                _ = tokio::time::sleep(delay) => false,
            };
        }
    }

    /// The flow the probe follows: what the config states explicitly, else the classification.
    fn flow(&self) -> Option<Flow> {
        let s = &self.server;
        let explicit = match (s.auth_type, s.oauth_flow) {
            _ if s.delegate_auth_to_upstream => Some(Flow::Delegate),
            (AuthType::BearerToken | AuthType::ApiKey, _) => Some(Flow::Static),
            (_, Some(OAuthFlow::ClientCredentials | OAuthFlow::JwtBearer)) => {
                Some(Flow::ClientCredentials)
            }
            (_, Some(OAuthFlow::Enterprise)) => Some(Flow::Enterprise),
            (_, Some(OAuthFlow::AuthorizationCode)) => Some(Flow::AuthorizationCode),
            _ => None,
        };
        explicit.or_else(|| self.classification.as_ref().and_then(|c| c.flow))
    }

    /// One check: credential of the server's own flow, the MCP probe (once more after a refresh
    /// on 401/403), then for interactive servers the anonymous challenge's AS.
    async fn check(&mut self) -> HealthState {
        let upstream = self.deps.upstream.clone();
        if self.classification.is_none() {
            self.classification = upstream.classify(&self.server).await.ok();
        }
        let credential = match upstream.credential(&self.server).await {
            Ok(c) => c,
            Err(e) => return from_upstream_error(e),
        };
        let mut result = self.probe(&credential).await;
        if let Err(ProbeError::Rejected { detail, .. }) = &result {
            let detail = detail.clone();
            result = match self.flow() {
                Some(Flow::Static) => {
                    return HealthState::AuthRejected {
                        detail: format!("{}: {detail}", super::REFUSED_CONFIGURED),
                    }
                }
                Some(Flow::Delegate) => return delegated(),
                _ => match upstream.after_rejection(&self.server, &credential).await {
                    Ok(fresh) => self.probe(&fresh).await,
                    Err(e) => return from_upstream_error(e),
                },
            };
        }
        let state = match result {
            Ok(ok) => healthy(ok),
            Err(ProbeError::Rejected { detail, .. }) => HealthState::AuthRejected {
                detail: format!("{}: {detail}", super::REFUSED_FRESH_TOKEN),
            },
            Err(e) => from_probe_error(e),
        };
        // An interactive server whose AS moved either still accepts the old sign-in (healthy)
        // or refuses even a refreshed token: both mean "sign in again", which is the fix.
        let healthy_now = matches!(state, HealthState::Healthy { .. });
        if self.flow() == Some(Flow::AuthorizationCode)
            && (healthy_now || matches!(state, HealthState::AuthRejected { .. }))
        {
            if let Some(changed) = self.authorization_server_changed(healthy_now).await {
                return changed;
            }
        }
        state
    }

    async fn probe(&self, credential: &Credential) -> Result<ProbeOk, ProbeError> {
        let http = self.deps.upstream.http();
        match self.server.transport {
            Transport::Http => probe::probe(http, &self.server.url, credential, PER_REQUEST).await,
            Transport::Sse => {
                super::legacy::probe(http, &self.server.url, credential, PER_REQUEST).await
            }
        }
    }

    /// `Some(NeedsSignIn)` when the anonymous challenge now names an AS other than the one it
    /// named at this sign-in's first healthy check (which records it, when `may_record`).
    async fn authorization_server_changed(&mut self, may_record: bool) -> Option<HealthState> {
        // The upstream's own discovery: an anonymous request, its challenge, then the PRM.
        let d = self.deps.upstream.discover(&self.server).await;
        let now = match (&d.bearer, &d.prm) {
            (Some(_), Some(prm)) if !prm.authorization_servers.is_empty() => {
                prm.authorization_servers.clone()
            }
            // No challenge or no metadata: nothing to compare (the probe itself succeeded).
            _ => return None,
        };
        let Some(before) = &self.baseline_issuers else {
            if may_record {
                self.baseline_issuers = Some(now);
            }
            return None;
        };
        if now.iter().any(|a| before.iter().any(|b| same_issuer(a, b))) {
            return None;
        }
        Some(HealthState::NeedsSignIn {
            reason: format!(
                "the server now sends sign-ins to {} instead of {}; sign in again",
                now.join(", "),
                before.join(", ")
            ),
        })
    }
}

/// A delegate server's probe (configured literal headers only, never a client's credential)
/// was asked to sign in: it is up, and its sign-in is each client's own business.
fn delegated() -> HealthState {
    HealthState::Delegated {
        detail: "delegated: the upstream answers and asks for sign-in; each local client signs in to the upstream itself (the broker holds no token for it)".into(),
    }
}

fn healthy(ok: ProbeOk) -> HealthState {
    HealthState::Healthy {
        latency_ms: ok.latency.as_millis().try_into().unwrap_or(u64::MAX),
        tools: ok.tools,
        era: ok.era,
        protocol_version: ok.protocol_version,
    }
}

fn from_probe_error(e: ProbeError) -> HealthState {
    match e {
        ProbeError::Rejected { detail, .. } => HealthState::AuthRejected { detail },
        ProbeError::Unreachable(cause) => HealthState::Unreachable { cause },
        ProbeError::Protocol(detail) => HealthState::ProtocolError { detail },
    }
}

/// The state for a credential the upstream side could not provide.
fn from_upstream_error(e: UpstreamError) -> HealthState {
    match e {
        UpstreamError::NeedsSignIn { reason, .. } => HealthState::NeedsSignIn { reason },
        UpstreamError::NeedsCompanySignIn {
            company, reason, ..
        } => HealthState::NeedsSignIn {
            reason: format!("{} ({reason}): sign in to {company} from the tray menu or run `mcp-auth-broker login --enterprise`", super::NEEDS_COMPANY_SIGN_IN),
        },
        e @ UpstreamError::Unreachable { .. } => HealthState::Unreachable {
            cause: e.to_string(),
        },
        e @ UpstreamError::Protocol { .. } => HealthState::ProtocolError {
            detail: e.to_string(),
        },
        e @ UpstreamError::AuthRejected { .. } => HealthState::AuthRejected {
            detail: e.to_string(),
        },
        e @ UpstreamError::Vault {
            source:
                VaultError::Locked
                | VaultError::Unavailable(_)
                | VaultError::Other(_)
                | VaultError::StoreKey(_)
                | VaultError::StoreFile(_),
            ..
        } => HealthState::KeychainUnavailable {
            locked: matches!(
                e,
                UpstreamError::Vault {
                    source: VaultError::Locked,
                    ..
                }
            ),
            detail: e.to_string(),
        },
        e @ (UpstreamError::Vault {
            source:
                VaultError::MissingEnv(_) | VaultError::MissingEntry(_) | VaultError::TooLarge(..),
            ..
        }
        | UpstreamError::Setup { .. }) => HealthState::NeedsSetup {
            detail: e.to_string(),
        },
    }
}
