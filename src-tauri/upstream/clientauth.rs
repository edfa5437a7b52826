//! How the broker authenticates at an upstream token endpoint (authorization code, refresh and
//! client credentials alike). Servers disagree: RFC 8414 makes `client_secret_basic` the
//! default, yet many accept only form fields (LiteLLM's documented M2M server answers Basic with
//! 422), and some want `client_id` in the body even with Basic (FastMCP's "Missing client_id").
//! So: a configured `token_endpoint_auth_method` is used as is; otherwise the methods the metadata
//! lists are followed, Basic first, and when a second one is possible a refusal that looks like
//! the wrong method (`invalid_client`, or 400/401/422 without a verdict on the grant) gets exactly
//! one retry with the other. What worked is remembered in the server's record (per token
//! endpoint and client), so later requests — after a restart too — start with it.

use std::future::Future;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::TokenAuthMethod;

use super::oauth::TokenFailure;
use super::record::{load_record, save_record};
use super::registration::{ClientAuth, ClientInfo};

impl ClientAuth {
    /// The RFC 7591 / RFC 8414 name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::None => "none",
            ClientAuth::ClientSecretBasic => "client_secret_basic",
            ClientAuth::ClientSecretPost => "client_secret_post",
            ClientAuth::PrivateKeyJwt => "private_key_jwt",
        }
    }

    pub fn from_config(m: TokenAuthMethod) -> ClientAuth {
        match m {
            TokenAuthMethod::ClientSecretBasic => ClientAuth::ClientSecretBasic,
            TokenAuthMethod::ClientSecretPost => ClientAuth::ClientSecretPost,
            TokenAuthMethod::None => ClientAuth::None,
            TokenAuthMethod::PrivateKeyJwt => ClientAuth::PrivateKeyJwt,
        }
    }
}

/// The methods to try, in order: `first`, then `fallback` once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub first: ClientAuth,
    pub fallback: Option<ClientAuth>,
}

/// What decides the plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs<'a> {
    pub has_secret: bool,
    /// The config's `token_endpoint_auth_method`: used alone.
    pub configured: Option<TokenAuthMethod>,
    /// What a dynamic registration answered: tried first.
    pub registered: Option<ClientAuth>,
    /// `token_endpoint_auth_methods_supported` of the AS metadata.
    pub advertised: Option<&'a [String]>,
}

/// The plan for a client. Without a secret there is nothing to choose (`none`). The secret
/// methods the metadata lists are the candidates (both when it lists neither, or nothing).
pub fn plan(i: Inputs<'_>) -> Plan {
    if let Some(m) = i.configured {
        return Plan {
            first: ClientAuth::from_config(m),
            fallback: None,
        };
    }
    if !i.has_secret {
        return Plan {
            first: ClientAuth::None,
            fallback: None,
        };
    }
    let both = [ClientAuth::ClientSecretBasic, ClientAuth::ClientSecretPost];
    let listed: Vec<ClientAuth> = both
        .into_iter()
        .filter(|m| {
            i.advertised
                .is_none_or(|l| l.iter().any(|x| x == m.as_str()))
        })
        .collect();
    let mut candidates = if listed.is_empty() {
        both.to_vec()
    } else {
        listed
    };
    if let Some(r) = i.registered.filter(|r| candidates.contains(r)) {
        candidates.retain(|c| *c != r);
        candidates.insert(0, r);
    }
    Plan {
        first: candidates[0],
        fallback: candidates.get(1).copied(),
    }
}

impl ClientInfo {
    /// Starts with `method` when the plan allows it (what worked last time).
    pub fn prefer(mut self, method: Option<ClientAuth>) -> ClientInfo {
        if let Some(m) = method.filter(|m| self.fallback == Some(*m)) {
            self.fallback = Some(self.auth);
            self.auth = m;
        }
        self
    }

    /// This client authenticating with `method` (only the secret methods send the secret).
    fn using(&self, method: ClientAuth) -> ClientInfo {
        let secret_method = matches!(
            method,
            ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost
        );
        ClientInfo {
            client_id: self.client_id.clone(),
            secret: secret_method.then(|| self.secret.clone()).flatten(),
            auth: method,
            fallback: None,
            key: self.key.clone(),
        }
    }

    /// The client whose assertions name `issuer` as their audience (RFC 7523bis), when known.
    pub fn for_issuer(mut self, issuer: Option<&str>) -> ClientInfo {
        if let (Some(key), Some(issuer)) = (self.key.as_mut(), issuer) {
            key.issuer = Some(issuer.to_string());
        }
        self
    }

    /// Form parameters the client adds itself: `client_id` next to Basic, which servers built on
    /// the MCP Python SDK (FastMCP) require and RFC 6749 allows; a fresh client assertion for
    /// `private_key_jwt` (the request adds `client_id` as for a public client).
    pub fn auth_params(&self) -> Vec<(String, String)> {
        match (self.auth, &self.secret, &self.key) {
            (ClientAuth::ClientSecretBasic, Some(_), _) => {
                vec![("client_id".into(), self.client_id.clone())]
            }
            (ClientAuth::PrivateKeyJwt, _, Some(key)) => {
                key.params(&self.client_id, crate::clock::unix_now())
            }
            _ => Vec::new(),
        }
    }
}

/// A refusal that may be the wrong client authentication rather than a verdict on the grant.
pub fn worth_fallback(f: &TokenFailure) -> bool {
    let error = f.oauth_error.as_deref();
    error == Some("invalid_client")
        || (matches!(f.status, Some(400 | 401 | 422))
            && matches!(
                error,
                None | Some("invalid_request" | "unauthorized_client")
            ))
}

/// Sends with the client's first method and, on a refusal [`worth_fallback`], once with its
/// fallback. Returns the response and the method that got it; a double refusal names both.
pub async fn send<T, F, Fut>(
    client: &ClientInfo,
    mut attempt: F,
) -> Result<(T, ClientAuth), TokenFailure>
where
    F: FnMut(ClientInfo) -> Fut,
    Fut: Future<Output = Result<T, TokenFailure>>,
{
    let first = client.auth;
    match attempt(client.using(first)).await {
        Ok(r) => Ok((r, first)),
        Err(f) => {
            let Some(second) = client.fallback.filter(|_| worth_fallback(&f)) else {
                return Err(f);
            };
            tracing::debug!(
                first = first.as_str(),
                second = second.as_str(),
                "token endpoint refused the client authentication; trying the other method once"
            );
            match attempt(client.using(second)).await {
                Ok(r) => Ok((r, second)),
                Err(mut f) => {
                    f.detail.push_str(&format!(
                        " (client authentication {} was refused before, then {})",
                        first.as_str(),
                        second.as_str()
                    ));
                    Err(f)
                }
            }
        }
    }
}

/// The method a token endpoint accepted from a client, kept in the server's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub token_endpoint: String,
    pub client_id: String,
    pub method: ClientAuth,
}

/// The method `token_endpoint` last accepted from `client_id`, if remembered.
pub fn remembered(
    data_dir: &Path,
    server: &str,
    token_endpoint: &str,
    client_id: &str,
) -> Option<ClientAuth> {
    load_record(data_dir, server)
        .token_auth
        .filter(|a| a.token_endpoint == token_endpoint && a.client_id == client_id)
        .map(|a| a.method)
}

/// `client` starting with what `token_endpoint` accepted from it last time, if remembered.
pub fn with_remembered(
    client: ClientInfo,
    data_dir: &Path,
    server: &str,
    token_endpoint: &str,
) -> ClientInfo {
    let method = remembered(data_dir, server, token_endpoint, &client.client_id);
    let mut client = client.prefer(method);
    if let Some(key) = client.key.as_mut() {
        key.endpoint = Some(token_endpoint.to_string());
    }
    client
}

/// Remembers what worked, and that the client is accepted: a later refusal of a dynamic
/// registration may re-register once again (the record is written only when it changes).
pub fn remember(
    data_dir: &Path,
    server: &str,
    token_endpoint: &str,
    client_id: &str,
    method: ClientAuth,
) {
    let accepted = Accepted {
        token_endpoint: token_endpoint.into(),
        client_id: client_id.into(),
        method,
    };
    let mut record = load_record(data_dir, server);
    if record.token_auth.as_ref() != Some(&accepted) || record.dcr_refused {
        record.token_auth = Some(accepted);
        record.dcr_refused = false;
        if let Err(e) = save_record(data_dir, server, &record) {
            tracing::warn!(
                server,
                "cannot remember the token endpoint's client authentication: {e}"
            );
        }
    }
}

/// The evidence line for a server's remembered method, for status and the dashboard.
pub fn evidence(data_dir: &Path, server: &str) -> Option<String> {
    load_record(data_dir, server).token_auth.map(|a| {
        format!(
            "the token endpoint {} accepts client authentication {} (client {})",
            a.token_endpoint,
            a.method.as_str(),
            a.client_id
        )
    })
}

#[cfg(test)]
#[path = "clientauth_tests.rs"]
mod tests;
