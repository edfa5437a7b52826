//! Step-up after an upstream's 403 `insufficient_scope` (MCP 2025-11-25, scope challenges).
//!
//! The scopes a server's challenge names are remembered per server for the life of the process
//! and added to every later token request for that server, so its permissions only grow and no
//! tool loses the scope another tool needed:
//! - client credentials: the next token is fetched at once with the wider scope (its cache key
//!   includes it) and the caller retries once;
//! - authorization code: only the person can grant more. The caller gets `NeedsSignIn` (and the
//!   desktop its once-per-change notification) saying which scope; the next sign-in, from any
//!   entry point, asks for the usual scope plus the remembered one;
//! - anything else (static token, none, delegate), or a second refusal of the same scope: the
//!   403 passes to the client as it came.

use http::header::WWW_AUTHENTICATE;
use http::HeaderMap;

use super::timeline::StepKind;
use super::{classify, tokens, wwwauth, Flow, Upstream, UpstreamError};
use crate::config::{ServerConfig, ServerName};

/// What to do with an upstream 403.
#[derive(Debug)]
pub enum Forbidden {
    /// Not a scope challenge the broker can act on: pass the 403 on.
    PassOn,
    /// A client-credentials token with the wider scope is due: get a credential and retry once.
    Retry,
    /// A person must sign in again to grant the scope.
    SignIn(UpstreamError),
}

/// `extra`'s scopes added to `base`'s, in order, each once; `None` when both are empty.
pub fn widen(base: Option<&str>, extra: Option<&str>) -> Option<String> {
    let mut all: Vec<&str> = Vec::new();
    for s in base
        .into_iter()
        .chain(extra)
        .flat_map(str::split_whitespace)
    {
        if !all.contains(&s) {
            all.push(s);
        }
    }
    (!all.is_empty()).then(|| all.join(" "))
}

/// The scopes of `wanted` that `granted` lacks, if any.
pub fn lacking(wanted: Option<&str>, granted: Option<&str>) -> Option<String> {
    let granted: Vec<&str> = granted.unwrap_or("").split_whitespace().collect();
    let missing: Vec<&str> = wanted
        .unwrap_or("")
        .split_whitespace()
        .filter(|s| !granted.contains(s))
        .collect();
    (!missing.is_empty()).then(|| missing.join(" "))
}

impl Upstream {
    /// The scopes step-ups added for `server` so far.
    pub(super) fn stepped_up(&self, server: &ServerName) -> Option<String> {
        self.state(server)
            .step_up
            .lock()
            .expect("step_up lock")
            .clone()
    }

    /// Reacts to a 403 from `server`'s upstream with these response `headers` (see the module
    /// docs).
    pub async fn after_forbidden(&self, server: &ServerConfig, headers: &HeaderMap) -> Forbidden {
        let values = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let Some(info) = wwwauth::bearer_info(&wwwauth::parse(values)) else {
            return Forbidden::PassOn;
        };
        if info.error.as_deref() != Some("insufficient_scope") {
            return Forbidden::PassOn;
        }
        let name = &server.name;
        let flow = match classify::from_config(server).and_then(|c| c.flow) {
            Some(flow) => Some(flow),
            // Nothing configured: an earlier sign-in makes it an authorization-code server.
            None => tokens::load(&self.inner.deps.vault, name.as_str())
                .await
                .ok()
                .flatten()
                .map(|_| Flow::AuthorizationCode),
        };
        let asked = info.scope.as_deref();
        let detail = format!(
            "HTTP 403 insufficient_scope, asking for scope \"{}\"",
            asked.unwrap_or("(none named)")
        );
        self.note(name, StepKind::ScopeChallenge, false, &detail);
        let grew = {
            let state = self.state(name);
            let mut held = state.step_up.lock().expect("step_up lock");
            let wider = widen(held.as_deref(), asked);
            let grew = wider != *held;
            *held = wider;
            grew
        };
        match flow {
            Some(Flow::ClientCredentials) if grew => {
                tracing::info!(server = %name, scope = asked, "step-up: fetching a client-credentials token with the wider scope");
                Forbidden::Retry
            }
            Some(Flow::AuthorizationCode) => {
                let what = asked.map_or_else(
                    || "a permission it did not name".to_string(),
                    |s| format!("scope \"{s}\""),
                );
                Forbidden::SignIn(self.needs_sign_in(
                    name,
                    format!("the server needs {what}, which the current sign-in did not grant; sign in again (tray, dashboard or `mcp-auth-broker login {name}`) to grant it"),
                ))
            }
            _ => Forbidden::PassOn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_keeps_order_and_adds_each_scope_once() {
        assert_eq!(
            widen(Some("read write"), Some("write admin")),
            Some("read write admin".into())
        );
        assert_eq!(widen(None, Some(" admin ")), Some("admin".into()));
        assert_eq!(widen(Some("read"), None), Some("read".into()));
        assert_eq!(widen(None, None), None);
        assert_eq!(widen(Some(""), Some("  ")), None);
    }

    #[test]
    fn lacking_names_only_the_scopes_not_granted() {
        assert_eq!(
            lacking(Some("read admin"), Some("read")),
            Some("admin".into())
        );
        assert_eq!(lacking(Some("read admin"), Some("admin read x")), None);
        assert_eq!(lacking(Some("admin"), None), Some("admin".into()));
        assert_eq!(lacking(None, Some("read")), None);
    }
}
