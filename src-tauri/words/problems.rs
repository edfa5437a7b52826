//! Problems in a person's words: what happened and what to do in one sentence, the raw cause
//! kept as `details` (shown behind a toggle). Classified from what the broker already knows —
//! health states, upstream failures, vault errors, the config file's problem — never from a
//! second look at the server.

use serde::Serialize;

use crate::health::{
    HealthState, ServerStatus, NEEDS_COMPANY_SIGN_IN, REFUSED_CONFIGURED, REFUSED_FRESH_TOKEN,
};
use crate::upstream::http::{Cause, CauseKind};
use crate::upstream::UpstreamError;
use crate::vault::VaultError;

/// What kind of problem: stable for tests, styles and scripts (`/api/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    ConnectionRefused,
    DnsFailure,
    TlsFailure,
    Timeout,
    /// The server answered 5xx.
    ServerError,
    /// Unreachable for another reason.
    Unreachable,
    /// A 401 even with a token just refreshed (or fetched).
    RejectedAfterRefresh,
    /// The configured static key was refused.
    KeyRejected,
    AuthRejected,
    /// A 403 `insufficient_scope` the sign-in did not grant.
    NeedsScope,
    NeedsSignIn,
    /// Enterprise-managed authorization without a company session.
    NeedsCompanySignIn,
    /// A browser sign-in that came back refused, replayed, expired or malformed.
    SignInFailed,
    KeychainLocked,
    KeychainUnavailable,
    /// The encrypted file store's key or files.
    TokenStore,
    /// The entry cannot be used as configured (flow, variable, keychain entry).
    NeedsSetup,
    /// The config file does not validate (the last good one keeps running).
    ConfigError,
    ProtocolError,
}

/// A problem as the person reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// What happened ("The server refused the connection").
    pub summary: String,
    /// What to do ("check that it is running and that its address is right").
    pub action: String,
    /// Both as one sentence: "The server refused the connection — check that …."
    pub sentence: String,
    /// The raw cause, behind the "details" toggle (already free of secrets).
    pub details: String,
}

impl ProblemKind {
    /// (what happened, what to do) for this kind.
    fn words(self) -> (&'static str, &'static str) {
        use ProblemKind::*;
        match self {
            ConnectionRefused => ("The server refused the connection", "check that it is running and that its address is right, then check again"),
            DnsFailure => ("The server's name could not be found", "check its address for typos and that this computer is on the right network (VPN)"),
            TlsFailure => ("The secure connection to the server failed", "check that its address and certificate are right (a company proxy may need its certificate installed)"),
            Timeout => ("The server did not answer in time", "check your network, or try again later: the broker keeps checking"),
            ServerError => ("The server answered with an error of its own", "try again later, and tell its operator if it persists"),
            Unreachable => ("The server cannot be reached", "check your network and the server's address"),
            RejectedAfterRefresh => ("The server refused the sign-in even after renewing it", "sign in again; if that does not help, your account may lack access to this server"),
            KeyRejected => ("The server refused the configured key", "enter a valid key with Edit"),
            AuthRejected => ("The server refused the broker's credentials", "sign in again, or check the client ID and secret with Edit"),
            NeedsScope => ("The server needs more permissions than the sign-in granted", "choose Grant more permissions to sign in again with them"),
            NeedsSignIn => ("Not signed in to this server", "choose Sign in"),
            NeedsCompanySignIn => ("Not signed in to your company", "sign in to your company from the tray menu: one sign-in serves every server that uses it"),
            SignInFailed => ("The sign-in did not complete", "start it again from the MCP Auth Broker tray menu, or from the app that asked"),
            KeychainLocked => ("The keychain is locked", "unlock it (GNOME: Passwords and Keys; KDE: KWallet; macOS: Keychain Access), then check again — nothing was deleted"),
            KeychainUnavailable => ("The system keychain cannot be reached", "start and unlock GNOME Keyring or KWallet, or keep the tokens in an encrypted file (`--store file`, see the README) — nothing was deleted"),
            TokenStore => ("The encrypted token store cannot be opened", "do what the details say about its key or file — nothing was deleted"),
            NeedsSetup => ("This server is not completely set up", "finish it with Edit: the details say what is missing"),
            ConfigError => ("The config file has an error, so the last good version keeps running", "fix the file where the details say"),
            ProtocolError => ("The server did not answer as an MCP server does", "check that its address is the MCP endpoint (often ending in /mcp)"),
        }
    }

    /// A (new) sign-in is the fix: the consent page may still offer Allow, which signs in.
    pub fn signing_in_fixes(self) -> bool {
        use ProblemKind::*;
        matches!(
            self,
            NeedsSignIn
                | NeedsCompanySignIn
                | NeedsScope
                | SignInFailed
                | RejectedAfterRefresh
                | AuthRejected
        )
    }

    /// This kind with `details` as the raw cause.
    pub fn problem(self, details: impl Into<String>) -> Problem {
        let (summary, action) = self.words();
        Problem {
            kind: self,
            summary: summary.into(),
            action: action.into(),
            sentence: format!("{summary} — {action}."),
            details: details.into(),
        }
    }
}

/// Why a request got no answer: the kind the transport error carried ([`Cause`], from the
/// error's structure), else read from its words.
pub fn explain_cause(cause: &Cause) -> ProblemKind {
    match cause.kind {
        CauseKind::Refused => ProblemKind::ConnectionRefused,
        CauseKind::Dns => ProblemKind::DnsFailure,
        CauseKind::Tls => ProblemKind::TlsFailure,
        CauseKind::Timeout => ProblemKind::Timeout,
        CauseKind::Other => explain_transport(&cause.text),
    }
}

/// Why a request got no answer, from a cause that arrived as words only: the health probe's
/// (its MCP client reports text), a 5xx said as "answered HTTP 5…", or an older message.
pub fn explain_transport(cause: &str) -> ProblemKind {
    let c = cause.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| c.contains(w));
    if any(&[
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "no such host",
        "nodename nor servname",
        "name resolution",
    ]) {
        ProblemKind::DnsFailure
    } else if any(&["connection refused", "actively refused"]) {
        ProblemKind::ConnectionRefused
    } else if any(&[
        "certificate",
        "tls",
        "ssl",
        "handshake",
        "invalidcontenttype",
        "corrupt message",
    ]) {
        ProblemKind::TlsFailure
    } else if any(&[
        "timed out",
        "timeout",
        "no answer within",
        "did not finish within",
    ]) {
        ProblemKind::Timeout
    } else if any(&["answered http 5"]) {
        ProblemKind::ServerError
    } else {
        ProblemKind::Unreachable
    }
}

/// A refusal's detail: a scope challenge, a refused fresh token, a refused key, or other.
fn rejected(detail: &str) -> ProblemKind {
    if detail.contains("insufficient_scope") {
        ProblemKind::NeedsScope
    } else if detail.contains(REFUSED_FRESH_TOKEN) {
        ProblemKind::RejectedAfterRefresh
    } else if detail.contains(REFUSED_CONFIGURED) {
        ProblemKind::KeyRejected
    } else {
        ProblemKind::AuthRejected
    }
}

/// What a server's status asks of the person; `None` when nothing does (healthy, checking,
/// disabled, delegated).
pub fn explain_status(status: &ServerStatus) -> Option<Problem> {
    if let Some(scope) = &status.token.needs_scope {
        return Some(ProblemKind::NeedsScope.problem(format!(
            "the server asked for the scope \"{scope}\", which the sign-in did not grant"
        )));
    }
    explain_state(&status.state)
}

fn explain_state(state: &HealthState) -> Option<Problem> {
    let (kind, details) = match state {
        HealthState::NeedsSignIn { reason } if reason.starts_with(NEEDS_COMPANY_SIGN_IN) => {
            (ProblemKind::NeedsCompanySignIn, reason)
        }
        HealthState::NeedsSignIn { reason } => (ProblemKind::NeedsSignIn, reason),
        HealthState::AuthRejected { detail } => (rejected(detail), detail),
        HealthState::KeychainUnavailable { locked, detail } => (
            if *locked {
                ProblemKind::KeychainLocked
            } else {
                ProblemKind::KeychainUnavailable
            },
            detail,
        ),
        HealthState::NeedsSetup { detail } => (ProblemKind::NeedsSetup, detail),
        HealthState::Unreachable { cause } => (explain_transport(cause), cause),
        HealthState::ProtocolError { detail } => (ProblemKind::ProtocolError, detail),
        HealthState::Unknown
        | HealthState::Checking
        | HealthState::Healthy { .. }
        | HealthState::Delegated { .. }
        | HealthState::Disabled => return None,
    };
    Some(kind.problem(details.clone()))
}

/// A vault error's kind.
fn vault_kind(e: &VaultError) -> ProblemKind {
    match e {
        VaultError::Locked => ProblemKind::KeychainLocked,
        VaultError::Unavailable(_) | VaultError::Other(_) => ProblemKind::KeychainUnavailable,
        VaultError::StoreKey(_) | VaultError::StoreFile(_) => ProblemKind::TokenStore,
        VaultError::MissingEnv(_) | VaultError::MissingEntry(_) | VaultError::TooLarge(..) => {
            ProblemKind::NeedsSetup
        }
    }
}

pub fn explain_vault(e: &VaultError) -> Problem {
    vault_kind(e).problem(e.to_string())
}

/// An upstream failure (a sign-in that could not start, a credential that could not be had).
pub fn explain_upstream(e: &UpstreamError) -> Problem {
    let kind = match e {
        UpstreamError::NeedsSignIn { .. } => ProblemKind::NeedsSignIn,
        UpstreamError::NeedsCompanySignIn { .. } => ProblemKind::NeedsCompanySignIn,
        UpstreamError::Unreachable { cause, .. } => explain_cause(cause),
        UpstreamError::AuthRejected { detail, .. } => rejected(detail),
        UpstreamError::Protocol { .. } => ProblemKind::ProtocolError,
        UpstreamError::Vault { source, .. } => vault_kind(source),
        UpstreamError::Setup { .. } => ProblemKind::NeedsSetup,
    };
    kind.problem(e.to_string())
}

/// A browser sign-in's end (`/oauth/callback`): a refusal, a replayed or expired link, or a
/// malformed answer all mean "start again"; the network, keychain and setup keep their words.
pub fn explain_sign_in(e: &UpstreamError) -> Problem {
    match e {
        UpstreamError::NeedsSignIn { .. }
        | UpstreamError::NeedsCompanySignIn { .. }
        | UpstreamError::AuthRejected { .. }
        | UpstreamError::Protocol { .. } => ProblemKind::SignInFailed.problem(e.to_string()),
        _ => explain_upstream(e),
    }
}

/// The config file's problem (`Broker::subscribe_config_problem`).
pub fn config_problem(text: &str) -> Problem {
    ProblemKind::ConfigError.problem(text)
}
