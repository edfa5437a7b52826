//! Enterprise-managed authorization (SEP-990, "cross-app access"): the person signs in once to
//! the company identity provider ([`session`]); for each server marked `oauth_flow:
//! "enterprise"` the broker exchanges that sign-in's ID token at the identity provider for an
//! ID-JAG (RFC 8693 token exchange, `audience` = the server's authorization server, `resource` =
//! the server) and redeems it at the server's authorization server with the jwt-bearer grant
//! (RFC 7523, [`grant`]). The access token it gets is a machine token in all but origin: cached,
//! single-flight and renewed by `m2m.rs`, which calls [`Upstream::fetch_enterprise`] for these
//! servers. Renewals need nobody while the company session lasts (its refresh token renews the
//! ID token); without one each such server says "needs company sign-in", and one sign-in brings
//! them all back (`Event::SignInFinished` for [`SESSION`]). Signing out of the company signs
//! these servers out too: no token got through the session outlives it.

pub mod grant;
pub mod session;

use crate::config::{EnterpriseConfig, ServerConfig};
use crate::secret::Secret;

use super::m2m::{machine_stored, Fetch};
use super::oauth::{token_url, TokenCall, TokenFailure};
use super::registration::{self, ClientAuth};
use super::stepup::widen;
use super::tokens::Stored;
use super::{Upstream, UpstreamError};

/// RFC 7523 §2.1.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// RFC 8693 §2.1.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The Identity Assertion JWT Authorization Grant's token type.
pub const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";
/// RFC 8693 §3: an OpenID Connect ID token as the subject token.
pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
/// What the company sign-in is kept under in the vault and the records: a name no server entry
/// can take (server names start with a letter or digit).
pub const SESSION: &str = "_company";

/// Where a server's ID-JAG is redeemed, from its discovery.
struct Target {
    /// The server's authorization server: the ID-JAG's `audience`.
    issuer: String,
    token_endpoint: String,
    /// The server: the ID-JAG's `resource`.
    resource: String,
    scope: Option<String>,
    auth_methods: Option<Vec<String>>,
    /// The redemption carries a DPoP proof and the token is kept bound (`dpop::wanted`).
    dpop: bool,
}

impl Upstream {
    /// A fresh access token for an enterprise server (the caller caches it, see `m2m.rs`).
    pub(super) async fn fetch_enterprise(
        &self,
        server: &ServerConfig,
        key: &str,
        now: u64,
    ) -> Result<(Stored, ClientAuth), Fetch> {
        let name = server.name.as_str();
        let setup = |detail: String| {
            Fetch::Setup(UpstreamError::Setup {
                server: name.into(),
                detail,
            })
        };
        let Some(company) = server.enterprise.clone() else {
            return Err(setup("oauth_flow is \"enterprise\" but no company identity provider is configured; add the top-level \"enterprise\" block".into()));
        };
        let target = self.target(server).await.map_err(Fetch::Setup)?;
        let jag = self.id_jag(server, &company, &target).await?;
        let vault = &self.inner.deps.vault;
        let methods = target.auth_methods.as_deref();
        let client = registration::configured_client(vault, server, methods)
            .await
            .map_err(Fetch::Setup)?
            .ok_or_else(|| setup("the enterprise flow needs \"client_id\": the client the server's authorization server knows the broker as".into()))?;
        let mut params = vec![("assertion".to_string(), jag.expose().to_string())];
        params.extend(target.scope.clone().map(|s| ("scope".to_string(), s)));
        let dpop = self.dpop_if(&server.name, target.dpop).await;
        let dpop = dpop.map_err(Fetch::Setup)?;
        let proved = dpop.as_ref().map(|d| d.thumbprint().to_string());
        let call = TokenCall {
            http: &self.inner.http,
            data_dir: &self.inner.deps.data_dir,
            server: name,
            url: token_url(name, &target.token_endpoint).map_err(Fetch::Setup)?,
            params,
            dpop,
        };
        let (granted, method) = grant::send(call, client, JWT_BEARER)
            .await
            .map_err(Fetch::Token)?;
        let mut resp = granted.response;
        resp.proved_with = proved;
        let mut stored = machine_stored(&resp, key, now);
        stored.meta.scope = stored.meta.scope.or(target.scope);
        Ok((stored, method))
    }

    /// The server's authorization server (issuer, token endpoint) and resource, discovered.
    async fn target(&self, server: &ServerConfig) -> Result<Target, UpstreamError> {
        let name = server.name.as_str();
        let d = self.discover(server).await;
        let Some(meta) = d.metadata.clone() else {
            let why = d.unreachable.clone().unwrap_or_else(|| d.notes.join("; "));
            return Err(UpstreamError::Setup {
                server: name.into(),
                detail: format!("the enterprise flow needs the server's authorization server metadata (its issuer is the ID-JAG's audience), and none was found: {why}"),
            });
        };
        let token_endpoint = match (&server.token_url, &meta.token_endpoint) {
            (Some(u), _) => u.to_string(),
            (None, Some(u)) => u.clone(),
            (None, None) => {
                return Err(UpstreamError::Setup {
                    server: name.into(),
                    detail: format!(
                        "the authorization server {} names no token endpoint; set \"token_url\"",
                        meta.issuer
                    ),
                })
            }
        };
        let scope = widen(
            d.scope(&server.scopes).as_deref(),
            self.stepped_up(&server.name).as_deref(),
        );
        Ok(Target {
            issuer: meta.issuer,
            token_endpoint,
            resource: d.resource.clone(),
            scope,
            auth_methods: meta.token_endpoint_auth_methods_supported,
            dpop: super::dpop::wanted(
                server.dpop,
                meta.dpop_signing_alg_values_supported.as_deref(),
            ),
        })
    }

    /// The ID-JAG for `target`: the company sign-in's ID token exchanged at the identity
    /// provider. An ID token the provider no longer takes renews the company session once.
    async fn id_jag(
        &self,
        server: &ServerConfig,
        company: &EnterpriseConfig,
        target: &Target,
    ) -> Result<Secret, Fetch> {
        let mut renew = false;
        loop {
            let session = self.company_id_token(company, renew).await;
            let (id_token, idp_token) =
                session.map_err(|e| Fetch::Setup(self.via(server, company, e)))?;
            match self
                .exchange_id_token(company, &idp_token, &id_token, target)
                .await
            {
                Ok(jag) => return Ok(jag),
                Err(f) if f.invalid_grant() && !renew => renew = true,
                Err(f) if f.invalid_grant() => {
                    let reason = format!(
                        "{} refused the company sign-in ({})",
                        company.name, f.detail
                    );
                    return Err(Fetch::Setup(
                        self.needs_company_sign_in(server, company, reason),
                    ));
                }
                Err(f) => return Err(Fetch::Token(f)),
            }
        }
    }

    /// RFC 8693 at the identity provider: ID token in, ID-JAG out.
    async fn exchange_id_token(
        &self,
        company: &EnterpriseConfig,
        idp_token: &str,
        id_token: &Secret,
        target: &Target,
    ) -> Result<Secret, TokenFailure> {
        let params = [
            ("requested_token_type", ID_JAG),
            ("subject_token", id_token.expose()),
            ("subject_token_type", ID_TOKEN),
            ("audience", target.issuer.as_str()),
            ("resource", target.resource.as_str()),
        ];
        let mut params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        params.extend(target.scope.clone().map(|s| ("scope".to_string(), s)));
        let url = token_url(SESSION, idp_token)
            .map_err(|e| TokenFailure::local(idp_token, e.to_string()))?;
        let call = TokenCall {
            http: &self.inner.http,
            data_dir: &self.inner.deps.data_dir,
            server: SESSION,
            url,
            params,
            dpop: None,
        };
        let client = self
            .company_client(company, None)
            .await
            .map_err(|e| TokenFailure::local(idp_token, e.to_string()))?;
        let (granted, _) = grant::send(call, client, TOKEN_EXCHANGE).await?;
        match granted.issued_token_type.as_deref() {
            None | Some(ID_JAG) => Ok(Secret::new(granted.response.access_token.secret().clone())),
            Some(other) => Err(TokenFailure::local(idp_token, format!("the token exchange at {idp_token} issued a token of type \"{other}\", not an ID-JAG ({ID_JAG}); the identity provider may not support enterprise-managed authorization for this client"))),
        }
    }

    /// A company-session error as this server's: no session is "needs company sign-in".
    fn via(
        &self,
        server: &ServerConfig,
        company: &EnterpriseConfig,
        e: UpstreamError,
    ) -> UpstreamError {
        match e {
            UpstreamError::NeedsSignIn { reason, .. } => {
                self.needs_company_sign_in(server, company, reason)
            }
            UpstreamError::NeedsCompanySignIn { reason, .. } => {
                self.needs_company_sign_in(server, company, reason)
            }
            UpstreamError::Unreachable { url, cause, .. } => UpstreamError::Unreachable {
                server: server.name.to_string(),
                url,
                cause: cause.map_text(|t| format!("{t} (the company identity provider)")),
            },
            other => other,
        }
    }

    /// Says once per change that `server` waits for the company sign-in.
    fn needs_company_sign_in(
        &self,
        server: &ServerConfig,
        company: &EnterpriseConfig,
        reason: String,
    ) -> UpstreamError {
        let _ = self.needs_sign_in(&server.name, format!("needs company sign-in: {reason}"));
        UpstreamError::NeedsCompanySignIn {
            server: server.name.to_string(),
            company: company.name.clone(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_company_session_name_is_one_no_server_entry_can_take() {
        assert!(crate::config::ServerName::parse(SESSION).is_err());
    }
}
