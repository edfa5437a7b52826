//! Upstreams whose authorization server behaves like a real provider's, built on [`TestAs`]
//! and [`TestUpstream`] options, each reproducing what that provider is documented (or was seen)
//! to do.
//!
//! - [`entra`]: Microsoft Entra ID (v2 endpoints): metadata without
//!   `code_challenge_methods_supported` (PKCE works, it is just not advertised), no dynamic
//!   registration (an app registered in the tenant, a public client), `resource` refused with
//!   `invalid_target` and an AADSTS901002 description spread over several lines (CR/LF), scopes
//!   named `api://{app}/.default`, and a refresh token only when `offline_access` was asked for.
//!   [`entra_config`] is the server entry that works with it.
//! - [`auth0`]: Auth0 (Okta's custom authorization servers behave the same): an access token
//!   for the API only when the API's `audience` was asked for (otherwise an opaque token the
//!   API refuses), a refresh token only with `offline_access`, no dynamic registration.
//! - [`google`]: Google: `resource` refused as an unknown parameter, a refresh token only when
//!   the authorization request said `access_type=offline` and `prompt=consent`.
//! - [`slack`]: Slack: `/authorize` accepts only the redirect URL registered for the app,
//!   exactly ([`Rules::register_redirect`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::auth_server::{AsOptions, IssuedToken, TestClient};
use super::upstream::{Requires, TestUpstream, UpstreamOptions};

/// The application (client) id registered in the fixture's "tenant".
pub const ENTRA_CLIENT_ID: &str = "9c2f5a3e-6d1b-4c8e-a7f0-3b5d8e1c2a4f";

/// The scope an Entra-protected API asks for: every permission granted to the app.
pub const ENTRA_SCOPE: &str = "api://mcp-upstream/.default";

/// What Entra's v2 endpoints answer to a `resource` parameter, lines and all.
pub const AADSTS901002: &str = "AADSTS901002: The 'resource' request parameter is not supported.\r\nTrace ID: 0e7b2c1d-5f4a-4b3c-9d8e-7f6a5b4c3d2e\r\nCorrelation ID: 4a3b2c1d-0e9f-4a8b-b7c6-d5e4f3a2b1c0\r\nTimestamp: 2026-01-05 10:00:00Z";

/// The authorization server's options: see the module docs.
pub fn entra_as() -> AsOptions {
    AsOptions {
        clients: vec![TestClient {
            client_id: ENTRA_CLIENT_ID.into(),
            client_secret: None,
        }],
        open_clients: false,
        advertise_pkce: false,
        registration: false,
        revocation: false,
        scopes: vec![
            "openid".into(),
            "profile".into(),
            "email".into(),
            "offline_access".into(),
        ],
        refuse_resource: Some(("invalid_target".into(), AADSTS901002.into())),
        refresh_needs_offline_access: true,
        ..AsOptions::default()
    }
}

/// An MCP upstream protected by an Entra-shaped authorization server; its challenge and PRM
/// ask for [`ENTRA_SCOPE`].
pub async fn entra() -> TestUpstream {
    TestUpstream::start(UpstreamOptions {
        auth: Requires::OAuth,
        scope: Some(ENTRA_SCOPE.into()),
        auth_server: entra_as(),
        ..UpstreamOptions::default()
    })
    .await
}

/// The server entry that signs in to [`entra`]: the registered client id, the endpoints
/// configured (the metadata does not advertise PKCE), no `resource`, and the scopes with
/// `offline_access` (so a refresh token comes back).
pub fn entra_config(up: &TestUpstream) -> Value {
    json!({
        "url": up.mcp_url,
        "auth_type": "oauth2",
        "oauth_flow": "authorization_code",
        "client_id": ENTRA_CLIENT_ID,
        "authorization_url": format!("{}/authorize", up.as_url),
        "token_url": up.auth_server.token_url(),
        "send_resource": false,
        "scopes": [ENTRA_SCOPE, "offline_access"],
    })
}

/// A provider's rules beyond the standard, checked by [`super::auth_server`]'s handlers.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Auth0/Okta: the API accepts only access tokens issued for this `audience`.
    pub api_audience: Option<String>,
    /// Google: a refresh token only when the authorization request carried all of these.
    pub refresh_needs_params: Vec<(String, String)>,
    /// Slack: the one redirect URL registered for the app (`None`: any loopback URL).
    pub registered_redirect: Arc<Mutex<Option<String>>>,
}

impl Rules {
    /// Whether the protected API takes this token.
    pub fn accepts(&self, token: &IssuedToken) -> bool {
        self.api_audience
            .as_ref()
            .is_none_or(|a| token.audience.as_ref() == Some(a))
    }

    /// Whether a code from this authorization request may come with a refresh token.
    pub fn offline(&self, query: &HashMap<String, String>) -> bool {
        self.refresh_needs_params
            .iter()
            .all(|(k, v)| query.get(k) == Some(v))
    }

    /// Slack's answer to a redirect URL that is not the registered one: a page, not a redirect.
    pub fn refuses_redirect(&self, redirect_uri: &str) -> Option<Response> {
        let registered = self.registered_redirect.lock().unwrap();
        let wanted = registered.as_deref()?;
        (wanted != redirect_uri).then(|| {
            let page = format!(
                "redirect_uri did not match any configured URIs. Passed URI: {redirect_uri}"
            );
            (StatusCode::BAD_REQUEST, page).into_response()
        })
    }

    /// Registers the app's one redirect URL (known once the broker's port is).
    pub fn register_redirect(&self, uri: &str) {
        *self.registered_redirect.lock().unwrap() = Some(uri.to_string());
    }
}

/// A provider's registered app: a client the person created in its console.
fn console_app(client_id: &str, secret: Option<&str>, scopes: &[&str]) -> AsOptions {
    AsOptions {
        clients: vec![TestClient {
            client_id: client_id.into(),
            client_secret: secret.map(Into::into),
        }],
        open_clients: false,
        registration: false,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ..AsOptions::default()
    }
}

async fn protected_by(auth_server: AsOptions) -> TestUpstream {
    TestUpstream::start(UpstreamOptions {
        auth: Requires::OAuth,
        auth_server,
        ..UpstreamOptions::default()
    })
    .await
}

pub const AUTH0_CLIENT_ID: &str = "Zq3v7Auth0NativeApp";
/// The API identifier registered in the Auth0 tenant.
pub const AUTH0_AUDIENCE: &str = "https://mcp.example.com/api";

/// An MCP API protected by an Auth0-shaped authorization server (see the module docs).
pub async fn auth0() -> TestUpstream {
    let mut options = console_app(
        AUTH0_CLIENT_ID,
        None,
        &["openid", "profile", "offline_access"],
    );
    options.refresh_needs_offline_access = true;
    options.provider.api_audience = Some(AUTH0_AUDIENCE.into());
    protected_by(options).await
}

pub const GOOGLE_CLIENT_ID: &str = "1234-desktop.apps.googleusercontent.com";
pub const GOOGLE_SECRET: &str = "GOCSPX-desktop-secret";

/// An MCP API protected by a Google-shaped authorization server (see the module docs).
pub async fn google() -> TestUpstream {
    let mut options = console_app(GOOGLE_CLIENT_ID, Some(GOOGLE_SECRET), &["openid", "email"]);
    options.refuse_resource = Some((
        "invalid_request".into(),
        "Parameter not allowed for this message type: resource".into(),
    ));
    options.provider.refresh_needs_params = vec![
        ("access_type".into(), "offline".into()),
        ("prompt".into(), "consent".into()),
    ];
    protected_by(options).await
}

pub const SLACK_CLIENT_ID: &str = "1111.2222slack";
pub const SLACK_SECRET: &str = "slack-app-secret";

/// An MCP API protected by a Slack-shaped authorization server (see the module docs).
pub async fn slack() -> TestUpstream {
    protected_by(console_app(
        SLACK_CLIENT_ID,
        Some(SLACK_SECRET),
        &["chat:write"],
    ))
    .await
}
