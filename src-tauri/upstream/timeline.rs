//! Each server's auth timeline since the broker started: discovery, client registration, sign-in,
//! tokens, refreshes, the upstream's rejections and scope challenges, sign-out. It is the chain a
//! person reads to see why a server works or not (dashboard, `status NAME`, `/api/status`).
//!
//! Steps hold a time, a kind and a plain-language detail built from URLs, registration methods
//! and error text, which never carries a token, secret or code. A step that repeats the one before
//! it only moves its time and counts the repeat, so a burst of 401s is one line. The bookkeeping
//! is pure (time is a parameter); [`Upstream::note`] stamps it.

use std::collections::VecDeque;

use super::discovery::Discovery;
use super::hints::readable;
use super::registration::{Method, Registration};
use super::{now, Upstream};
use crate::config::ServerName;
use crate::events::Event;
use crate::sync::lock;

/// Steps kept per server (the oldest go first).
pub const MAX_STEPS: usize = 40;
/// Longest detail kept, in characters (room for a remote party's words and the fix).
const MAX_DETAIL: usize = 700;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Discovery,
    Registration,
    SignIn,
    /// A token fetched without the person (client credentials, workload identity, company
    /// sign-in), or not, or a fact about a token (DPoP-bound, its key); the detail says which.
    Token,
    Refresh,
    /// The upstream answered 401 to the broker's credential.
    Rejected,
    /// The upstream answered 403 `insufficient_scope`.
    ScopeChallenge,
    NeedsSignIn,
    SignOut,
    /// The protected resource named another authorization server than the last sign-in's.
    AuthorizationServerChanged,
}

impl StepKind {
    pub fn label(self) -> &'static str {
        match self {
            StepKind::Discovery => "discovery",
            StepKind::Registration => "client registration",
            StepKind::SignIn => "sign-in",
            StepKind::Token => "token",
            StepKind::Refresh => "refresh",
            StepKind::Rejected => "upstream answered 401",
            StepKind::ScopeChallenge => "scope challenge (403)",
            StepKind::NeedsSignIn => "needs sign-in",
            StepKind::SignOut => "sign-out",
            StepKind::AuthorizationServerChanged => "authorization server changed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// Unix seconds of the latest occurrence.
    pub at: u64,
    pub kind: StepKind,
    /// `kind` in words ([`StepKind::label`]).
    pub label: &'static str,
    pub ok: bool,
    pub detail: String,
    /// How many times the same step happened again right after the first.
    pub repeats: u32,
}

#[derive(Debug, Default)]
pub struct Timeline {
    steps: VecDeque<Step>,
}

impl Timeline {
    pub fn record(&mut self, at: u64, kind: StepKind, ok: bool, detail: &str) {
        // Defence in depth: error text from remote parties goes through the log redactor too.
        let detail = readable(&crate::logging::redact(detail), MAX_DETAIL);
        if let Some(last) = self.steps.back_mut() {
            if (last.kind, last.ok, &last.detail) == (kind, ok, &detail) {
                last.at = at;
                last.repeats += 1;
                return;
            }
        }
        self.steps.push_back(Step {
            at,
            kind,
            label: kind.label(),
            ok,
            detail,
            repeats: 0,
        });
        while self.steps.len() > MAX_STEPS {
            self.steps.pop_front();
        }
    }

    /// Oldest first.
    pub fn steps(&self) -> Vec<Step> {
        self.steps.iter().cloned().collect()
    }

    /// Why the latest sign-in failed, unless a sign-in has worked or started since.
    pub fn failed_sign_in(&self) -> Option<&str> {
        self.steps
            .iter()
            .rev()
            .find(|s| matches!(s.kind, StepKind::SignIn | StepKind::SignOut))
            .filter(|s| s.kind == StepKind::SignIn && !s.ok)
            .map(|s| s.detail.as_str())
    }
}

/// Why a server without tokens needs sign-in: its latest sign-in's failure (which names the fix
/// when one is known) when there was one, so the status line never says only "not signed in
/// yet" while the timeline holds the reason.
pub fn not_signed_in_reason(failed: Option<&str>) -> String {
    match failed {
        Some(why) => format!("the last sign-in failed: {why}"),
        None => "not signed in yet".into(),
    }
}

/// What a discovery found, as `(ok, detail)`.
pub fn discovery_step(d: &Discovery) -> (bool, String) {
    if let Some(cause) = &d.unreachable {
        return (false, format!("unreachable: {cause}"));
    }
    match (&d.metadata, &d.bearer, d.probe_status) {
        (Some(m), _, _) => {
            let via = if d.prm.is_some() {
                "named by the server's protected resource metadata"
            } else {
                "found on the server's origin"
            };
            (true, format!("authorization server {} ({via})", m.issuer))
        }
        (None, _, _) if d.legacy_defaults => (
            true,
            "no OAuth metadata anywhere: the sign-in endpoints are guessed from the server's origin (the 2025-03-26 defaults /authorize, /token, /register); if they are wrong, set \"authorization_url\" and \"token_url\" for this server".into(),
        ),
        (None, None, Some(status)) => (
            true,
            format!("the server answered HTTP {status} without asking for sign-in"),
        ),
        (None, _, _) => (
            false,
            format!(
                "no authorization server metadata found ({})",
                d.notes.join("; ")
            ),
        ),
    }
}

/// How the client for a sign-in was obtained (never its id's secret, nor a DCR client's id).
pub fn registration_step(reg: &Registration) -> String {
    match reg.method {
        Method::Preregistered => {
            format!("pre-registered client from the config, at {}", reg.issuer)
        }
        Method::Cimd => format!("client ID metadata document {}", reg.client_id),
        Method::Dcr => format!("dynamically registered client (RFC 7591) at {}", reg.issuer),
    }
}

/// The step an upstream event stands for: `(server, kind, ok, detail)`.
pub fn event_step(event: &Event) -> Option<(&ServerName, StepKind, bool, String)> {
    Some(match event {
        Event::SignInStarted { server } => (
            server,
            StepKind::SignIn,
            true,
            "started: the browser was sent to the authorization server".into(),
        ),
        Event::SignInFinished { server } => (
            server,
            StepKind::SignIn,
            true,
            "signed in; the tokens are in the OS keychain".into(),
        ),
        Event::SignInFailed { server, reason } => (server, StepKind::SignIn, false, reason.clone()),
        Event::SignedOut { server } => (
            server,
            StepKind::SignOut,
            true,
            "signed out; the tokens were deleted".into(),
        ),
        Event::TokenRefreshed { server } => {
            (server, StepKind::Refresh, true, "token refreshed".into())
        }
        Event::RefreshFailed { server, reason } => {
            (server, StepKind::Refresh, false, reason.clone())
        }
        Event::NeedsSignIn { .. }
        | Event::ConfigReloaded
        | Event::ConfigRejected { .. }
        | Event::ClientAuthorized { .. } => return None,
    })
}

impl Upstream {
    /// `server`'s auth timeline since the broker started, oldest first.
    pub fn timeline(&self, server: &ServerName) -> Vec<Step> {
        lock(&self.state(server).timeline).steps()
    }

    /// The reason [`not_signed_in_reason`] gives for `server` now.
    pub(super) fn not_signed_in(&self, server: &ServerName) -> String {
        let state = self.state(server);
        let timeline = lock(&state.timeline);
        not_signed_in_reason(timeline.failed_sign_in())
    }

    pub(super) fn note(&self, server: &ServerName, kind: StepKind, ok: bool, detail: &str) {
        lock(&self.state(server).timeline).record(now(), kind, ok, detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_step_moves_its_time_and_counts_instead_of_adding_a_line() {
        let mut t = Timeline::default();
        t.record(10, StepKind::Rejected, false, "401");
        t.record(11, StepKind::Rejected, false, "401");
        t.record(12, StepKind::Rejected, false, "401");
        t.record(13, StepKind::Refresh, true, "token refreshed");
        t.record(14, StepKind::Rejected, false, "401");
        let steps = t.steps();
        assert_eq!(steps.len(), 3);
        assert_eq!((steps[0].at, steps[0].repeats), (12, 2));
        assert_eq!((steps[2].at, steps[2].repeats), (14, 0));
    }

    #[test]
    fn the_oldest_steps_go_first_and_details_are_bounded_single_lines() {
        let mut t = Timeline::default();
        for i in 0..(MAX_STEPS as u64 + 5) {
            t.record(i, StepKind::Discovery, true, &format!("step {i}"));
        }
        let steps = t.steps();
        assert_eq!(steps.len(), MAX_STEPS);
        assert_eq!(steps[0].detail, "step 5");
        t.record(
            99,
            StepKind::SignIn,
            false,
            &format!("a\nb{}", "x".repeat(1000)),
        );
        let last = t.steps().pop().unwrap();
        assert!(last.detail.starts_with("a b"), "a line break is a space");
        assert_eq!(last.detail.chars().count(), MAX_DETAIL);
        t.record(
            100,
            StepKind::Refresh,
            false,
            "the AS said: Bearer abc.def.ghi is bad",
        );
        let last = t.steps().pop().unwrap();
        assert!(!last.detail.contains("abc.def.ghi"), "{}", last.detail);
    }

    #[test]
    fn a_failed_sign_in_is_the_reason_until_a_sign_in_starts_works_or_is_undone() {
        let mut t = Timeline::default();
        assert_eq!(
            not_signed_in_reason(t.failed_sign_in()),
            "not signed in yet"
        );
        t.record(1, StepKind::SignIn, false, "invalid_target. Likely fix: x");
        t.record(2, StepKind::NeedsSignIn, false, "not signed in yet");
        assert_eq!(
            not_signed_in_reason(t.failed_sign_in()),
            "the last sign-in failed: invalid_target. Likely fix: x"
        );
        t.record(3, StepKind::SignIn, true, "started");
        assert_eq!(t.failed_sign_in(), None);
        t.record(4, StepKind::SignIn, false, "expired");
        t.record(5, StepKind::SignOut, true, "signed out");
        assert_eq!(t.failed_sign_in(), None);
    }

    #[test]
    fn only_events_about_one_servers_auth_become_steps() {
        let gh = ServerName::parse("gh").unwrap();
        let failed = Event::RefreshFailed {
            server: gh.clone(),
            reason: "invalid_grant".into(),
        };
        let (server, kind, ok, detail) = event_step(&failed).unwrap();
        assert_eq!(
            (server.as_str(), kind, ok, detail.as_str()),
            ("gh", StepKind::Refresh, false, "invalid_grant")
        );
        assert!(event_step(&Event::ConfigReloaded).is_none());
        assert!(event_step(&Event::NeedsSignIn { server: gh }).is_none());
    }
}
