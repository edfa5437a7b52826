//! Plain data the dashboard receives and sends. Nothing here can hold a token value: outgoing
//! DTOs are built from config, status and token *facts*; incoming secrets are
//! [`crate::secret::Secret`]s at once (the edit form, `form.rs`).

use serde::Serialize;

pub use super::form::{apply_form, FormSecret, PendingSecret, ServerForm, ServerFormView};
use super::model::{aggregate_menu, can_sign_in, sign_in_label, snippets, Snippets};
use crate::config::{Config, ServerConfig};
use crate::health::{HealthState, ServerStatus, StatusMap};
use crate::issuer::{ApiKeyInfo, ClientInfo};
use crate::upstream::classify::DEVICE_FLOW;
use crate::upstream::timeline::Step;
use crate::upstream::DeviceCode;
use crate::words::{self, Problem};

/// The aggregate endpoint `/mcp` in the client-setup view: what the tray's submenu says, and
/// its snippets.
#[derive(Debug, Clone, Serialize)]
pub struct AggregateDto {
    pub label: String,
    pub unusable: Vec<String>,
    pub snippets: Snippets,
}

/// `None` when no server is aggregated.
pub fn aggregate_dto(
    config: &Config,
    status: &StatusMap,
    client_url: &str,
) -> Option<AggregateDto> {
    let menu = aggregate_menu(config, status)?;
    Some(AggregateDto {
        label: menu.label,
        unusable: menu.unusable,
        snippets: snippets("mcp-auth-broker", client_url),
    })
}

/// One row of the servers table.
#[derive(Debug, Clone, Serialize)]
pub struct ServerDto {
    pub name: String,
    /// The upstream MCP endpoint.
    pub url: String,
    /// What local clients are given.
    pub client_url: String,
    pub enabled: bool,
    /// The flow as people say it ("Browser sign-in").
    pub flow: String,
    /// The protocol's term for it, shown as its detail.
    pub flow_term: String,
    pub flow_evidence: Vec<String>,
    /// The state label ("healthy", "needs sign-in", ...).
    pub state: String,
    /// Why, when the state is not healthy.
    pub detail: Option<String>,
    pub latency_ms: Option<u64>,
    pub tools: Option<usize>,
    /// "modern" or "legacy", once the server answered a probe.
    pub era: Option<String>,
    pub protocol_version: Option<String>,
    /// "MCP 2026-07-28 (modern)" / "MCP 2025-11-25": the era and version as the person reads them.
    pub protocol: Option<String>,
    pub checked_at: Option<u64>,
    pub has_token: bool,
    pub token_expires_at: Option<u64>,
    /// Scopes the server asked for that the sign-in did not grant: sign in again.
    pub needs_scope: Option<String>,
    pub last_error: Option<String>,
    /// What is wrong and what to do, the raw cause as `details` (summary, action, sentence).
    pub problem: Option<Problem>,
    pub can_sign_in: bool,
    /// "Sign in", or "Grant more permissions" after a scope challenge.
    pub sign_in_label: String,
    /// `delegate_auth_to_upstream`: each client signs in to the upstream itself.
    pub delegated: bool,
    pub snippets: Snippets,
    /// The server's auth timeline since the broker started (times, kinds, details; no secret).
    pub timeline: Vec<Step>,
    /// Its authorization server offers device sign-in (a code confirmed on any device).
    pub device_flow: bool,
    /// The device sign-in running now: the code and where to confirm it.
    pub device_sign_in: Option<DeviceCode>,
    /// The company whose sign-in this server's tokens come from ("via Acme").
    pub via: Option<String>,
    /// Authenticates with `private_key_jwt`: the details offer its public key to copy.
    pub key_client: bool,
}

pub fn server_dto(
    server: &ServerConfig,
    status: Option<&ServerStatus>,
    client_url: String,
) -> ServerDto {
    let unknown = ServerStatus::unknown();
    let st = status.unwrap_or(&unknown);
    let flow = words::server_flow(server, st.flow.as_ref());
    let (latency_ms, tools, era, protocol_version) = healthy_figures(&st.state);
    let detail = state_detail(&st.state);
    let last_error = last_error(st, &detail);
    ServerDto {
        name: server.name.to_string(),
        url: server.url.to_string(),
        snippets: snippets(server.name.as_str(), &client_url),
        client_url,
        enabled: server.enabled,
        flow: flow.name.to_string(),
        flow_term: flow.term,
        flow_evidence: st
            .flow
            .as_ref()
            .map(|c| c.evidence.clone())
            .unwrap_or_default(),
        state: st.state.label().to_string(),
        detail,
        latency_ms,
        tools,
        era,
        protocol_version,
        protocol: st.state.protocol(),
        checked_at: st.checked_at,
        has_token: st.token.has_token,
        token_expires_at: st.token.expires_at,
        needs_scope: st.token.needs_scope.clone(),
        last_error,
        problem: words::explain_status(st),
        can_sign_in: can_sign_in(server, status),
        sign_in_label: sign_in_label(status).to_string(),
        delegated: server.delegate_auth_to_upstream,
        timeline: Vec::new(),
        device_flow: st
            .flow
            .as_ref()
            .is_some_and(|c| c.evidence.iter().any(|e| e == DEVICE_FLOW)),
        device_sign_in: None,
        via: server.enterprise.as_ref().map(|e| e.name.clone()),
        key_client: crate::upstream::assertion::uses_key(server),
    }
}

/// Latency, tool count, era and protocol version of a healthy server (none otherwise).
fn healthy_figures(
    state: &HealthState,
) -> (Option<u64>, Option<usize>, Option<String>, Option<String>) {
    match state {
        HealthState::Healthy {
            latency_ms,
            tools,
            era,
            protocol_version,
        } => (
            Some(*latency_ms),
            Some(*tools),
            Some(era.as_str().to_string()),
            Some(protocol_version.clone()),
        ),
        _ => (None, None, None, None),
    }
}

/// The state's own words (why it needs sign-in, what was refused, the unreachable cause).
fn state_detail(state: &HealthState) -> Option<String> {
    match state {
        HealthState::NeedsSignIn { reason } => Some(reason.clone()),
        HealthState::AuthRejected { detail }
        | HealthState::KeychainUnavailable { detail, .. }
        | HealthState::NeedsSetup { detail }
        | HealthState::ProtocolError { detail } => Some(detail.clone()),
        HealthState::Unreachable { cause } => Some(cause.clone()),
        HealthState::Delegated { detail } => Some(detail.clone()),
        HealthState::Unknown
        | HealthState::Checking
        | HealthState::Healthy { .. }
        | HealthState::Disabled => None,
    }
}

/// The last error to show: the failing state's detail, else a failed refresh's.
fn last_error(st: &ServerStatus, detail: &Option<String>) -> Option<String> {
    match &st.state {
        HealthState::AuthRejected { .. }
        | HealthState::KeychainUnavailable { .. }
        | HealthState::NeedsSetup { .. }
        | HealthState::ProtocolError { .. }
        | HealthState::Unreachable { .. } => detail.clone(),
        _ => st
            .token
            .last_refresh
            .as_ref()
            .filter(|r| !r.ok)
            .and_then(|r| r.detail.clone()),
    }
}

/// One line of the activity view.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ActivityDto {
    /// Unix seconds.
    pub at: u64,
    pub kind: String,
    pub server: Option<String>,
    pub message: String,
    /// How many times in a row this happened (a burst shows as one line).
    pub repeats: u32,
}

/// The app as a whole, for the dashboard header.
#[derive(Debug, Clone, Serialize)]
pub struct AppStatusDto {
    /// `None` when the core runs; else why it could not start (the window says so, then exits).
    pub start_error: Option<String>,
    pub base_url: Option<String>,
    pub config_path: Option<String>,
    /// The config file's problem, sent in the person's words (`crate::words::config_problem`).
    #[serde(serialize_with = "config_problem_words")]
    pub config_problem: Option<String>,
    /// Which store holds the upstream tokens ("the OS keychain", "an encrypted file store in …").
    pub token_store: Option<String>,
    /// Shown when no tray host was found (Linux).
    pub tray_hint: Option<String>,
    pub autostart: bool,
}

fn config_problem_words<S: serde::Serializer>(
    text: &Option<String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    text.as_deref().map(words::config_problem).serialize(s)
}

/// A flow probe's result, shown before saving.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeDto {
    pub flow: String,
    pub evidence: Vec<String>,
    pub choices: Vec<String>,
}

/// A registered local OAuth client or API key (never its secret or token).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LocalClientDto {
    pub id: String,
    pub name: String,
    /// "oauth" or "api_key".
    pub kind: String,
    pub servers: Vec<String>,
    pub created_at: u64,
    pub last_used: Option<u64>,
}

pub fn local_clients(clients: Vec<ClientInfo>, keys: Vec<ApiKeyInfo>) -> Vec<LocalClientDto> {
    let oauth = clients.into_iter().map(|c| LocalClientDto {
        name: c.client_name.unwrap_or_else(|| {
            format!(
                "unnamed client ({})",
                c.redirect_uris
                    .first()
                    .map(String::as_str)
                    .unwrap_or("no redirect URI")
            )
        }),
        id: c.client_id,
        kind: "oauth".into(),
        servers: c.approved_servers,
        created_at: c.created_at,
        last_used: c.last_used,
    });
    let keys = keys.into_iter().map(|k| LocalClientDto {
        id: k.id,
        name: k.name,
        kind: "api_key".into(),
        servers: k
            .server
            .map(|s| vec![s])
            .unwrap_or_else(|| vec!["all servers".into()]),
        created_at: k.created_at,
        last_used: k.last_used,
    });
    oauth.chain(keys).collect()
}

#[cfg(test)]
#[path = "dto_tests.rs"]
mod tests;
