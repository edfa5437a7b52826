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

use serde_json::{json, Value};

use super::auth_server::{AsOptions, TestClient};
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
