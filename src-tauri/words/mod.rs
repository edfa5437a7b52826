//! The words a person reads: flows named as people say them (the protocol term kept as a
//! detail), and problems said as what happened and what to do, with the raw cause behind a
//! "details" toggle. One home for both, so the dashboard, the tray, `status` and the browser
//! pages (consent, sign-in results) say the same thing. Pure: no I/O, no clock.

mod problems;

pub use problems::{
    config_problem, explain_cause, explain_sign_in, explain_status, explain_transport,
    explain_upstream, explain_vault, Problem, ProblemKind,
};

use serde::Serialize;

use crate::config::{AuthType, OAuthFlow, ServerConfig};
use crate::upstream::{Classification, Flow};

/// A flow as the person reads it: `name` in tables and menus, `term` (the protocol's own word)
/// as the detail behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowWords {
    pub name: &'static str,
    pub term: String,
}

fn words(name: &'static str, term: &str) -> FlowWords {
    FlowWords {
        name,
        term: term.into(),
    }
}

/// The flow's name and protocol term.
pub fn flow(flow: Flow) -> FlowWords {
    match flow {
        Flow::None => words("No sign-in", "no authorization: the server is open"),
        Flow::Static => words(
            "Static key",
            "a configured API key or bearer token (auth_type api_key / bearer_token)",
        ),
        Flow::AuthorizationCode => words(
            "Browser sign-in",
            "OAuth authorization code with PKCE (authorization_code)",
        ),
        Flow::ClientCredentials => words(
            "Machine credentials",
            "OAuth client credentials (client_credentials)",
        ),
        Flow::Enterprise => words(
            "Your company sign-in",
            "enterprise-managed authorization: the company sign-in's ID token exchanged for an ID-JAG, redeemed with the jwt-bearer grant (oauth_flow enterprise)",
        ),
        Flow::Delegate => words(
            "Client signs in itself",
            "each client's own OAuth sign-in at the upstream, passed through (delegate_auth_to_upstream)",
        ),
    }
}

/// The device sign-in (RFC 8628), where the dashboard offers it.
pub fn device_flow() -> FlowWords {
    words(
        "Device code",
        "OAuth device authorization (RFC 8628, device_code)",
    )
}

/// The flow a server uses as the person reads it: the classification when there is one, else
/// what the config states explicitly.
pub fn server_flow(server: &ServerConfig, classified: Option<&Classification>) -> FlowWords {
    let decided =
        match classified {
            Some(c) => match c.flow {
                Some(f) => Some(f),
                None => return words(
                    "Needs your choice",
                    "the evidence allows several flows: set oauth_flow in the config or the form",
                ),
            },
            None if server.delegate_auth_to_upstream => Some(Flow::Delegate),
            None => match (server.auth_type, server.oauth_flow) {
                (_, Some(OAuthFlow::AuthorizationCode)) => Some(Flow::AuthorizationCode),
                // A machine token by a signed assertion (RFC 7523) is machine credentials too.
                (_, Some(OAuthFlow::ClientCredentials | OAuthFlow::JwtBearer)) => {
                    Some(Flow::ClientCredentials)
                }
                (_, Some(OAuthFlow::Enterprise)) => Some(Flow::Enterprise),
                (AuthType::BearerToken | AuthType::ApiKey, None) => Some(Flow::Static),
                (AuthType::OAuth2 | AuthType::None, None) => None,
            },
        };
    match decided {
        Some(f) => flow(f),
        None => words(
            "Not known yet",
            "decided by the first check of the server (discovery)",
        ),
    }
}

#[cfg(test)]
mod tests;
