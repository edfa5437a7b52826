//! Device sign-in (RFC 8628) for upstreams whose authorization server advertises a
//! `device_authorization_endpoint`: the person confirms a short code in a browser on any device
//! (an SSH host, WSL or a container has none that reaches the callback). The client is
//! registered and recorded like the browser sign-in's ([`Upstream::prepare_client`]), the
//! requests go through the `oauth2` crate with the client's authentication plan, polling keeps
//! the server's interval (+5 s per `slow_down`), and the tokens are kept exactly as the browser
//! sign-in keeps them ([`Upstream::keep_tokens`]), so refresh works the same afterwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oauth2::{DeviceAuthorizationUrl, Scope, StandardDeviceAuthorizationResponse, TokenUrl};
use url::Url;

use crate::config::ServerConfig;
use crate::events::Event;
use crate::urlcheck::check_browser_url;

use super::clientauth;
use super::discovery::Discovery;
use super::http::OAuthHttp;
use super::oauth::{self, base, describe, parse_url, target_params, token_url, Grant};
use super::oauth::{PollSleep, TokenCall, TokenFailure};
use super::registration::{ClientAuth, ClientInfo};
use super::signin::Prepared;
use super::timeline::StepKind;
use super::tokens::UpTokenResponse;
use super::{hints, now, preflight, DeviceCode, DeviceSignIn, SignInKind, Started};
use super::{Upstream, UpstreamError};
use crate::opener::Opener;
use crate::sync::lock;

/// The grant type a client registers for, and polls with.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What polling needs, moved into its task.
struct Polling {
    client: ClientInfo,
    details: StandardDeviceAuthorizationResponse,
    token_endpoint: TokenUrl,
    /// The scope asked for (what was granted when the token response names none).
    asked: Option<String>,
    resource: Option<String>,
}

/// The device sign-in running for a server (one at a time; a new one replaces it).
pub(super) struct Running {
    id: u64,
    pub(super) code: DeviceCode,
    task: Option<tokio::task::AbortHandle>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Where a device sign-in asks for its code, and for the tokens.
pub struct CodeRequest<'a> {
    pub http: &'a reqwest::Client,
    pub data_dir: &'a std::path::Path,
    pub server: &'a str,
    pub url: Url,
    /// The token endpoint: what it last accepted from the client is tried first here too.
    pub token_endpoint: &'a str,
    pub scope: Option<&'a str>,
    /// `resource`, `audience` …
    pub params: Vec<(String, String)>,
}

/// Asks the device authorization endpoint for a code (RFC 8628 §3.1–3.2), authenticating the
/// client as at the token endpoint (one fallback to the other method on a refusal).
pub async fn request_code(
    r: CodeRequest<'_>,
    client: ClientInfo,
) -> Result<StandardDeviceAuthorizationResponse, TokenFailure> {
    let client = clientauth::with_remembered(client, r.data_dir, r.server, r.token_endpoint);
    let sent = clientauth::send(&client, |c| {
        let (http, url) = (r.http.clone(), r.url.clone());
        let params = c.auth_params().into_iter().chain(r.params.clone());
        let scopes: Vec<Scope> = r
            .scope
            .unwrap_or_default()
            .split_whitespace()
            .map(|s| Scope::new(s.to_string()))
            .collect();
        async move {
            let oh = OAuthHttp::new(http);
            let with_url = base(&c)
                .set_device_authorization_url(DeviceAuthorizationUrl::from_url(url.clone()));
            let mut req = with_url.exchange_device_code().add_scopes(scopes);
            for (k, v) in params {
                req = req.add_extra_param(k, v);
            }
            req.request_async(&oh).await.map_err(|e| {
                describe(
                    "device authorization request",
                    url.as_str(),
                    &oh.answer(),
                    e,
                )
            })
        }
    })
    .await;
    sent.map(|(details, _)| details)
}

/// Polls the token endpoint until the code is confirmed, refused or expired. `sleep` waits
/// between polls (the interval the server asked for, longer after `slow_down`), also before
/// the first one (RFC 8628 §3.5).
pub async fn poll(
    call: TokenCall<'_>,
    client: ClientInfo,
    details: StandardDeviceAuthorizationResponse,
    sleep: PollSleep,
) -> Result<(UpTokenResponse, ClientAuth), TokenFailure> {
    sleep(details.interval()).await;
    oauth::grant(call, client, Grant::Device { details, sleep }).await
}

/// What the person is shown; the verification addresses pass the browser URL check (they may
/// be opened, and become a QR code), and the code is made readable.
fn shown(
    name: &str,
    details: &StandardDeviceAuthorizationResponse,
    now: u64,
) -> Result<DeviceCode, UpstreamError> {
    let check = |u: &str| {
        check_browser_url(u)
            .map(|u| u.to_string())
            .map_err(|p| UpstreamError::Protocol {
                server: name.into(),
                detail: format!("the device verification address {p}"),
            })
    };
    Ok(DeviceCode {
        user_code: hints::readable(details.user_code().secret(), 64),
        verification_uri: check(details.verification_uri().url().as_str())?,
        verification_uri_complete: details
            .verification_uri_complete()
            .map(|u| check(u.secret()))
            .transpose()?,
        expires_at: now + details.expires_in().as_secs(),
    })
}

/// A device sign-in that did not end with tokens, in the person's words.
fn ended(name: &str, f: TokenFailure, code: &DeviceCode, expired: bool) -> UpstreamError {
    let again = format!("run `mcp-auth-broker login {name}` again");
    let detail = match f.oauth_error.as_deref() {
        _ if expired => format!(
            "the code {} expired before it was confirmed; {again} for a new one",
            code.user_code
        ),
        Some("expired_token") => format!(
            "the code {} expired before it was confirmed; {again} for a new one",
            code.user_code
        ),
        Some("access_denied") => format!(
            "the sign-in was refused on the verification page (access_denied); {again} to retry"
        ),
        _ => return f.into_error(name),
    };
    UpstreamError::AuthRejected {
        server: name.into(),
        detail,
    }
}

impl Upstream {
    /// Starts the sign-in `kind` asks for; `Auto` picks device sign-in when it is offered.
    pub(super) async fn start_kind(
        &self,
        server: &ServerConfig,
        opener: &Opener,
        kind: SignInKind,
    ) -> Result<Started, UpstreamError> {
        if kind == SignInKind::Browser {
            return self
                .start_sign_in(server, opener, None)
                .await
                .map(Started::Browser);
        }
        if let Err(e) = preflight::check_flow(server) {
            return self.failed_start(server, Err(e));
        }
        let d = self.discover(server).await;
        let offered = (d.metadata.as_ref()).and_then(|m| m.device_authorization_endpoint.clone());
        let started = match (kind, offered) {
            (_, Some(endpoint)) => self
                .start_device_sign_in(server, &d, &endpoint)
                .await
                .map(Started::Device),
            (SignInKind::Device, None) => Err(UpstreamError::Setup {
                server: server.name.to_string(),
                detail: format!("its authorization server does not offer device sign-in (no device_authorization_endpoint in its metadata); run `mcp-auth-broker login {} --no-browser` and paste back the address the browser ends on", server.name),
            }),
            _ => self
                .begin_sign_in(server, opener, None, Some(d))
                .await
                .map(Started::Browser),
        };
        self.failed_start(server, started)
    }

    /// Starts a device sign-in at `device_endpoint`, after the same registration and record
    /// as the browser sign-in; polling runs in the background until it ends.
    pub(super) async fn start_device_sign_in(
        &self,
        server: &ServerConfig,
        d: &Discovery,
        device_endpoint: &str,
    ) -> Result<DeviceSignIn, UpstreamError> {
        let name = server.name.as_str();
        let meta = d.metadata.as_ref();
        let token = (server.token_url.as_ref().map(Url::to_string))
            .or_else(|| meta.and_then(|m| m.token_endpoint.clone()))
            .ok_or_else(|| UpstreamError::Protocol {
                server: name.into(),
                detail: "the authorization server offers device sign-in but names no token endpoint; set \"token_url\" for this server".into(),
            })?;
        let device_url = parse_url(name, device_endpoint)?;
        let token_endpoint = token_url(name, &token)?;
        let authorize = (server.authorization_url.as_ref().map(Url::to_string))
            .or_else(|| meta.and_then(|m| m.authorization_endpoint.clone()));
        let prepared = self
            .prepare_client(server, d, None, authorize, token.clone())
            .await?;
        let Prepared {
            client,
            asked,
            resource,
            endpoints,
            reg,
            ..
        } = prepared;
        self.save_sign_in(name, endpoints, reg)?;
        let request = CodeRequest {
            http: &self.inner.http,
            data_dir: &self.inner.deps.data_dir,
            server: name,
            url: device_url,
            token_endpoint: &token,
            scope: asked.as_deref(),
            params: target_params(resource.as_deref(), server.audience.as_deref()),
        };
        let details = request_code(request, client.clone())
            .await
            .map_err(|f| f.into_error(name))?;
        let code = shown(name, &details, now())?;
        let polling = Polling {
            client,
            details,
            token_endpoint,
            asked,
            resource,
        };
        Ok(self.start_polling(server, polling, code))
    }

    /// Shows the code (recorded before the event, so the tray and dashboard it wakes show it)
    /// and polls in the background until the sign-in is confirmed, refused or expired.
    fn start_polling(
        &self,
        server: &ServerConfig,
        polling: Polling,
        code: DeviceCode,
    ) -> DeviceSignIn {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.replace_device(server, Some((id, code.clone())));
        self.emit(Event::SignInStarted {
            server: server.name.clone(),
        });
        let me = self.clone();
        let (up, shown_code) = (server.clone(), code.clone());
        let task = tokio::spawn(async move {
            let sleep: PollSleep = Arc::new(|d: Duration| Box::pin(tokio::time::sleep(d)));
            let got = me.device_tokens(&up, polling, sleep).await;
            let result = match got {
                Ok(()) => Ok(()),
                Err(Ok(f)) => Err(ended(
                    up.name.as_str(),
                    f,
                    &shown_code,
                    now() >= shown_code.expires_at,
                )),
                Err(Err(e)) => Err(e),
            };
            me.finish_device(&up, id);
            me.conclude(&up.name, &result, Some(tx));
        });
        if let Some(r) = lock(&self.state(&server.name).device).as_mut() {
            if r.id == id {
                r.task = Some(task.abort_handle());
            }
        }
        DeviceSignIn { code, done: rx }
    }

    /// Polls and keeps the tokens (`Err(Ok)`: the token endpoint's last word).
    async fn device_tokens(
        &self,
        server: &ServerConfig,
        p: Polling,
        sleep: PollSleep,
    ) -> Result<(), Result<TokenFailure, UpstreamError>> {
        let name = server.name.as_str();
        let call = TokenCall {
            http: &self.inner.http,
            data_dir: &self.inner.deps.data_dir,
            server: name,
            url: p.token_endpoint.clone(),
            params: target_params(p.resource.as_deref(), None),
            dpop: self
                .dpop_if(&server.name, self.sign_in_binds(server))
                .await
                .map_err(Err)?,
        };
        let (resp, method) = poll(call, p.client, p.details, sleep).await.map_err(Ok)?;
        let detail = format!(
            "device code confirmed; tokens from {} with client authentication {}",
            p.token_endpoint.as_str(),
            method.as_str()
        );
        self.note(&server.name, StepKind::SignIn, true, &detail);
        self.keep_tokens(server, &resp, p.asked).await.map_err(Err)
    }

    /// Records the running device sign-in for `server` (or none), ending the one it replaces.
    fn replace_device(&self, server: &ServerConfig, next: Option<(u64, DeviceCode)>) {
        let next = next.map(|(id, code)| Running {
            id,
            code,
            task: None,
        });
        let old = std::mem::replace(&mut *lock(&self.state(&server.name).device), next);
        if let Some(task) = old.and_then(|o| o.task) {
            task.abort();
        }
    }

    /// Forgets the device sign-in `id` once it ended (not a newer one that replaced it).
    fn finish_device(&self, server: &ServerConfig, id: u64) {
        let state = self.state(&server.name);
        let mut slot = lock(&state.device);
        if slot.as_ref().is_some_and(|r| r.id == id) {
            *slot = None;
        }
    }
}
