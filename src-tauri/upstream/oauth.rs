//! Token-endpoint calls through the `oauth2` crate (code exchange, refresh, client credentials,
//! revocation) over [`OAuthHttp`]; their failures are put in words by `tokenfailure.rs`
//! (re-exported here: they are what a token call returns).

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
};
use std::borrow::Cow;
use std::path::Path;

use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    PkceCodeVerifier, RedirectUrl, RefreshToken, StandardRevocableToken, TokenUrl,
};
use url::Url;

use crate::secret::Secret;

use super::clientauth;
use super::http::{checked, OAuthHttp};
use super::registration::{ClientAuth, ClientInfo};
pub use super::tokenfailure::{describe, TokenFailure};
use super::tokens::UpTokenResponse;
use super::UpstreamError;

/// [`Base`] with its token endpoint set.
type WithTokenUrl = oauth2::Client<
    BasicErrorResponse,
    UpTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// An `oauth2` client with our lenient token response type and no endpoints set yet.
pub type Base = oauth2::Client<
    BasicErrorResponse,
    UpTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
>;

pub fn base(client: &ClientInfo) -> Base {
    let mut c = Base::new(ClientId::new(client.client_id.clone()));
    if let Some(secret) = &client.secret {
        c = c.set_client_secret(ClientSecret::new(secret.expose().to_string()));
    }
    c.set_auth_type(match client.auth {
        ClientAuth::ClientSecretBasic => AuthType::BasicAuth,
        ClientAuth::ClientSecretPost | ClientAuth::None | ClientAuth::PrivateKeyJwt => {
            AuthType::RequestBody
        }
    })
}

/// What is asked of a token endpoint.
pub enum Grant {
    Code {
        code: String,
        verifier: Secret,
        redirect: Url,
    },
    Refresh(Secret),
    ClientCredentials,
    /// RFC 8628 polling for a device code until it is confirmed, refused or expired
    /// (`oauth2` keeps the server's interval, +5 s on each `slow_down`; `sleep` waits).
    Device {
        details: oauth2::StandardDeviceAuthorizationResponse,
        sleep: PollSleep,
    },
}

/// How device polling waits between requests: a parameter, so tests need no clock.
pub type PollSleep = std::sync::Arc<
    dyn Fn(std::time::Duration) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

impl Grant {
    fn what(&self) -> &'static str {
        match self {
            Grant::Code { .. } => "token request",
            Grant::Refresh(_) => "token refresh",
            Grant::ClientCredentials => "client-credentials token request",
            Grant::Device { .. } => "device token request",
        }
    }
}

/// Where a grant goes and what it carries besides the client's credentials.
pub struct TokenCall<'a> {
    pub http: &'a reqwest::Client,
    pub data_dir: &'a Path,
    pub server: &'a str,
    pub url: TokenUrl,
    /// `resource`, `audience`, `scope` …
    pub params: Vec<(String, String)>,
    /// The server's DPoP key when its tokens are bound: every request carries a proof (and the
    /// token endpoint's nonce, retried once when it asks for one).
    pub dpop: Option<std::sync::Arc<super::dpop::Prover>>,
}

/// Sends `grant` with `client`'s authentication plan ([`clientauth::send`]): what the endpoint
/// accepted last time first, one fallback, and what worked remembered.
pub async fn grant(
    call: TokenCall<'_>,
    client: ClientInfo,
    grant: Grant,
) -> Result<(UpTokenResponse, ClientAuth), TokenFailure> {
    let endpoint = call.url.as_str().to_string();
    let client = clientauth::with_remembered(client, call.data_dir, call.server, &endpoint);
    let mut sent = clientauth::send(&client, |client| {
        let (url, http, dpop) = (call.url.clone(), call.http.clone(), call.dpop.clone());
        let params = client.auth_params().into_iter().chain(call.params.clone());
        let (grant, endpoint) = (&grant, endpoint.clone());
        async move {
            let oh = OAuthHttp::with_dpop(http, dpop);
            request(
                base(&client).set_token_uri(url),
                grant,
                params,
                &oh,
                &endpoint,
            )
            .await
        }
    })
    .await;
    if let (Ok((resp, _)), Some(dpop)) = (&mut sent, &call.dpop) {
        resp.proved_with = Some(dpop.thumbprint().to_string());
    }
    if let Ok((_, method)) = &sent {
        clientauth::remember(
            call.data_dir,
            call.server,
            &endpoint,
            &client.client_id,
            *method,
        );
    }
    sent
}

/// One attempt of `grant` with the client (and its authentication) of this attempt.
async fn request(
    c: WithTokenUrl,
    grant: &Grant,
    params: impl Iterator<Item = (String, String)>,
    oh: &OAuthHttp,
    endpoint: &str,
) -> Result<UpTokenResponse, TokenFailure> {
    let answer = match grant {
        Grant::Code {
            code,
            verifier,
            redirect,
        } => {
            let redirect = RedirectUrl::from_url(redirect.clone());
            let mut req = c
                .exchange_code(AuthorizationCode::new(code.clone()))
                .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().to_string()))
                .set_redirect_uri(Cow::Owned(redirect));
            for (k, v) in params {
                req = req.add_extra_param(k, v);
            }
            req.request_async(oh).await
        }
        Grant::Refresh(token) => {
            let token = RefreshToken::new(token.expose().to_string());
            let mut req = c.exchange_refresh_token(&token);
            for (k, v) in params {
                req = req.add_extra_param(k, v);
            }
            req.request_async(oh).await
        }
        Grant::ClientCredentials => {
            let mut req = c.exchange_client_credentials();
            for (k, v) in params {
                req = req.add_extra_param(k, v);
            }
            req.request_async(oh).await
        }
        Grant::Device { details, sleep } => {
            let mut req = c.exchange_device_access_token(details);
            for (k, v) in params {
                req = req.add_extra_param(k, v);
            }
            let polled = req.request_async(oh, |d| sleep(d), None).await;
            return polled.map_err(|e| describe(grant.what(), endpoint, &oh.answer(), e));
        }
    };
    answer.map_err(|e| describe(grant.what(), endpoint, &oh.answer(), e))
}

/// Validates a token endpoint URL for `oauth2`.
pub fn token_url(server: &str, url: &str) -> Result<TokenUrl, UpstreamError> {
    let u = checked(url).map_err(|e| UpstreamError::Protocol {
        server: server.into(),
        detail: e.to_string(),
    })?;
    Ok(TokenUrl::from_url(u))
}

/// RFC 7009 revocation. `oauth2` refuses non-https revocation URLs; the broker only ever has an
/// http one for loopback ASes (validation refuses it elsewhere), so that case is sent by hand in
/// the same form. Failures are returned for logging only: sign-out never depends on them.
pub async fn revoke(
    http: &reqwest::Client,
    client: &ClientInfo,
    revocation: &str,
    token: StandardRevocableToken,
) -> Result<(), String> {
    let url = checked(revocation).map_err(|e| e.to_string())?;
    let oh = OAuthHttp::new(http.clone());
    let c = base(client).set_revocation_url(oauth2::RevocationUrl::from_url(url.clone()));
    match c.revoke_token(token.clone()) {
        Ok(req) => req
            .request_async(&oh)
            .await
            .map_err(|e| format!("revocation at {url} failed: {e}")),
        Err(oauth2::ConfigurationError::InsecureUrl(_)) => {
            let (value, hint) = match &token {
                StandardRevocableToken::AccessToken(t) => (t.secret().clone(), "access_token"),
                StandardRevocableToken::RefreshToken(t) => (t.secret().clone(), "refresh_token"),
                _ => return Err("unsupported token type for revocation".into()),
            };
            let mut form = vec![("token", value), ("token_type_hint", hint.to_string())];
            let mut req = http.post(url.clone()).timeout(super::http::TIMEOUT);
            match (&client.secret, client.auth) {
                (Some(s), ClientAuth::ClientSecretBasic) => {
                    req = req.basic_auth(&client.client_id, Some(s.expose()))
                }
                (Some(s), _) => {
                    form.push(("client_id", client.client_id.clone()));
                    form.push(("client_secret", s.expose().to_string()));
                }
                (None, _) => form.push(("client_id", client.client_id.clone())),
            }
            let resp = req.form(&form).send().await.map_err(|e| {
                format!(
                    "revocation at {url} failed: {}",
                    super::http::describe_reqwest(&e)
                )
            })?;
            if resp.status().is_success() {
                Ok(())
            } else {
                Err(format!(
                    "revocation at {url} answered HTTP {}",
                    resp.status().as_u16()
                ))
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The parameters that say what a token is for: RFC 8707 `resource` when the server sends it,
/// and the configured `audience` on the requests that mint a token for an API (the
/// authorization request and client_credentials) for ASes that want it.
pub fn target_params(resource: Option<&str>, audience: Option<&str>) -> Vec<(String, String)> {
    [("resource", resource), ("audience", audience)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string())))
        .collect()
}

pub fn parse_url(server: &str, text: &str) -> Result<Url, UpstreamError> {
    checked(text).map_err(|e| UpstreamError::Protocol {
        server: server.into(),
        detail: e.to_string(),
    })
}
