//! Which token a request gets: the flow the config states (or the classification allows) picks
//! a static token, a machine token, the signed-in user's token (`refresh.rs`) or none; and the
//! configured extra headers, secrets resolved.

use crate::config::{AuthType, ServerConfig};
use crate::secret::Secret;

use super::{classify, tokens, vault_err, Credential, Flow, FlowToken, Upstream, UpstreamError};

impl Upstream {
    /// The configured `headers`, secrets resolved.
    pub(super) async fn config_headers(
        &self,
        server: &ServerConfig,
    ) -> Result<Vec<(::http::HeaderName, Secret)>, UpstreamError> {
        let mut out = Vec::new();
        for (name, value) in &server.headers {
            let header = ::http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                UpstreamError::Setup {
                    server: server.name.to_string(),
                    detail: format!("\"{name}\" is not a valid header name"),
                }
            })?;
            let value = match value {
                crate::config::HeaderValue::Literal(v) => Secret::new(v.clone()),
                crate::config::HeaderValue::Secret(r) => self
                    .inner
                    .deps
                    .vault
                    .resolve(r)
                    .await
                    .map_err(vault_err(server.name.as_str()))?,
            };
            out.push((header, value));
        }
        Ok(out)
    }

    /// The flow's token for one request; with `rejected`, the token the upstream just refused.
    pub(super) async fn flow_token(
        &self,
        server: &ServerConfig,
        rejected: Option<&Credential>,
    ) -> Result<FlowToken, UpstreamError> {
        let name = server.name.as_str();
        let flow = match classify::from_config(server) {
            Some(c) => match c.flow {
                Some(f) => Some(f),
                None => {
                    return Err(UpstreamError::Setup {
                        server: name.into(),
                        detail: format!("the config allows several flows ({}); choose one by setting \"oauth_flow\"", c.evidence.join("; ")),
                    })
                }
            },
            None => None,
        };
        match flow {
            Some(Flow::Delegate) | Some(Flow::None) => Ok(FlowToken::None),
            // A refused static token has no fresher one to try.
            Some(Flow::Static) if rejected.is_some() => Ok(FlowToken::None),
            Some(Flow::Static) => self.static_token(server).await,
            Some(Flow::ClientCredentials | Flow::Enterprise) => {
                let refused = rejected.and_then(|c| c.bearer.as_ref());
                self.m2m_token(server, refused).await
            }
            Some(Flow::AuthorizationCode) => self.user_token(server, rejected).await,
            None => self.unconfigured_token(server, rejected).await,
        }
    }

    /// The configured `auth_value`, as a bearer token or an API key header.
    async fn static_token(&self, server: &ServerConfig) -> Result<FlowToken, UpstreamError> {
        let name = server.name.as_str();
        let r = server
            .auth_value
            .as_ref()
            .ok_or_else(|| UpstreamError::Setup {
                server: name.into(),
                detail: "auth_value is missing".into(),
            })?;
        let value = self
            .inner
            .deps
            .vault
            .resolve(r)
            .await
            .map_err(vault_err(name))?;
        Ok(if server.auth_type == AuthType::ApiKey {
            FlowToken::ApiKey(value)
        } else {
            FlowToken::Bearer(value)
        })
    }

    /// Nothing configured: a token from an earlier sign-in is used when there is one. A keychain
    /// that cannot be read (locked, not running) does not stop a server that needs no token: the
    /// request goes without one, and only the upstream's 401 makes the keychain matter (then
    /// its error is the answer).
    async fn unconfigured_token(
        &self,
        server: &ServerConfig,
        rejected: Option<&Credential>,
    ) -> Result<FlowToken, UpstreamError> {
        let name = server.name.as_str();
        let stored = match tokens::load(&self.inner.deps.vault, name).await {
            Ok(stored) => stored.is_some(),
            Err(e) if rejected.is_none() => {
                tracing::debug!(server = name, error = %e, "keychain unreadable; trying without a token");
                false
            }
            Err(e) => return Err(vault_err(name)(e)),
        };
        if stored || rejected.is_some() {
            self.user_token(server, rejected).await
        } else {
            Ok(FlowToken::None)
        }
    }
}
