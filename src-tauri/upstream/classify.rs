//! Flow classification: a pure function from (config, discovery evidence) to a flow plus the
//! evidence that decided it. Explicit configuration wins; a *discovered* token URL never makes
//! a server machine-to-machine; conflicting evidence asks the person instead of guessing.

use crate::config::{AuthType, OAuthFlow, ServerConfig};

use super::{Classification, Flow};

/// What discovery saw, reduced to the facts classification uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// HTTP status of the credential-less probe; `None` when it did not answer.
    pub probe_status: Option<u16>,
    /// Why the probe failed, when it did.
    pub unreachable: Option<String>,
    /// The probe's 401 carried a `WWW-Authenticate` challenge.
    pub challenge: bool,
    /// Protected resource metadata was found and accepted.
    pub prm: bool,
    /// Authorization server metadata was found and accepted.
    pub as_metadata: bool,
    /// The AS metadata names a token endpoint (never enough for client_credentials).
    pub discovered_token_url: bool,
    /// `grant_types_supported` of the AS metadata, when given.
    pub grant_types: Option<Vec<String>>,
    /// The AS metadata names a `device_authorization_endpoint` (RFC 8628).
    pub device_flow: bool,
}

/// The evidence line for a server whose authorization server offers device sign-in.
pub const DEVICE_FLOW: &str = "device flow available: the authorization server offers device authorization (RFC 8628), so `login` shows a code to confirm in a browser on any device";

fn decided(flow: Flow, evidence: Vec<String>) -> Classification {
    Classification {
        flow: Some(flow),
        evidence,
        choices: Vec::new(),
    }
}

fn ask(evidence: Vec<String>, choices: Vec<Flow>) -> Classification {
    Classification {
        flow: None,
        evidence,
        choices,
    }
}

/// True when the config names OAuth client fields (so an unset `auth_type` still means OAuth).
fn has_oauth_fields(c: &ServerConfig) -> bool {
    c.client_id.is_some()
        || c.client_secret.is_some()
        || c.token_url.is_some()
        || c.authorization_url.is_some()
}

/// Classifies from config alone where the config decides; `None` when only discovery can tell.
pub fn from_config(c: &ServerConfig) -> Option<Classification> {
    if c.delegate_auth_to_upstream {
        return Some(decided(Flow::Delegate, vec!["delegate_auth_to_upstream is true in the config: the client's own credential is passed through".into()]));
    }
    match c.auth_type {
        AuthType::BearerToken => return Some(decided(Flow::Static, vec!["auth_type is \"bearer_token\": the configured token is sent as Authorization: Bearer".into()])),
        AuthType::ApiKey => return Some(decided(Flow::Static, vec!["auth_type is \"api_key\": the configured key is sent as a header".into()])),
        AuthType::None | AuthType::OAuth2 => {}
    }
    if let Some(flow) = c.oauth_flow {
        return Some(by_oauth_flow(c, flow));
    }
    if c.auth_type != AuthType::OAuth2 && !has_oauth_fields(c) {
        return None;
    }
    Some(by_oauth_fields(c))
}

/// An explicit `oauth_flow` decides.
fn by_oauth_flow(c: &ServerConfig, flow: OAuthFlow) -> Classification {
    match flow {
        OAuthFlow::AuthorizationCode => decided(
            Flow::AuthorizationCode,
            vec!["oauth_flow is \"authorization_code\" in the config (explicit setting wins)".into()],
        ),
        OAuthFlow::Enterprise => {
            let via = c
                .enterprise
                .as_ref()
                .map_or("the company", |e| e.name.as_str());
            decided(
                Flow::Enterprise,
                vec![format!("oauth_flow is \"enterprise\" in the config: tokens come via {via} (the company sign-in's ID token is exchanged for an ID-JAG and redeemed with the jwt-bearer grant)")],
            )
        }
        OAuthFlow::ClientCredentials => decided(
            Flow::ClientCredentials,
            vec!["oauth_flow is \"client_credentials\" in the config (explicit setting wins)".into()],
        ),
        OAuthFlow::JwtBearer => decided(
            Flow::ClientCredentials,
            vec!["oauth_flow is \"jwt_bearer\" in the config: a machine token, for the workload token the platform issues (RFC 7523 jwt-bearer grant)".into()],
        ),
    }
}

/// OAuth without `oauth_flow`: the configured client, token URL and authorization URL decide,
/// or leave the choice to the person when both flows are possible.
fn by_oauth_fields(c: &ServerConfig) -> Classification {
    let mut ev = Vec::new();
    if c.auth_type == AuthType::OAuth2 {
        ev.push("auth_type is \"oauth2\" in the config".to_string());
    }
    let secret = c.client_id.is_some() && c.client_secret.is_some();
    match (secret, &c.token_url, &c.authorization_url) {
        (true, Some(_), Some(_)) => {
            ev.push("the config has client_id, client_secret, a token_url and an authorization_url: both flows are possible".into());
            ask(ev, vec![Flow::AuthorizationCode, Flow::ClientCredentials])
        }
        (true, Some(_), None) => {
            ev.push("the config has client_id, client_secret and a configured token_url: machine-to-machine (client_credentials)".into());
            decided(Flow::ClientCredentials, ev)
        }
        (true, None, _) => {
            ev.push("the config has client_id and client_secret but no token_url: interactive sign-in (a discovered token URL never makes a server machine-to-machine)".into());
            decided(Flow::AuthorizationCode, ev)
        }
        (false, _, _) => {
            ev.push("no client secret is configured: interactive sign-in".into());
            decided(Flow::AuthorizationCode, ev)
        }
    }
}

/// The full classification. `evidence` is `None` when discovery was not run.
pub fn classify(c: &ServerConfig, evidence: Option<&Evidence>) -> Classification {
    if let Some(by_config) = from_config(c) {
        return weighed(c, by_config, evidence);
    }
    let Some(ev) = evidence else {
        return decided(
            Flow::None,
            vec!["no auth is configured and the server was not probed yet".into()],
        );
    };
    if let Some(why) = &ev.unreachable {
        return decided(
            Flow::None,
            vec![format!(
                "unreachable: {why}; no auth is configured, and whether the server asks for sign-in is decided once it answers"
            )],
        );
    }
    from_probe(ev)
}

/// What the config decided, weighed against what discovery found: a guessed machine-to-machine
/// flow the authorization server cannot serve becomes a question; the rest adds evidence.
fn weighed(
    c: &ServerConfig,
    mut decided_by_config: Classification,
    evidence: Option<&Evidence>,
) -> Classification {
    if let (Some(Flow::ClientCredentials), Some(ev)) = (decided_by_config.flow, evidence) {
        if c.oauth_flow.is_none() {
            if let Some(grants) = &ev.grant_types {
                if !grants.iter().any(|g| g == "client_credentials") {
                    decided_by_config.evidence.push(format!(
                        "but the authorization server's metadata lists grant types {grants:?} without client_credentials"
                    ));
                    return ask(
                        decided_by_config.evidence,
                        vec![Flow::ClientCredentials, Flow::AuthorizationCode],
                    );
                }
            }
        }
    }
    if let (Some(Flow::Enterprise), Some(grants)) = (
        decided_by_config.flow,
        evidence.and_then(|e| e.grant_types.as_ref()),
    ) {
        if !grants.iter().any(|g| g == super::enterprise::JWT_BEARER) {
            decided_by_config.evidence.push(format!("but the authorization server's metadata lists grant types {grants:?} without the jwt-bearer grant: it may refuse the ID-JAG"));
        }
    }
    if let Some(ev) = evidence {
        if ev.discovered_token_url
            && decided_by_config.flow == Some(Flow::AuthorizationCode)
            && c.token_url.is_none()
        {
            decided_by_config.evidence.push("discovery found a token endpoint; it is used for sign-in, not for machine-to-machine".into());
        }
        if ev.device_flow && decided_by_config.flow == Some(Flow::AuthorizationCode) {
            decided_by_config.evidence.push(DEVICE_FLOW.into());
        }
    }
    decided_by_config
}

/// A server without auth config, classified by how it answered a request without credentials.
fn from_probe(ev: &Evidence) -> Classification {
    let mut lines = Vec::new();
    match ev.probe_status {
        Some(401) => {
            lines.push("the server answered 401 to a request without credentials".to_string());
            if ev.challenge {
                lines.push("its WWW-Authenticate header asks for a Bearer token".into());
            }
            if ev.prm {
                lines.push("it publishes OAuth protected resource metadata".into());
            }
            if ev.as_metadata {
                lines.push("its authorization server publishes metadata".into());
            }
            lines.push("interactive sign-in (authorization_code)".into());
            if ev.device_flow {
                lines.push(DEVICE_FLOW.into());
            }
            decided(Flow::AuthorizationCode, lines)
        }
        Some(403) => {
            lines.push("the server answered 403 to a request without credentials and no auth is configured".into());
            if ev.prm || ev.as_metadata {
                lines.push("it publishes OAuth metadata, so interactive sign-in may work; a static token may be what it wants instead".into());
                ask(lines, vec![Flow::AuthorizationCode, Flow::Static])
            } else {
                lines.push("configure a token (bearer_token or api_key) or OAuth for it".into());
                ask(lines, vec![Flow::Static, Flow::AuthorizationCode])
            }
        }
        Some(status) if status >= 500 => decided(
            Flow::None,
            vec![format!("unreachable: the server answered HTTP {status} to a request without credentials (a server error, which says nothing about auth); whether it asks for sign-in is decided once it answers")],
        ),
        Some(status) => {
            lines.push(format!("the server answered HTTP {status} to a request without credentials: no auth needed"));
            if ev.prm {
                lines.push("it also publishes OAuth protected resource metadata; sign in if its tools ask for it".into());
            }
            decided(Flow::None, lines)
        }
        None => decided(
            Flow::None,
            vec!["no auth is configured and the server gave no answer".into()],
        ),
    }
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
