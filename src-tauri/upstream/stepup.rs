//! Step-up after an upstream's 403 `insufficient_scope` (MCP 2025-11-25 scope challenges;
//! 2026-07-28 SEP-2350).
//!
//! The scopes a server's challenge names are remembered per server for the life of the process,
//! together with the scopes the current token was granted when the challenge came, and added to
//! every later token request for that server: a re-authorization asks for the union of what was
//! held and what is now required, so permissions only grow and no tool loses the scope another
//! tool needed.
//! - client credentials: the next token is fetched at once with the wider scope (its cache key
//!   includes it) and the caller retries once;
//! - authorization code: only the person can grant more. The caller gets `NeedsSignIn` (and the
//!   desktop its once-per-change notification) saying which scope; the next sign-in, from any
//!   entry point, asks for the usual scope plus the remembered ones. A challenge for scopes the
//!   token already has gets at most [`MAX_REPEATED_SIGN_INS`] such sign-ins since the held
//!   scopes last grew, then its 403 passes on (the spec's retry limit: a server whose challenge
//!   no sign-in satisfies must not loop the person through the browser);
//! - anything else (static token, none, delegate), or a client-credentials challenge for scopes
//!   already asked for: the 403 passes to the client as it came.

use http::header::WWW_AUTHENTICATE;
use http::HeaderMap;

use super::timeline::StepKind;
use super::{classify, tokens, wwwauth, Flow, Upstream, UpstreamError};
use crate::config::{ServerConfig, ServerName};
use crate::sync::lock;

/// Sign-ins asked for, for a challenge the token already satisfies on paper, before the broker
/// treats that challenge as permanent.
pub const MAX_REPEATED_SIGN_INS: u32 = 1;

/// What the broker keeps of one server's scope challenges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// Added to every later token request: the challenged scopes and those granted with them.
    pub scope: Option<String>,
    /// Sign-ins started (with `scope`) since it last grew.
    pub sign_ins: u32,
}

/// What one challenge means, given what is held and what the token was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    /// It named a scope neither held nor granted before.
    pub grew: bool,
    /// The token lacks some of the scopes it names: a sign-in can fix it.
    pub lacking: bool,
    /// It asks again for what the token has, after the sign-ins allowed for that.
    pub exhausted: bool,
}

/// Records a challenge for `asked` when the token was `granted` (pure).
pub fn challenge(held: &mut Held, granted: Option<&str>, asked: Option<&str>) -> Challenge {
    let before = widen(held.scope.as_deref(), granted);
    let wider = widen(before.as_deref(), asked);
    let grew = wider != before;
    held.scope = wider;
    if grew {
        held.sign_ins = 0;
    }
    let lacking = lacking(asked, granted).is_some();
    Challenge {
        grew,
        lacking,
        exhausted: !lacking && held.sign_ins >= MAX_REPEATED_SIGN_INS,
    }
}

/// The scope of a sign-in: the usual one, `offline_access` when the authorization server lists
/// it (SEP-2207: a refresh token is wanted), and what step-ups hold.
pub fn sign_in_scope(
    usual: Option<&str>,
    as_scopes: Option<&[String]>,
    held: Option<&str>,
) -> Option<String> {
    let offline = as_scopes
        .is_some_and(|s| s.iter().any(|x| x == "offline_access"))
        .then_some("offline_access");
    widen(widen(usual, offline).as_deref(), held)
}

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
        lock(&self.state(server).step_up).scope.clone()
    }

    /// [`Upstream::stepped_up`] for a sign-in about to start, which counts as one more try of
    /// the held scopes.
    pub(super) fn stepped_up_for_sign_in(&self, server: &ServerName) -> Option<String> {
        let state = self.state(server);
        let mut held = lock(&state.step_up);
        if held.scope.is_some() {
            held.sign_ins += 1;
        }
        held.scope.clone()
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
        let configured = classify::from_config(server).and_then(|c| c.flow);
        // The sign-in's token (none for client credentials, whose tokens are not stored).
        let stored = match configured {
            Some(Flow::AuthorizationCode) | None => {
                tokens::load(&self.inner.deps.vault, name.as_str())
                    .await
                    .ok()
                    .flatten()
            }
            _ => None,
        };
        // Nothing configured: an earlier sign-in makes it an authorization-code server.
        let flow = configured.or(stored.as_ref().map(|_| Flow::AuthorizationCode));
        let granted = stored.as_ref().and_then(|s| s.meta.scope.clone());
        let asked = info.scope.as_deref();
        let detail = format!(
            "HTTP 403 insufficient_scope, asking for scope \"{}\"",
            asked.unwrap_or("(none named)")
        );
        self.note(name, StepKind::ScopeChallenge, false, &detail);
        let seen = {
            let state = self.state(name);
            let mut held = lock(&state.step_up);
            challenge(&mut held, granted.as_deref(), asked)
        };
        match flow {
            Some(Flow::ClientCredentials) if seen.grew => {
                tracing::info!(server = %name, scope = asked, "step-up: fetching a client-credentials token with the wider scope");
                Forbidden::Retry
            }
            Some(Flow::AuthorizationCode) if seen.exhausted => {
                let why = format!("the token already has the scope the server asks for and {MAX_REPEATED_SIGN_INS} more sign-in did not satisfy it; the 403 is passed on");
                self.note(name, StepKind::ScopeChallenge, false, &why);
                Forbidden::PassOn
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
    fn a_challenge_holds_the_union_of_granted_and_asked_scopes() {
        let mut held = Held::default();
        let c = challenge(&mut held, Some("mcp:basic"), Some("mcp:write"));
        assert!(c.grew && c.lacking && !c.exhausted);
        assert_eq!(held.scope.as_deref(), Some("mcp:basic mcp:write"));
        let again = challenge(&mut held, Some("mcp:basic"), Some("mcp:write"));
        assert!(
            !again.grew && again.lacking && !again.exhausted,
            "a repeat of a lacking scope still asks the person"
        );
    }

    #[test]
    fn a_challenge_the_token_already_satisfies_gets_one_more_sign_in_then_passes_on() {
        let mut held = Held::default();
        let first = challenge(&mut held, Some("mcp:admin"), Some("mcp:admin"));
        assert!(!first.grew && !first.lacking && !first.exhausted);
        held.sign_ins += 1; // the sign-in it asked for
        let second = challenge(&mut held, Some("mcp:admin"), Some("mcp:admin"));
        assert!(second.exhausted);
        let other = challenge(&mut held, Some("mcp:admin"), Some("mcp:other"));
        assert!(other.grew && other.lacking && !other.exhausted);
        assert_eq!(held.sign_ins, 0, "a new scope starts the count again");
    }

    #[test]
    fn a_sign_in_adds_offline_access_only_when_the_authorization_server_lists_it() {
        let listed = vec!["mcp:basic".to_string(), "offline_access".to_string()];
        assert_eq!(
            sign_in_scope(Some("mcp:basic"), Some(&listed), Some("mcp:write")),
            Some("mcp:basic offline_access mcp:write".into())
        );
        let unlisted = vec!["mcp:basic".to_string()];
        assert_eq!(
            sign_in_scope(Some("mcp:basic"), Some(&unlisted), None),
            Some("mcp:basic".into())
        );
        assert_eq!(sign_in_scope(None, None, None), None);
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
