//! The company session: one browser sign-in (authorization code + PKCE) at the company identity
//! provider, run by the servers' own sign-in machinery (`authcode.rs`, `pending.rs`, the
//! gateway's `/oauth/callback`) over a stand-in server entry named [`SESSION`], whose URL is the
//! identity provider's issuer. Its tokens — the ID token, the provider's refresh token — live in
//! the vault like a server's; `refresh.rs` renews them (single-flight) when the ID token is due.

use std::sync::Arc;

use base64::Engine;

use crate::config::{AuthType, EnterpriseConfig, OAuthFlow, ServerConfig, ServerName, Transport};
use crate::opener::Opener;
use crate::secret::Secret;
use crate::sync::lock;

use super::super::discovery::{self, same_issuer, Discovery};
use super::super::registration::{self, ClientInfo};
use super::super::tokens::{self, renewal_margin};
use super::super::{now, vault_err, SignIn, Upstream, UpstreamError};
use super::SESSION;

/// What the person sees of the company session (never a token).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CompanySession {
    pub signed_in: bool,
    /// When the ID token expires (unix seconds); it is renewed before then while
    /// `renewable`.
    pub expires_at: Option<u64>,
    /// A refresh token is kept and was not refused: renewals need nobody.
    pub renewable: bool,
}

/// The stand-in server entry the company sign-in runs as.
pub fn session_server(company: &EnterpriseConfig) -> ServerConfig {
    ServerConfig {
        name: ServerName::internal(SESSION),
        url: company.issuer.clone(),
        transport: Transport::Http,
        auth_type: AuthType::OAuth2,
        auth_value: None,
        oauth_flow: Some(OAuthFlow::AuthorizationCode),
        client_id: Some(company.client_id.clone()),
        client_secret: company.client_secret.clone(),
        token_url: None,
        authorization_url: None,
        registration_url: None,
        client_id_metadata_url: None,
        audience: None,
        scopes: company.scopes.clone(),
        headers: Default::default(),
        delegate_auth_to_upstream: false,
        // The ID token is for the broker itself, not for a resource.
        send_resource: false,
        // The company sign-in's tokens stay bearer tokens (its ID token is what is used).
        dpop: Some(false),
        authorization_params: offline_consent(&company.scopes),
        token_endpoint_auth_method: None,
        private_key: None,
        assertion_audience: None,
        assertion: None,
        allowed_tools: None,
        disallowed_tools: Vec::new(),
        enabled: true,
        needs_setup: None,
        enterprise: None,
    }
}

/// OpenID Connect Core §11: asking for `offline_access` (a refresh token, so renewals need
/// nobody) takes `prompt=consent`, or a conforming provider drops the scope.
fn offline_consent(scopes: &[String]) -> std::collections::BTreeMap<String, String> {
    let offline = scopes.iter().any(|s| s == "offline_access");
    let prompt = offline.then(|| ("prompt".to_string(), "consent".to_string()));
    prompt.into_iter().collect()
}

/// `exp` and `iat` of a JWT, read without verifying it: the ID token came straight from the
/// identity provider's token endpoint, and these only say when to renew it.
fn jwt_times(token: &str) -> Option<(u64, Option<u64>)> {
    let payload = token.split('.').nth(1)?;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bytes = engine.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some((claims["exp"].as_u64()?, claims["iat"].as_u64()))
}

/// Whether an ID token should be renewed before it is exchanged again (the renewal margin of
/// its lifetime is left); a token without a readable `exp` is left to the provider to judge.
pub fn id_token_due(token: &str, now: u64) -> bool {
    match jwt_times(token) {
        Some((exp, iat)) => now + renewal_margin(exp.saturating_sub(iat.unwrap_or(now))) >= exp,
        None => false,
    }
}

impl Upstream {
    /// Starts the company sign-in in the browser (a user action only: tray, CLI `login
    /// --enterprise`). The callback is the servers' own; `Event::SignInFinished` for
    /// [`SESSION`] says it worked, and every enterprise server is usable again.
    pub async fn sign_in_company(
        &self,
        company: &EnterpriseConfig,
        opener: &Opener,
    ) -> Result<SignIn, UpstreamError> {
        let session = session_server(company);
        let started = match self.idp_discovery(company).await {
            Ok(d) => self.begin_sign_in(&session, opener, None, Some(d)).await,
            Err(e) => Err(e),
        };
        self.failed_start(&session, started)
    }

    /// Ends the company session: revokes at the identity provider when it offers revocation,
    /// and deletes it here. Every enterprise server among `servers` is signed out too (its
    /// token revoked where offered, deleted, its cache dropped): a token got through the
    /// company session must not outlive it, so the next request says "needs company sign-in".
    pub async fn sign_out_company<'a>(
        &self,
        company: &EnterpriseConfig,
        servers: impl IntoIterator<Item = &'a ServerConfig>,
    ) -> Result<(), UpstreamError> {
        self.do_sign_out(&session_server(company)).await?;
        let via_company = |s: &&ServerConfig| s.oauth_flow == Some(OAuthFlow::Enterprise);
        for server in servers.into_iter().filter(via_company) {
            self.do_sign_out(server).await?;
        }
        Ok(())
    }

    /// The company session as the person sees it.
    pub async fn company_session(&self, company: &EnterpriseConfig) -> CompanySession {
        let session = session_server(company);
        match tokens::load(&self.inner.deps.vault, SESSION).await {
            Ok(Some(s)) if s.meta.server_url.as_deref() == Some(session.url.as_str()) => {
                CompanySession {
                    signed_in: s.id_token.is_some(),
                    expires_at: s
                        .id_token
                        .as_ref()
                        .and_then(|t| jwt_times(t.expose()))
                        .map(|t| t.0),
                    renewable: s.refresh.is_some() && !s.meta.refresh_rejected,
                }
            }
            _ => CompanySession::default(),
        }
    }

    /// The company sign-in's ID token, renewed first when due (or when `renew`: the provider
    /// just refused it), and the provider's token endpoint.
    pub(super) async fn company_id_token(
        &self,
        company: &EnterpriseConfig,
        renew: bool,
    ) -> Result<(Secret, String), UpstreamError> {
        let session = session_server(company);
        let vault = &self.inner.deps.vault;
        let load = || async {
            tokens::load(vault, SESSION)
                .await
                .map_err(vault_err(SESSION))
        };
        let never = || {
            self.needs_sign_in(
                &session.name,
                format!("nobody has signed in to {} yet", company.name),
            )
        };
        let s = load().await?.ok_or_else(never)?;
        if s.meta.server_url.as_deref() != Some(session.url.as_str()) {
            let why = format!(
                "the company identity provider changed to {} since the sign-in",
                company.issuer
            );
            return Err(self.needs_sign_in(&session.name, why));
        }
        let now = now();
        let due = renew
            || s.id_token
                .as_ref()
                .is_none_or(|t| id_token_due(t.expose(), now));
        let s = if due {
            // Due now for `refresh.rs`, which renews it once for every caller (or says why not).
            let mut meta = s.meta.clone();
            meta.expires_at = Some(now);
            tokens::save_meta(vault, SESSION, &meta)
                .await
                .map_err(vault_err(SESSION))?;
            self.user_token(&session, None).await?;
            load().await?.ok_or_else(never)?
        } else {
            s
        };
        let id_token = s.id_token.ok_or_else(|| {
            let why = format!(
                "{} sent no ID token (is \"openid\" among the enterprise scopes?)",
                company.name
            );
            self.needs_sign_in(&session.name, why)
        })?;
        Ok((id_token, self.idp_token_endpoint(company).await?))
    }

    /// The broker's client at the identity provider.
    pub(super) async fn company_client(
        &self,
        company: &EnterpriseConfig,
        methods: Option<&[String]>,
    ) -> Result<ClientInfo, UpstreamError> {
        let session = session_server(company);
        let client = registration::configured_client(&self.inner.deps.vault, &session, methods);
        client.await?.ok_or_else(|| UpstreamError::Setup {
            server: SESSION.into(),
            detail: "the enterprise block has no client_id".into(),
        })
    }

    /// The identity provider's token endpoint: the one the sign-in recorded, else its metadata's.
    async fn idp_token_endpoint(
        &self,
        company: &EnterpriseConfig,
    ) -> Result<String, UpstreamError> {
        let record = registration::load_record(&self.inner.deps.data_dir, SESSION);
        if let Some(e) = record
            .endpoints
            .filter(|e| same_issuer(&e.issuer, company.issuer.as_str()))
        {
            return Ok(e.token_endpoint);
        }
        let d = self.idp_discovery(company).await?;
        let meta = d.metadata.as_ref();
        meta.and_then(|m| m.token_endpoint.clone())
            .ok_or_else(|| UpstreamError::Setup {
                server: SESSION.into(),
                detail: format!(
                    "the identity provider {} names no token endpoint in its metadata",
                    company.issuer
                ),
            })
    }

    /// The identity provider's metadata as a discovery (what the sign-in machinery reads),
    /// fetched once per process.
    async fn idp_discovery(
        &self,
        company: &EnterpriseConfig,
    ) -> Result<Arc<Discovery>, UpstreamError> {
        let state = self.state(&ServerName::internal(SESSION));
        if let Some(d) = lock(&state.discovery)
            .clone()
            .filter(|d| d.server_url == company.issuer)
        {
            return Ok(d);
        }
        let mut notes = Vec::new();
        let issuer = company.issuer.as_str();
        let Some(meta) = discovery::fetch_as_metadata(&self.inner.http, issuer, &mut notes).await
        else {
            return Err(UpstreamError::Unreachable {
                server: SESSION.into(),
                url: issuer.into(),
                cause: format!(
                    "the company identity provider's metadata could not be read: {}",
                    notes.join("; ")
                )
                .into(),
            });
        };
        let d = Arc::new(Discovery {
            server_url: company.issuer.clone(),
            probe_status: None,
            unreachable: None,
            bearer: None,
            prm: None,
            issuer: Some(meta.issuer.clone()),
            metadata: Some(meta),
            legacy_defaults: false,
            resource: issuer.into(),
            notes,
        });
        *lock(&state.discovery) = Some(d.clone());
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(r#"{"alg":"none"}"#),
            e.encode(claims.to_string())
        )
    }

    #[test]
    fn an_id_token_is_due_within_the_renewal_margin_of_its_lifetime() {
        let t = jwt(serde_json::json!({"iat": 1000, "exp": 4600}));
        assert!(!id_token_due(&t, 1000));
        assert!(!id_token_due(&t, 4600 - 721));
        assert!(id_token_due(&t, 4600 - 720));
        assert!(id_token_due(&t, 5000));
    }

    #[test]
    fn an_id_token_without_a_readable_expiry_is_left_to_the_provider() {
        assert!(!id_token_due("not-a-jwt", 10));
        assert!(!id_token_due(&jwt(serde_json::json!({"sub": "x"})), 10));
    }
}
