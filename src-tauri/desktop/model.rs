//! Pure view models: what the tray and the dashboard show, computed from config and status.
//! No tauri here, so every rule is unit-tested without a display.

use serde::Serialize;

use crate::config::{Config, OAuthFlow, ServerConfig};
use crate::health::{HealthState, ServerStatus, StatusMap};
use crate::upstream::enterprise::session::CompanySession;
use crate::upstream::{DeviceCode, Flow};
use crate::words;

/// The tray icon's look: one glance tells whether anything needs the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overall {
    Ok,
    /// Something needs the person (sign in, choose a flow) but nothing is broken.
    Attention,
    /// A server is unreachable, rejects its credential or speaks a broken protocol.
    Error,
}

impl Overall {
    pub fn tooltip(self) -> &'static str {
        match self {
            Overall::Ok => "MCP Auth Broker — all servers fine",
            Overall::Attention => "MCP Auth Broker — a server needs you (sign in or unlock)",
            Overall::Error => "MCP Auth Broker — a server has an error",
        }
    }
}

/// Errors win over attention; disabled servers count for nothing.
pub fn overall(status: &StatusMap) -> Overall {
    let mut result = Overall::Ok;
    for s in status.values() {
        match &s.state {
            HealthState::Unreachable { .. }
            | HealthState::AuthRejected { .. }
            | HealthState::NeedsSetup { .. }
            | HealthState::ProtocolError { .. } => return Overall::Error,
            HealthState::NeedsSignIn { .. } | HealthState::KeychainUnavailable { .. } => {
                result = Overall::Attention
            }
            HealthState::Healthy { .. }
            | HealthState::Delegated { .. }
            | HealthState::Unknown
            | HealthState::Checking
            | HealthState::Disabled => {}
        }
        if s.flow.as_ref().is_some_and(|c| c.flow.is_none()) {
            result = Overall::Attention;
        }
    }
    result
}

/// The flow a server uses as the person reads it ("Browser sign-in"): the classification when
/// there is one, else what the config states explicitly ([`crate::words`] has the names).
pub fn flow_label(server: &ServerConfig, status: Option<&ServerStatus>) -> String {
    words::server_flow(server, status.and_then(|s| s.flow.as_ref()))
        .name
        .to_string()
}

pub fn flow_name(flow: Flow) -> &'static str {
    words::flow(flow).name
}

/// The sign-in action's words: after a 403 `insufficient_scope` the same sign-in (it asks for
/// the union of held and challenged scopes, `upstream::stepup`) grants more permissions.
pub fn sign_in_label(status: Option<&ServerStatus>) -> &'static str {
    if status.is_some_and(|s| s.token.needs_scope.is_some()) {
        "Grant more permissions"
    } else {
        "Sign in"
    }
}

/// Sign-in makes sense only for the interactive flow (or a server not yet classified that the
/// config marks as OAuth).
pub fn can_sign_in(server: &ServerConfig, status: Option<&ServerStatus>) -> bool {
    match status.and_then(|s| s.flow.as_ref()).and_then(|c| c.flow) {
        Some(flow) => flow == Flow::AuthorizationCode,
        None => {
            !matches!(
                server.oauth_flow,
                Some(OAuthFlow::ClientCredentials | OAuthFlow::Enterprise | OAuthFlow::JwtBearer)
            ) && !server.delegate_auth_to_upstream
        }
    }
}

/// One server's tray submenu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMenu {
    pub name: String,
    /// "github — healthy · authorization_code"
    pub label: String,
    /// "MCP 2026-07-28 (modern)" / "MCP 2025-11-25" once the server answered a probe: the first
    /// (disabled) line of its submenu.
    pub protocol: Option<String>,
    pub can_sign_in: bool,
    /// "Sign in", or "Grant more permissions" after a scope challenge ([`sign_in_label`]).
    pub sign_in_label: &'static str,
    pub can_sign_out: bool,
    /// A running device sign-in: "Confirm code ABCD-EFGH at https://…" (see [`device_line`]).
    pub device: Option<String>,
}

/// The tray's line for a running device sign-in: the code and where to confirm it.
pub fn device_line(code: &DeviceCode) -> String {
    format!(
        "Confirm code {} at {}",
        code.user_code, code.verification_uri
    )
}

/// The aggregate endpoint's tray submenu: how many servers `/mcp` can use, and why not the rest
/// (what its clients are told in notices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateMenu {
    /// "All servers (/mcp) — 1 of 2 usable"
    pub label: String,
    /// "github: needs sign-in (…)", one per server `/mcp` cannot use right now.
    pub unusable: Vec<String>,
}

/// The whole tray menu, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayModel {
    pub overall: Overall,
    pub servers: Vec<ServerMenu>,
    /// `None` when no server is aggregated.
    pub aggregate: Option<AggregateMenu>,
    pub autostart: bool,
    /// "Sign in to Acme" / "Signed in to Acme — sign in again" when the config names a company
    /// identity provider ([`company_line`]).
    pub company: Option<String>,
}

pub fn tray_model(config: &Config, status: &StatusMap, autostart: bool) -> TrayModel {
    let servers = config
        .servers
        .values()
        .map(|server| {
            let st = status.get(server.name.as_str());
            // What is wrong in the person's words (the summary), else the state's label.
            let state = match st.and_then(words::explain_status) {
                Some(p) => p.summary,
                None => st.map(|s| s.state.label()).unwrap_or("unknown").into(),
            };
            ServerMenu {
                name: server.name.to_string(),
                label: format!("{} — {state} · {}", server.name, flow_label(server, st)),
                protocol: st.and_then(|s| s.state.protocol()),
                can_sign_in: can_sign_in(server, st),
                sign_in_label: sign_in_label(st),
                can_sign_out: st.is_some_and(|s| s.token.has_token) || can_sign_in(server, st),
                device: None,
            }
        })
        .collect();
    TrayModel {
        overall: overall(status),
        servers,
        aggregate: aggregate_menu(config, status),
        autostart,
        company: config
            .enterprise
            .as_ref()
            .map(|e| company_line(&e.name, None, 0)),
    }
}

/// The tray's company entry: the session's state and what a click does (it always signs in,
/// again if need be: another account, or a session the identity provider ended). `session` is
/// `None` until it is read from the vault; an ID token that expired without a way to renew it
/// is a session that ended.
pub fn company_line(name: &str, session: Option<&CompanySession>, now: u64) -> String {
    match session {
        Some(s) if s.signed_in && (s.renewable || s.expires_at.is_none_or(|at| at > now)) => {
            format!("Signed in to {name} — sign in again")
        }
        Some(s) if s.signed_in => format!("Sign in to {name} (the session ended)"),
        _ => format!("Sign in to {name}"),
    }
}

pub fn aggregate_menu(config: &Config, status: &StatusMap) -> Option<AggregateMenu> {
    let usability = crate::aggregate::usability(config, status);
    if usability.is_empty() {
        return None;
    }
    let unusable: Vec<String> = usability
        .iter()
        .filter_map(|(name, u)| u.as_ref().err().map(|why| format!("{name}: {why}")))
        .collect();
    let total = usability.len();
    let label = match unusable.len() {
        0 => format!("All servers (/mcp) — all {total} usable"),
        n => format!("All servers (/mcp) — {} of {total} usable", total - n),
    };
    Some(AggregateMenu { label, unusable })
}

/// What a tray menu item does. Ids are `srv:<action>:<server>` or a fixed word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuAction {
    SignIn(String),
    SignOut(String),
    CheckNow(String),
    Copy(String, SnippetKind),
    /// The company sign-in (every `oauth_flow: "enterprise"` server at once).
    SignInCompany,
    OpenDashboard,
    ToggleAutostart,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnippetKind {
    Url,
    Claude,
    Cursor,
    Vscode,
}

impl SnippetKind {
    const ALL: [(SnippetKind, &'static str); 4] = [
        (SnippetKind::Url, "url"),
        (SnippetKind::Claude, "claude"),
        (SnippetKind::Cursor, "cursor"),
        (SnippetKind::Vscode, "vscode"),
    ];

    fn word(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, w)| *w)
            .expect("every kind has a word")
    }
}

impl MenuAction {
    pub fn id(&self) -> String {
        match self {
            MenuAction::SignIn(s) => format!("srv:signin:{s}"),
            MenuAction::SignOut(s) => format!("srv:signout:{s}"),
            MenuAction::CheckNow(s) => format!("srv:check:{s}"),
            MenuAction::Copy(s, kind) => format!("srv:copy-{}:{s}", kind.word()),
            MenuAction::SignInCompany => "company:signin".into(),
            MenuAction::OpenDashboard => "open".into(),
            MenuAction::ToggleAutostart => "autostart".into(),
            MenuAction::Quit => "quit".into(),
        }
    }

    pub fn parse(id: &str) -> Option<MenuAction> {
        match id {
            "open" => return Some(MenuAction::OpenDashboard),
            "autostart" => return Some(MenuAction::ToggleAutostart),
            "quit" => return Some(MenuAction::Quit),
            "company:signin" => return Some(MenuAction::SignInCompany),
            _ => {}
        }
        let rest = id.strip_prefix("srv:")?;
        let (action, server) = rest.split_once(':')?;
        let server = server.to_string();
        match action {
            "signin" => Some(MenuAction::SignIn(server)),
            "signout" => Some(MenuAction::SignOut(server)),
            "check" => Some(MenuAction::CheckNow(server)),
            _ => {
                let word = action.strip_prefix("copy-")?;
                let kind = SnippetKind::ALL.iter().find(|(_, w)| *w == word)?.0;
                Some(MenuAction::Copy(server, kind))
            }
        }
    }
}

/// Copyable client setup for one server. `url` is the broker's local URL, never the upstream's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snippets {
    pub url: String,
    pub claude: String,
    pub cursor: String,
    pub vscode: String,
}

/// Built by the shared [`crate::snippets`] module, so the CLI and the app hand out the same text.
pub fn snippets(name: &str, client_url: &str) -> Snippets {
    use crate::snippets::{snippet, ClientKind};
    Snippets {
        url: client_url.to_string(),
        claude: snippet(ClientKind::Claude, name, client_url),
        cursor: snippet(ClientKind::Cursor, name, client_url),
        vscode: snippet(ClientKind::VsCode, name, client_url),
    }
}

impl Snippets {
    pub fn get(&self, kind: SnippetKind) -> &str {
        match kind {
            SnippetKind::Url => &self.url,
            SnippetKind::Claude => &self.claude,
            SnippetKind::Cursor => &self.cursor,
            SnippetKind::Vscode => &self.vscode,
        }
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
