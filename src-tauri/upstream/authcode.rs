//! Interactive sign-in: authorization code + PKCE S256 in the system browser, callback on the
//! gateway's own `/oauth/callback`; and sign-out (revoke when offered, always delete locally).

use std::sync::Arc;

use oauth2::{
    AuthUrl, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardRevocableToken,
};
use url::Url;

use crate::config::{ServerConfig, ServerName};
use crate::events::Event;
use crate::opener::{OpenError, Opener};
use crate::secret::Secret;
use crate::urlcheck::check_browser_url;

use super::discovery::Discovery;
use super::oauth::{self, base, parse_url, target_params, token_url, Grant, TokenCall};
use super::pending::{self, check_iss, Flow as PendingFlow};
use super::preflight::{self, SignInEndpoints};
use super::registration::{self, Refusal, REFUSED_AGAIN};
use super::signin::Prepared;
use super::timeline::StepKind;
use super::tokens;
use super::{hints, now, vault_err, CallbackQuery, SignIn, Upstream, UpstreamError};
use crate::sync::lock;

impl Upstream {
    pub(super) async fn start_sign_in(
        &self,
        server: &ServerConfig,
        opener: &Opener,
        scope: Option<String>,
    ) -> Result<SignIn, UpstreamError> {
        self.failed_start(
            server,
            self.begin_sign_in(server, opener, scope, None).await,
        )
    }

    /// A sign-in refused before it started is a failed sign-in all the same.
    pub(super) fn failed_start<T>(
        &self,
        server: &ServerConfig,
        started: Result<T, UpstreamError>,
    ) -> Result<T, UpstreamError> {
        if let Err(e) = &started {
            // Refused before the browser opened is a failed sign-in all the same: the timeline
            // and the status line say why, with the fix.
            self.emit(Event::SignInFailed {
                server: server.name.clone(),
                reason: e.to_string(),
            });
        }
        started
    }

    pub(super) async fn begin_sign_in(
        &self,
        server: &ServerConfig,
        opener: &Opener,
        scope: Option<String>,
        discovered: Option<Arc<Discovery>>,
    ) -> Result<SignIn, UpstreamError> {
        let name = server.name.as_str();
        preflight::check_flow(server)?;
        let d = match discovered {
            Some(d) => d,
            None => self.discover(server).await,
        };
        let SignInEndpoints {
            authorize,
            token,
            warnings,
        } = preflight::endpoints(&self.inner.http, server, &d).await?;
        let prepared = self
            .prepare_client(server, &d, scope, Some(authorize.clone()), token.clone())
            .await?;
        let token_endpoint = parse_url(name, &token)?;
        let (url, state, verifier) = self.authorization_request(server, &prepared, &authorize)?;
        let rx = self.await_callback(server, prepared, verifier, token_endpoint, &state)?;
        self.emit(Event::SignInStarted {
            server: server.name.clone(),
        });
        self.open_browser(name, opener, &url, &state).await?;
        self.expire_later();
        Ok(SignIn {
            authorize_url: url,
            warnings,
            done: rx,
        })
    }

    /// Records the sign-in and the flow the browser's return with `state` completes; the
    /// receiver resolves when it does (or the flow expires).
    fn await_callback(
        &self,
        server: &ServerConfig,
        prepared: Prepared,
        verifier: PkceCodeVerifier,
        token_endpoint: Url,
        state: &str,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<(), String>>, UpstreamError> {
        let Prepared {
            client,
            issuer,
            asked,
            resource,
            endpoints,
            reg,
        } = prepared;
        let record = self.save_sign_in(server.name.as_str(), endpoints, reg)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let flow = PendingFlow {
            server: server.clone(),
            client,
            verifier,
            issuer,
            iss_supported: record.endpoints.as_ref().is_some_and(|e| e.iss_supported),
            token_endpoint,
            redirect_uri: self.inner.deps.redirect_uri.clone(),
            resource,
            scope: asked,
            created_at: now(),
            done: Some(tx),
        };
        let dropped = lock(&self.inner.pending).insert(state.to_string(), flow, now());
        self.fail_flows(
            dropped,
            "the sign-in expired before the browser came back; start it again",
        );
        Ok(rx)
    }

    /// The address the browser opens: PKCE S256, a fresh `state`, the scope, the target
    /// (`resource`, `audience`) and the config's extra parameters; checked like every URL
    /// that reaches a browser.
    fn authorization_request(
        &self,
        server: &ServerConfig,
        prepared: &Prepared,
        authorize: &str,
    ) -> Result<(Url, String, PkceCodeVerifier), UpstreamError> {
        let name = server.name.as_str();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let c = base(&prepared.client)
            .set_auth_uri(AuthUrl::from_url(parse_url(name, authorize)?))
            .set_redirect_uri(RedirectUrl::from_url(self.inner.deps.redirect_uri.clone()));
        let mut req = c
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge);
        if let Some(scope) = &prepared.asked {
            req = req.add_scopes(scope.split_whitespace().map(|s| Scope::new(s.to_string())));
        }
        let target = target_params(prepared.resource.as_deref(), server.audience.as_deref());
        for (k, v) in target {
            req = req.add_extra_param(k, v);
        }
        for (k, v) in &server.authorization_params {
            req = req.add_extra_param(k.clone(), v.clone());
        }
        let (url, state) = req.url();
        let url = check_browser_url(url.as_str()).map_err(|p| UpstreamError::Protocol {
            server: name.into(),
            detail: format!("the authorization URL {p}"),
        })?;
        Ok((url, state.secret().clone(), verifier))
    }

    /// Opens the browser off the async workers (launching one starts a process and may
    /// block). A URL the opener refuses ends the sign-in; a browser that would not start leaves
    /// it waiting (the address is shown to the person too).
    async fn open_browser(
        &self,
        name: &str,
        opener: &Opener,
        url: &Url,
        state: &str,
    ) -> Result<(), UpstreamError> {
        let (o, target) = (opener.clone(), url.to_string());
        let opened = tokio::task::spawn_blocking(move || o.open(&target))
            .await
            .map_err(|e| UpstreamError::Setup {
                server: name.into(),
                detail: format!("the browser launcher failed: {e}"),
            })?;
        match opened {
            Ok(()) => Ok(()),
            Err(e @ OpenError::BadUrl(_)) => {
                let _ = lock(&self.inner.pending).take(state, now());
                Err(UpstreamError::Protocol {
                    server: name.into(),
                    detail: e.to_string(),
                })
            }
            Err(e @ OpenError::Launch(..)) => {
                tracing::warn!(server = name, "{e}");
                Ok(())
            }
        }
    }

    /// Ends the sign-ins nobody finished in time, once their time is up.
    fn expire_later(&self) {
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(pending::TTL + 1)).await;
            let expired = lock(&me.inner.pending).prune(now());
            me.fail_flows(
                expired,
                "the sign-in expired (it must finish within 10 minutes); start it again",
            );
        });
    }

    fn fail_flows(&self, flows: Vec<PendingFlow>, why: &str) {
        for mut f in flows {
            self.emit(Event::SignInFailed {
                server: f.server.name.clone(),
                reason: why.into(),
            });
            if let Some(done) = f.done.take() {
                let _ = done.send(Err(why.into()));
            }
        }
    }

    pub(super) async fn finish_sign_in(
        &self,
        query: &CallbackQuery,
    ) -> Result<ServerName, UpstreamError> {
        let unknown = |detail: String| UpstreamError::Protocol {
            server: "(unknown)".into(),
            detail,
        };
        let state = query.state.as_deref().ok_or_else(|| unknown("the sign-in response has no state parameter; start the sign-in again from the broker".into()))?;
        let mut flow = lock(&self.inner.pending)
            .take(state, now())
            .map_err(|e| unknown(e.to_string()))?;
        let server = flow.server.name.clone();
        let done = flow.done.take();
        let result = self.exchange(flow, query).await;
        self.conclude(&server, &result, done);
        result.map(|_| server)
    }

    async fn exchange(
        &self,
        flow: PendingFlow,
        query: &CallbackQuery,
    ) -> Result<(), UpstreamError> {
        let name = flow.server.name.as_str();
        let code = callback_code(&flow, query)?;
        let data_dir = &self.inner.deps.data_dir;
        let call = TokenCall {
            http: &self.inner.http,
            data_dir,
            server: name,
            url: token_url(name, flow.token_endpoint.as_str())?,
            params: target_params(flow.resource.as_deref(), None),
            dpop: self
                .dpop_if(&flow.server.name, self.sign_in_binds(&flow.server))
                .await?,
        };
        let code = Grant::Code {
            code: code.to_string(),
            verifier: Secret::new(flow.verifier.secret().clone()),
            redirect: flow.redirect_uri.clone(),
        };
        let sent = oauth::grant(call, flow.client.clone(), code).await;
        let resp = match sent {
            Ok((resp, method)) => {
                let detail = format!(
                    "authorization code exchanged at {} with client authentication {}",
                    flow.token_endpoint,
                    method.as_str()
                );
                self.note(&flow.server.name, StepKind::SignIn, true, &detail);
                resp
            }
            Err(mut f) => {
                if f.oauth_error.as_deref() == Some("invalid_client")
                    && registration::refused_dcr(data_dir, name) == Refusal::Again
                {
                    f.detail = format!("{}; {REFUSED_AGAIN}", f.detail);
                }
                return Err(f.into_error(name));
            }
        };
        self.keep_tokens(&flow.server, &resp, flow.scope.clone())
            .await
    }

    pub(super) async fn do_sign_out(&self, server: &ServerConfig) -> Result<(), UpstreamError> {
        let name = server.name.as_str();
        let vault = &self.inner.deps.vault;
        // Reading first: a locked keychain fails here, before anything is deleted.
        let stored = tokens::load(vault, name).await.map_err(vault_err(name))?;
        let record = registration::load_record(&self.inner.deps.data_dir, name);
        if let (Some(s), Some(endpoints), Some(reg)) =
            (&stored, &record.endpoints, &record.registration)
        {
            if let Some(revocation) = &endpoints.revocation_endpoint {
                match self.client_for(server, &record, reg.method).await {
                    Ok(client) => {
                        let mut list = Vec::new();
                        if let Some(r) = &s.refresh {
                            list.push(StandardRevocableToken::RefreshToken(
                                oauth2::RefreshToken::new(r.expose().to_string()),
                            ));
                        }
                        list.push(StandardRevocableToken::AccessToken(
                            oauth2::AccessToken::new(s.access.expose().to_string()),
                        ));
                        for t in list {
                            if let Err(why) =
                                oauth::revoke(&self.inner.http, &client, revocation, t).await
                            {
                                tracing::warn!(server = name, "token revocation failed (tokens are deleted locally anyway): {why}");
                            }
                        }
                    }
                    Err(e) => tracing::warn!(server = name, "cannot revoke: {e}"),
                }
            }
        }
        tokens::delete(vault, name).await.map_err(vault_err(name))?;
        self.forget_dpop_key(&server.name).await?;
        {
            let state = self.state(&server.name);
            let mut flight = state.flight.lock().await;
            flight.m2m = None;
            flight.m2m_failure = None;
            flight.failures = 0;
            flight.retry_after = None;
        }
        self.emit(Event::SignedOut {
            server: server.name.clone(),
        });
        Ok(())
    }
}

/// The code the browser brought back, once the response is known to come from the flow's
/// authorization server (RFC 9207 `iss`) and is not a refusal.
fn callback_code<'q>(
    flow: &PendingFlow,
    query: &'q CallbackQuery,
) -> Result<&'q str, UpstreamError> {
    let name = flow.server.name.as_str();
    let rejected = |detail: String| UpstreamError::AuthRejected {
        server: name.into(),
        detail,
    };
    check_iss(&flow.issuer, flow.iss_supported, query.iss.as_deref()).map_err(rejected)?;
    if let Some(error) = &query.error {
        return Err(rejected(format!(
            "the authorization server refused the sign-in: {}",
            hints::oauth_refusal(error, query.error_description.as_deref())
        )));
    }
    query
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| UpstreamError::Protocol {
            server: name.into(),
            detail: "the sign-in response has no code".into(),
        })
}
