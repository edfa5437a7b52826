//! Provider profiles: the settings a known authorization server needs that discovery cannot tell
//! the broker (an endpoint it does not publish, a parameter it refuses, a scope without which no
//! refresh token comes back). One home for them; `add` (and the dashboard's add form) applies the
//! profile whose host matches, or the one named, and says what it changed.
//!
//! A profile only fills what the entry leaves unset: what the person wrote always wins.

use std::collections::BTreeMap;

use serde_json::Value;
use url::Url;

use super::raw::RawServer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Microsoft Entra ID (v2 endpoints).
    Entra,
    Auth0,
    Okta,
    GitHub,
    Google,
    Slack,
}

/// What applying a profile did, and what only the person can supply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub profile: Profile,
    pub changes: Vec<String>,
    pub todo: Vec<String>,
}

impl Applied {
    /// "applied profile Entra ID: …" with what still needs the person, for the CLI and dashboard.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "applied profile {}: {}",
            self.profile.label(),
            if self.changes.is_empty() {
                "nothing to change".to_string()
            } else {
                self.changes.join("; ")
            }
        );
        if !self.todo.is_empty() {
            text.push_str(&format!(". Still to do: {}", self.todo.join("; ")));
        }
        text
    }
}

const ALL: [Profile; 6] = [
    Profile::Entra,
    Profile::Auth0,
    Profile::Okta,
    Profile::GitHub,
    Profile::Google,
    Profile::Slack,
];

impl Profile {
    pub fn parse(name: &str) -> Result<Profile, String> {
        ALL.into_iter()
            .find(|p| p.id() == name.to_ascii_lowercase())
            .ok_or_else(|| {
                let ids: Vec<_> = ALL.iter().map(|p| p.id()).collect();
                format!("no profile \"{name}\"; known: {}", ids.join(", "))
            })
    }

    pub fn id(self) -> &'static str {
        match self {
            Profile::Entra => "entra",
            Profile::Auth0 => "auth0",
            Profile::Okta => "okta",
            Profile::GitHub => "github",
            Profile::Google => "google",
            Profile::Slack => "slack",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Profile::Entra => "Entra ID",
            Profile::Auth0 => "Auth0",
            Profile::Okta => "Okta",
            Profile::GitHub => "GitHub",
            Profile::Google => "Google",
            Profile::Slack => "Slack",
        }
    }

    fn hosts(self) -> &'static [&'static str] {
        match self {
            Profile::Entra => &["login.microsoftonline.com", "login.microsoft.com"],
            Profile::Auth0 => &["auth0.com"],
            Profile::Okta => &["okta.com", "oktapreview.com", "okta-emea.com"],
            Profile::GitHub => &["github.com", "api.githubcopilot.com"],
            Profile::Google => &["accounts.google.com", "googleapis.com"],
            Profile::Slack => &["slack.com"],
        }
    }

    /// The profile whose host is the entry's URL or one of its configured endpoints' hosts.
    pub fn detect(raw: &RawServer) -> Option<Profile> {
        let hosts: Vec<String> = [&raw.url, &raw.authorization_url, &raw.token_url]
            .into_iter()
            .flatten()
            .filter_map(|u| Url::parse(u).ok()?.host_str().map(str::to_ascii_lowercase))
            .collect();
        ALL.into_iter().find(|p| {
            hosts.iter().any(|h| {
                p.hosts()
                    .iter()
                    .any(|known| h == known || h.ends_with(&format!(".{known}")))
            })
        })
    }

    /// Fills what this provider needs into `raw`; `port` is the broker's (its redirect URI).
    pub fn apply(self, raw: &mut RawServer, port: u16) -> Applied {
        let mut a = Applied {
            profile: self,
            changes: Vec::new(),
            todo: Vec::new(),
        };
        if raw.auth_type.is_none() {
            raw.auth_type = Some("oauth2".into());
        }
        let redirect = format!("http://127.0.0.1:{port}/oauth/callback");
        match self {
            Profile::Entra => entra(raw, &mut a),
            Profile::Auth0 | Profile::Okta => audience(raw, &mut a),
            Profile::GitHub => github(raw, &mut a, &redirect),
            Profile::Google => google(raw, &mut a, &redirect),
            Profile::Slack => {
                flow(raw, &mut a, "Slack signs people in");
                a.todo.push(format!("add exactly {redirect} to the Slack app's Redirect URLs: Slack accepts only a registered redirect URL, and the broker's port is fixed so it stays valid"));
            }
        }
        a
    }
}

/// GitHub: fixed endpoints (no metadata), the sign-in flow, and its one callback URL.
fn github(raw: &mut RawServer, a: &mut Applied, redirect: &str) {
    endpoints(
        raw,
        a,
        "https://github.com/login/oauth/authorize",
        "https://github.com/login/oauth/access_token",
        "GitHub publishes no authorization server metadata",
    );
    flow(
        raw,
        a,
        "a client ID, secret and token URL would otherwise read as machine-to-machine",
    );
    a.todo.push(format!(
        "register {redirect} as the OAuth app's callback URL (GitHub allows one)"
    ));
}

/// Google: its endpoints, the sign-in flow, no `resource`, and offline access for a refresh
/// token.
fn google(raw: &mut RawServer, a: &mut Applied, redirect: &str) {
    endpoints(
        raw,
        a,
        "https://accounts.google.com/o/oauth2/v2/auth",
        "https://oauth2.googleapis.com/token",
        "Google's endpoints",
    );
    flow(raw, a, "Google's OAuth clients sign people in");
    no_resource(
        raw,
        a,
        "Google's authorization endpoint refuses parameters it does not know",
    );
    let params = raw.authorization_params.get_or_insert_with(BTreeMap::new);
    if !params.contains_key("access_type") {
        params.insert("access_type".into(), "offline".into());
        params.insert("prompt".into(), "consent".into());
        a.changes.push("authorization_params access_type=offline, prompt=consent (Google returns a refresh token only then)".into());
    }
    a.todo.push(format!(
        "add {redirect} to the OAuth client's authorized redirect URIs"
    ));
}

fn flow(raw: &mut RawServer, a: &mut Applied, why: &str) {
    if raw.oauth_flow.is_none() && raw.oauth2_flow.is_none() {
        raw.oauth_flow = Some("authorization_code".into());
        a.changes
            .push(format!("oauth_flow authorization_code ({why})"));
    }
}

fn no_resource(raw: &mut RawServer, a: &mut Applied, why: &str) {
    if raw.send_resource.is_none() {
        raw.send_resource = Some(false);
        a.changes.push(format!("send_resource false ({why})"));
    }
}

fn endpoints(raw: &mut RawServer, a: &mut Applied, authorize: &str, token: &str, why: &str) {
    if raw.authorization_url.is_none() {
        raw.authorization_url = Some(authorize.into());
        a.changes
            .push(format!("authorization_url {authorize} ({why})"));
    }
    if raw.token_url.is_none() {
        raw.token_url = Some(token.into());
        a.changes.push(format!("token_url {token}"));
    }
}

/// The scopes as a list (a space-separated string is split).
fn scopes(raw: &RawServer) -> Vec<String> {
    match &raw.scopes {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn add_scope(raw: &mut RawServer, a: &mut Applied, scope: &str, why: &str) {
    let mut list = scopes(raw);
    if !list.iter().any(|s| s == scope) {
        list.push(scope.to_string());
        raw.scopes = Some(Value::from(list));
        a.changes.push(format!("scope {scope} ({why})"));
    }
}

fn interactive(raw: &RawServer) -> bool {
    raw.oauth_flow.as_deref().or(raw.oauth2_flow.as_deref()) != Some("client_credentials")
}

/// Entra: v2 endpoints of the tenant (its metadata does not advertise PKCE, so configured
/// endpoints are how sign-in proceeds), no `resource` (AADSTS901002), the API's `/.default`
/// scope and `offline_access` for a refresh token.
fn entra(raw: &mut RawServer, a: &mut Applied) {
    let tenant = [&raw.authorization_url, &raw.token_url]
        .into_iter()
        .flatten()
        .filter_map(|u| Url::parse(u).ok())
        .filter(|u| Profile::Entra.hosts().contains(&u.host_str().unwrap_or("")))
        .find_map(|u| u.path_segments()?.next().map(str::to_string))
        .filter(|t| !t.is_empty());
    match tenant {
        Some(t) => {
            let base = format!("https://login.microsoftonline.com/{t}/oauth2/v2.0");
            let why = "Entra's metadata does not list PKCE, so the endpoints are configured";
            endpoints(raw, a, &format!("{base}/authorize"), &format!("{base}/token"), why);
        }
        None if raw.authorization_url.is_none() || raw.token_url.is_none() => a.todo.push(
            "pass --authorization-url https://login.microsoftonline.com/TENANT/oauth2/v2.0/authorize and --token-url …/oauth2/v2.0/token (TENANT: your tenant ID or domain)".into(),
        ),
        None => {}
    }
    flow(
        raw,
        a,
        "Entra signs people in unless you choose client_credentials",
    );
    no_resource(raw, a, "Entra's v2 endpoints refuse it with AADSTS901002");
    if let Some(api) = raw.audience.take() {
        let scope = format!("{}/.default", api.trim_end_matches('/'));
        add_scope(
            raw,
            a,
            &scope,
            "Entra names the API in the scope, not in an audience",
        );
    }
    if !scopes(raw).iter().any(|s| s.ends_with("/.default")) {
        a.todo.push("add the API's scope, e.g. --scopes api://APP-ID/.default (or pass its application ID URI as --audience)".into());
    }
    if interactive(raw) {
        add_scope(
            raw,
            a,
            "offline_access",
            "without it Entra gives no refresh token and you sign in every hour",
        );
    }
}

/// Auth0 and Okta: an access token for an API only when the API's `audience` is asked for,
/// and a refresh token only with `offline_access`.
fn audience(raw: &mut RawServer, a: &mut Applied) {
    if raw.audience.is_none() {
        a.todo.push(format!("pass --audience with the API identifier: {} issues a token for an API only when asked for one", a.profile.label()));
    }
    if interactive(raw) {
        add_scope(raw, a, "offline_access", "refresh tokens");
    }
}

#[cfg(test)]
#[path = "profiles_tests.rs"]
mod tests;
