//! The recent-activity list and the notification rules, both fed by broker events and status
//! changes. Pure: the caller passes the time and shows what comes out.

use std::collections::{BTreeSet, VecDeque};

use super::dto::ActivityDto;
use crate::events::Event;
use crate::health::{HealthState, StatusMap};
use crate::upstream::enterprise;

/// How many activity lines are kept (older ones drop off).
pub const ACTIVITY_CAP: usize = 200;

/// Recent activity, newest last. Events never carry secrets, so neither does this.
#[derive(Debug, Default)]
pub struct Activity {
    items: VecDeque<ActivityDto>,
}

impl Activity {
    pub fn record(&mut self, event: &Event, now: u64) {
        let (kind, server, message) = describe(event);
        if let Some(last) = self.items.back_mut() {
            if last.kind == kind && last.server == server && last.message == message {
                last.at = now;
                last.repeats += 1;
                return;
            }
        }
        if self.items.len() == ACTIVITY_CAP {
            self.items.pop_front();
        }
        self.items.push_back(ActivityDto {
            at: now,
            kind: kind.into(),
            server,
            message,
            repeats: 1,
        });
    }

    /// Newest first.
    pub fn list(&self) -> Vec<ActivityDto> {
        self.items.iter().rev().cloned().collect()
    }
}

/// How a server is named to the person: the company sign-in's stand-in entry is "your company".
fn shown(server: &str) -> String {
    match server {
        enterprise::SESSION => "your company".into(),
        other => other.to_string(),
    }
}

fn describe(event: &Event) -> (&'static str, Option<String>, String) {
    match event {
        Event::ConfigReloaded => ("config", None, "Config reloaded".into()),
        Event::ConfigRejected { reason } => (
            "config-error",
            None,
            format!("Config file rejected, the last good config keeps running: {reason}"),
        ),
        Event::SignInStarted { server } => (
            "sign-in",
            Some(shown(server.as_str())),
            "Sign-in started in the browser".into(),
        ),
        Event::SignInFinished { server } => {
            ("sign-in", Some(shown(server.as_str())), "Signed in".into())
        }
        Event::SignInFailed { server, reason } => (
            "failure",
            Some(shown(server.as_str())),
            format!("Sign-in failed: {reason}"),
        ),
        Event::SignedOut { server } => (
            "sign-out",
            Some(shown(server.as_str())),
            "Signed out".into(),
        ),
        Event::NeedsSignIn { server } => (
            "attention",
            Some(shown(server.as_str())),
            "Needs sign-in".into(),
        ),
        Event::TokenRefreshed { server } => (
            "refresh",
            Some(shown(server.as_str())),
            "Token refreshed".into(),
        ),
        Event::RefreshFailed { server, reason } => (
            "failure",
            Some(shown(server.as_str())),
            format!("Token refresh failed: {reason}"),
        ),
        Event::ClientAuthorized {
            client_name,
            server,
        } => (
            "client",
            Some(server.clone()),
            format!("Local client \"{client_name}\" authorized"),
        ),
    }
}

/// A desktop notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub title: String,
    pub body: String,
}

/// Decides notifications. "Needs sign-in" is announced once per change: whether it comes as an
/// event or as a status transition, a server already announced stays quiet until it recovers.
/// The keychain is one for every server: announced once while any server cannot read it.
#[derive(Debug, Default)]
pub struct Notifier {
    announced: BTreeSet<String>,
    /// Servers whose last settled state was "keychain locked/unavailable".
    keychain: BTreeSet<String>,
}

impl Notifier {
    pub fn on_event(&mut self, event: &Event) -> Option<Notice> {
        match event {
            Event::SignInFinished { server } => {
                self.announced.remove(server.as_str());
                Some(Notice {
                    title: format!("Signed in to {}", shown(server.as_str())),
                    body: "Every local client can use it now.".into(),
                })
            }
            Event::SignInFailed { server, reason } => Some(Notice {
                title: format!("Sign-in to {} failed", shown(server.as_str())),
                body: reason.clone(),
            }),
            Event::NeedsSignIn { server } => self.needs_sign_in(server.as_str()),
            _ => None,
        }
    }

    pub fn on_status(&mut self, status: &StatusMap) -> Vec<Notice> {
        let mut out = Vec::new();
        let keychain_was_fine = self.keychain.is_empty();
        let mut locked = None;
        for (name, s) in status {
            match s.state {
                HealthState::NeedsSignIn { .. } => out.extend(self.needs_sign_in(name.as_str())),
                // Still undecided: keep what was announced.
                HealthState::Unknown | HealthState::Checking => continue,
                HealthState::KeychainUnavailable { locked: l, .. } => {
                    self.keychain.insert(name.to_string());
                    locked = Some(locked.unwrap_or(false) || l);
                    continue;
                }
                _ => {
                    self.announced.remove(name.as_str());
                }
            }
            self.keychain.remove(name.as_str());
        }
        self.announced.retain(|n| status.contains_key(n.as_str()));
        self.keychain.retain(|n| status.contains_key(n.as_str()));
        if let Some(locked) = locked.filter(|_| keychain_was_fine) {
            out.push(match locked {
                true => Notice {
                    title: "The OS keychain is locked".into(),
                    body: "Unlock it to use your sign-ins again; nothing was deleted.".into(),
                },
                false => Notice {
                    title: "The OS keychain is not available".into(),
                    body: "Start or unlock it (GNOME Keyring, KWallet) to use your sign-ins again; nothing was deleted.".into(),
                },
            });
        }
        out
    }

    fn needs_sign_in(&mut self, server: &str) -> Option<Notice> {
        self.announced.insert(server.to_string()).then(|| Notice {
            title: format!("{} needs sign-in", shown(server)),
            body: "Open the tray menu and choose Sign in.".into(),
        })
    }
}

#[cfg(test)]
#[path = "feed_tests.rs"]
mod tests;
