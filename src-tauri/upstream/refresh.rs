//! Which token a request gets, and keeping a signed-in user's token fresh: refresh ahead of
//! expiry (absolute times, so sleep/wake is handled on the next call), one refresh per server at
//! a time, the keychain checked writable before a refresh token is spent and the rotated one
//! persisted before the new access token is used (kept in memory if the keychain refuses it),
//! `invalid_grant` → "needs sign-in" once (no retry loop), transient failures backed off.

use crate::config::{AuthType, ServerConfig};
use crate::events::Event;
use crate::secret::Secret;

use super::discovery::same_issuer;
use super::oauth::{self, target_params, token_url, Grant, TokenCall};
use super::registration::{self, ClientInfo, Method, Record, Refusal, REFUSED_AGAIN};
use super::tokens::{self, backoff, needs_refresh, Stored};
use super::{
    classify, now, vault_err, Credential, Flow, FlowToken, RefreshOutcome, Upstream, UpstreamError,
};
use crate::sync::lock;

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
            Some(Flow::Static) => {
                if rejected.is_some() {
                    return Ok(FlowToken::None);
                }
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
            Some(Flow::ClientCredentials) => {
                let refused = rejected.and_then(|c| c.bearer.as_ref());
                self.m2m_token(server, refused).await.map(FlowToken::Bearer)
            }
            Some(Flow::AuthorizationCode) => self
                .user_token(server, rejected)
                .await
                .map(FlowToken::Bearer),
            None => {
                // Nothing configured: a token from an earlier sign-in is used when there is one.
                // A keychain that cannot be read (locked, not running) does not stop a server
                // that needs no token: the request goes without one, and only the upstream's
                // 401 makes the keychain matter (then its error is the answer).
                let stored = match tokens::load(&self.inner.deps.vault, name).await {
                    Ok(stored) => stored.is_some(),
                    Err(e) if rejected.is_none() => {
                        tracing::debug!(server = name, error = %e, "keychain unreadable; trying without a token");
                        false
                    }
                    Err(e) => return Err(vault_err(name)(e)),
                };
                if stored || rejected.is_some() {
                    self.user_token(server, rejected)
                        .await
                        .map(FlowToken::Bearer)
                } else {
                    Ok(FlowToken::None)
                }
            }
        }
    }

    /// The signed-in user's access token, refreshed when due (or when `rejected` says the
    /// upstream refused it).
    async fn user_token(
        &self,
        server: &ServerConfig,
        rejected: Option<&Credential>,
    ) -> Result<Secret, UpstreamError> {
        let name = server.name.as_str();
        let vault = &self.inner.deps.vault;
        if vault.has_unsaved() {
            // A refreshed set the keychain refused earlier: written now if it accepts again.
            if let Err(e) = vault.save_unsaved().await {
                tracing::debug!(error = %e, "refreshed tokens still wait for the keychain");
            }
        }
        let Some(s) = tokens::load(vault, name).await.map_err(vault_err(name))? else {
            return Err(self.needs_sign_in(&server.name, self.not_signed_in(&server.name)));
        };
        if let Some(was) = s
            .meta
            .server_url
            .as_deref()
            .filter(|u| *u != server.url.as_str())
        {
            return Err(self.needs_sign_in(
                &server.name,
                format!("the server's URL changed since sign-in (was {was}); its token is not sent to the new URL"),
            ));
        }
        if s.meta.audience != server.audience {
            let was = s.meta.audience.as_deref().unwrap_or("none");
            return Err(self.needs_sign_in(
                &server.name,
                format!("the configured audience changed since sign-in (was {was}); sign in again for a token for the new one"),
            ));
        }
        let refused = rejected.and_then(|c| c.bearer.as_ref());
        if rejected.is_none() && !needs_refresh(&s.meta, now()) {
            return Ok(s.access);
        }
        let state = self.state(&server.name);
        let mut flight = state.flight.lock().await;
        // Another caller may have refreshed while this one waited.
        let Some(s) = tokens::load(vault, name).await.map_err(vault_err(name))? else {
            return Err(self.needs_sign_in(&server.name, self.not_signed_in(&server.name)));
        };
        let now = now();
        match refused {
            Some(r) if *r != s.access => return Ok(s.access),
            None if rejected.is_none() && !needs_refresh(&s.meta, now) => return Ok(s.access),
            _ => {}
        }
        let usable = rejected.is_none() && !s.expired(now);
        let Some(refresh) = s.refresh.clone().filter(|_| !s.meta.refresh_rejected) else {
            if usable {
                return Ok(s.access);
            }
            return Err(self.needs_sign_in(
                &server.name,
                "the access token expired or was refused and there is no usable refresh token",
            ));
        };
        if let Some(at) = flight.retry_after.filter(|at| now < *at) {
            if usable {
                return Ok(s.access);
            }
            return Err(UpstreamError::Unreachable {
                server: name.into(),
                url: server.url.to_string(),
                cause: format!(
                    "token refresh failed {} time(s) in a row; the next attempt is in {} s",
                    flight.failures,
                    at - now
                ),
            });
        }
        let record = registration::load_record(&self.inner.deps.data_dir, name);
        let (Some(endpoints), Some(reg)) = (record.endpoints.clone(), record.registration.clone())
        else {
            return Err(self.needs_sign_in(
                &server.name,
                "the broker has no record of the authorization server for this sign-in",
            ));
        };
        if rejected.is_some() {
            // Refused by the server: if it now names another authorization server, the old
            // sign-in cannot be refreshed into a token it accepts (SEP-2352).
            let d = self.discover(server).await;
            let now_issuer = d
                .metadata
                .as_ref()
                .map(|m| m.issuer.clone())
                .or(d.issuer.clone());
            if let Some(new_issuer) =
                now_issuer.filter(|i| d.unreachable.is_none() && !same_issuer(i, &endpoints.issuer))
            {
                return Err(self.needs_sign_in(
                    &server.name,
                    format!("the server now uses the authorization server {new_issuer} (was {}); sign in again", endpoints.issuer),
                ));
            }
        }
        let client = self.client_for(server, &record, reg.method).await?;
        let url = token_url(name, &endpoints.token_endpoint)?;
        // The rotated tokens must have somewhere to go before the old refresh token is spent:
        // a locked keychain fails here, and the sign-in stays as it was.
        tokens::save_meta(vault, name, &s.meta)
            .await
            .map_err(vault_err(name))?;
        let data_dir = &self.inner.deps.data_dir;
        let call = TokenCall {
            http: &self.inner.http,
            data_dir,
            server: name,
            url,
            params: target_params(endpoints.resource.as_deref(), None),
        };
        let result = oauth::grant(call, client, Grant::Refresh(refresh.clone())).await;
        match result {
            Ok((resp, _)) => {
                let mut new = Stored::from_response(&resp, Some(refresh), now);
                new.meta.server_url = Some(server.url.to_string());
                new.meta.audience = server.audience.clone();
                let unsaved = tokens::save_or_keep(vault, name, &new).await.err().map(|e| {
                    tracing::warn!(server = name, error = %e, "the keychain refused the refreshed tokens; they are used from memory and saved once it accepts them");
                    format!("kept in memory until the keychain accepts them: {e}")
                });
                flight.failures = 0;
                flight.retry_after = None;
                self.record_refresh(&server.name, now, true, unsaved);
                self.signed_in(&server.name);
                self.emit(Event::TokenRefreshed {
                    server: server.name.clone(),
                });
                Ok(new.access)
            }
            Err(f) => {
                self.record_refresh(&server.name, now, false, Some(f.detail.clone()));
                self.emit(Event::RefreshFailed {
                    server: server.name.clone(),
                    reason: f.detail.clone(),
                });
                let mut hint = String::new();
                if f.oauth_error.as_deref() == Some("invalid_client") && reg.method == Method::Dcr {
                    // The AS may have forgotten the registration: the next sign-in registers
                    // afresh, once; a fresh one refused too is kept and the person told why.
                    if registration::refused_dcr(data_dir, name) == Refusal::Again {
                        hint = format!("; {REFUSED_AGAIN}");
                    }
                }
                if f.invalid_grant() || f.oauth_error.as_deref() == Some("invalid_client") {
                    let mut meta = s.meta.clone();
                    meta.refresh_rejected = true;
                    tokens::save_meta(vault, name, &meta)
                        .await
                        .map_err(vault_err(name))?;
                    return Err(self.needs_sign_in(
                        &server.name,
                        format!("the refresh token was refused: {}{hint}", f.detail),
                    ));
                }
                flight.failures += 1;
                flight.retry_after = Some(now + backoff(flight.failures).as_secs());
                if usable {
                    return Ok(s.access);
                }
                Err(f.into_error(name))
            }
        }
    }

    fn record_refresh(
        &self,
        server: &crate::config::ServerName,
        at: u64,
        ok: bool,
        detail: Option<String>,
    ) {
        *lock(&self.state(server).last_refresh) = Some(RefreshOutcome { at, ok, detail });
    }

    /// The client a stored sign-in used (pre-registered from config, CIMD, or DCR from the vault).
    pub(super) async fn client_for(
        &self,
        server: &ServerConfig,
        record: &Record,
        method: Method,
    ) -> Result<ClientInfo, UpstreamError> {
        let name = server.name.as_str();
        let reg = record.registration.as_ref();
        let methods = record
            .endpoints
            .as_ref()
            .and_then(|e| e.auth_methods.as_deref());
        match method {
            Method::Preregistered => {
                registration::configured_client(&self.inner.deps.vault, server, methods)
                    .await?
                    .ok_or_else(|| {
                        self.needs_sign_in(&server.name, "the configured client_id was removed")
                    })
            }
            Method::Cimd | Method::Dcr => {
                let reg = reg.ok_or_else(|| {
                    self.needs_sign_in(&server.name, "no client registration is stored")
                })?;
                let secret = if reg.has_secret {
                    self.inner
                        .deps
                        .vault
                        .get(&reg.secret_key(name))
                        .await
                        .map_err(vault_err(name))?
                } else {
                    None
                };
                Ok(registration::dcr_client(server, reg, secret, methods))
            }
        }
    }
}
