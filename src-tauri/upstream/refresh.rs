//! Keeping a signed-in user's token fresh (which token a request gets is `flowtoken.rs`): refresh ahead of
//! expiry (absolute times, so sleep/wake is handled on the next call), one refresh per server at
//! a time, the keychain checked writable before a refresh token is spent and the rotated one
//! persisted before the new access token is used (kept in memory if the keychain refuses it),
//! `invalid_grant` → "needs sign-in" once (no retry loop), transient failures backed off.

use crate::config::ServerConfig;
use crate::events::Event;
use crate::secret::Secret;

use super::discovery::same_issuer;
use super::oauth::TokenFailure;
use super::oauth::{self, target_params, token_url, Grant, TokenCall};
use super::registration::{self, ClientInfo, Method, Record, Refusal, Registration, REFUSED_AGAIN};
use super::tokens::{self, backoff, needs_refresh, Stored, UpTokenResponse};
use super::{
    now, vault_err, Credential, Flight, FlowToken, RefreshOutcome, Upstream, UpstreamError,
};
use crate::sync::lock;

impl Upstream {
    /// The signed-in user's access token, refreshed when due (or when `rejected` says the
    /// upstream refused it).
    pub(super) async fn user_token(
        &self,
        server: &ServerConfig,
        rejected: Option<&Credential>,
    ) -> Result<FlowToken, UpstreamError> {
        let vault = &self.inner.deps.vault;
        if vault.has_unsaved() {
            // A refreshed set the keychain refused earlier: written now if it accepts again.
            if let Err(e) = vault.save_unsaved().await {
                tracing::debug!(error = %e, "refreshed tokens still wait for the keychain");
            }
        }
        let s = self.bound_tokens(server).await?;
        if rejected.is_none() && !needs_refresh(&s.meta, now()) {
            return Ok(s.into());
        }
        // Boxed: the refresh is kilobytes of future, and inline it would make every call's
        // credential future that large (moved with every request's future).
        Box::pin(self.refreshed_token(server, rejected)).await
    }

    /// [`Upstream::user_token`] when a refresh is due or the upstream refused the token: once
    /// per server at a time.
    async fn refreshed_token(
        &self,
        server: &ServerConfig,
        rejected: Option<&Credential>,
    ) -> Result<FlowToken, UpstreamError> {
        let state = self.state(&server.name);
        let mut flight = state.flight.lock().await;
        // Another caller may have refreshed while this one waited.
        let s = self.bound_tokens(server).await?;
        let now = now();
        match rejected.and_then(|c| c.bearer.as_ref()) {
            Some(r) if *r != s.access => return Ok(s.into()),
            None if rejected.is_none() && !needs_refresh(&s.meta, now) => return Ok(s.into()),
            _ => {}
        }
        let usable = rejected.is_none() && !s.expired(now);
        let Some(refresh) = self.refresh_to_spend(server, &s, &flight, now, usable)? else {
            return Ok(s.into());
        };
        let (record, reg) = self.sign_in_record(server, rejected.is_some()).await?;
        let result = self
            .refresh_grant(server, &record, &s, refresh.clone())
            .await?;
        match result {
            Ok(resp) => {
                let mut new = Stored::from_response(&resp, Some(refresh), now);
                new.meta.server_url = Some(server.url.to_string());
                new.meta.audience = server.audience.clone();
                flight.failures = 0;
                flight.retry_after = None;
                self.keep_refreshed(server, &new, now).await;
                Ok(new.into())
            }
            Err(f) => {
                self.refresh_refused(server, &s, reg.method, &f, now)
                    .await?;
                flight.failures += 1;
                flight.retry_after = Some(now + backoff(flight.failures).as_secs());
                if usable {
                    return Ok(s.into());
                }
                Err(f.into_error(server.name.as_str()))
            }
        }
    }

    /// The stored sign-in, if it still belongs to this server: a token is never sent to a
    /// changed URL, nor used for a changed audience.
    async fn bound_tokens(&self, server: &ServerConfig) -> Result<Stored, UpstreamError> {
        let name = server.name.as_str();
        let stored = tokens::load(&self.inner.deps.vault, name)
            .await
            .map_err(vault_err(name))?;
        let Some(s) = stored else {
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
        Ok(s)
    }

    /// The refresh token to spend now; `None` when there is none to spend (none kept or refused
    /// before, or transient failures still backing off) but the current token still serves
    /// (`usable`), else why the request cannot have a token.
    fn refresh_to_spend(
        &self,
        server: &ServerConfig,
        s: &Stored,
        flight: &Flight,
        now: u64,
        usable: bool,
    ) -> Result<Option<Secret>, UpstreamError> {
        let Some(refresh) = s.refresh.clone().filter(|_| !s.meta.refresh_rejected) else {
            if usable {
                return Ok(None);
            }
            return Err(self.needs_sign_in(
                &server.name,
                "the access token expired or was refused and there is no usable refresh token",
            ));
        };
        if let Some(at) = flight.retry_after.filter(|at| now < *at) {
            if usable {
                return Ok(None);
            }
            return Err(UpstreamError::Unreachable {
                server: server.name.to_string(),
                url: server.url.to_string(),
                cause: format!(
                    "token refresh failed {} time(s) in a row; the next attempt is in {} s",
                    flight.failures,
                    at - now
                )
                .into(),
            });
        }
        Ok(Some(refresh))
    }

    /// The endpoints and client this sign-in used. After a refusal (`rejected`), a server that
    /// now names another authorization server needs a new sign-in: the old one cannot be
    /// refreshed into a token it accepts (SEP-2352).
    async fn sign_in_record(
        &self,
        server: &ServerConfig,
        rejected: bool,
    ) -> Result<(Record, Registration), UpstreamError> {
        let record = registration::load_record(&self.inner.deps.data_dir, server.name.as_str());
        let (Some(endpoints), Some(reg)) = (&record.endpoints, record.registration.clone()) else {
            return Err(self.needs_sign_in(
                &server.name,
                "the broker has no record of the authorization server for this sign-in",
            ));
        };
        if rejected {
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
        Ok((record, reg))
    }

    /// Spends `refresh` at the recorded token endpoint. The outer `Err` is a failure before
    /// anything was sent (no client, a keychain that cannot take the rotated tokens); the inner
    /// result is the token endpoint's answer.
    async fn refresh_grant(
        &self,
        server: &ServerConfig,
        record: &Record,
        s: &Stored,
        refresh: Secret,
    ) -> Result<Result<UpTokenResponse, TokenFailure>, UpstreamError> {
        let name = server.name.as_str();
        let (Some(endpoints), Some(reg)) = (&record.endpoints, &record.registration) else {
            return Err(self.needs_sign_in(&server.name, "no sign-in is recorded"));
        };
        let client = self.client_for(server, record, reg.method).await?;
        let url = token_url(name, &endpoints.token_endpoint)?;
        // The rotated tokens must have somewhere to go before the old refresh token is spent:
        // a locked keychain fails here, and the sign-in stays as it was.
        tokens::save_meta(&self.inner.deps.vault, name, &s.meta)
            .await
            .map_err(vault_err(name))?;
        let call = TokenCall {
            http: &self.inner.http,
            data_dir: &self.inner.deps.data_dir,
            server: name,
            url,
            params: target_params(endpoints.resource.as_deref(), None),
            // A bound sign-in refreshes with the same key (RFC 9449 §5: its refresh token is
            // bound too when the client is public).
            dpop: self
                .dpop_if(&server.name, endpoints.dpop || s.meta.dpop_jkt.is_some())
                .await?,
        };
        let result = oauth::grant(call, client, Grant::Refresh(refresh)).await;
        Ok(result.map(|(resp, _)| resp))
    }

    /// Keeps a refreshed set (in memory when the keychain refuses it) and says so.
    async fn keep_refreshed(&self, server: &ServerConfig, new: &Stored, now: u64) {
        let name = server.name.as_str();
        let kept = tokens::save_or_keep(&self.inner.deps.vault, name, new).await;
        let unsaved = kept.err().map(|e| {
            tracing::warn!(server = name, error = %e, "the keychain refused the refreshed tokens; they are used from memory and saved once it accepts them");
            format!("kept in memory until the keychain accepts them: {e}")
        });
        self.record_refresh(&server.name, now, true, unsaved);
        self.signed_in(&server.name);
        self.emit(Event::TokenRefreshed {
            server: server.name.clone(),
        });
    }

    /// Says a refresh failed; a refused refresh token (or client) is marked and ends in "needs
    /// sign-in" (`Err`), once: it is never tried again. `Ok` means a transient failure.
    async fn refresh_refused(
        &self,
        server: &ServerConfig,
        s: &Stored,
        method: Method,
        f: &TokenFailure,
        now: u64,
    ) -> Result<(), UpstreamError> {
        let name = server.name.as_str();
        self.record_refresh(&server.name, now, false, Some(f.detail.clone()));
        self.emit(Event::RefreshFailed {
            server: server.name.clone(),
            reason: f.detail.clone(),
        });
        let invalid_client = f.oauth_error.as_deref() == Some("invalid_client");
        if !f.invalid_grant() && !invalid_client {
            return Ok(());
        }
        let mut hint = String::new();
        // The AS may have forgotten the registration: the next sign-in registers afresh, once;
        // a fresh one refused too is kept and the person told why.
        if invalid_client
            && method == Method::Dcr
            && registration::refused_dcr(&self.inner.deps.data_dir, name) == Refusal::Again
        {
            hint = format!("; {REFUSED_AGAIN}");
        }
        let mut meta = s.meta.clone();
        meta.refresh_rejected = true;
        tokens::save_meta(&self.inner.deps.vault, name, &meta)
            .await
            .map_err(vault_err(name))?;
        Err(self.needs_sign_in(
            &server.name,
            format!("the refresh token was refused: {}{hint}", f.detail),
        ))
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
                let issuer = record.endpoints.as_ref().map(|e| e.issuer.as_str());
                registration::configured_client(&self.inner.deps.vault, server, methods)
                    .await?
                    .map(|c| c.for_issuer(issuer))
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
                // A self-registered `private_key_jwt` client signs its refreshes (and
                // revocations) as it signed the code exchange.
                let client = registration::dcr_client(server, reg, secret, methods);
                let issuer = record
                    .endpoints
                    .as_ref()
                    .map_or(reg.issuer.as_str(), |e| e.issuer.as_str());
                super::keyclient::with_key(&self.inner.deps.vault, server, issuer, client).await
            }
        }
    }
}
