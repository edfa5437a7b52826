//! Client credentials (machine to machine): the client authentication of [`clientauth`] (what
//! the metadata says, one fallback, what worked remembered), a cache that ends at the renewal
//! margin (`tokens::m2m_cache_ttl`: never past the token's life, half of it for a short-lived
//! token), and one token request per burst: callers queue on the server's flight lock and the
//! first one fetches for all. A failure is remembered for a short, growing backoff so a burst
//! cannot hammer a failing AS. Workload identity federation (`oauth_flow: "jwt_bearer"`) is the
//! same machine token by another grant: the platform's JWT, re-read for each request.

use crate::config::machine::AssertionSource;
use crate::config::{OAuthFlow, ServerConfig};
use crate::secret::Secret;

use super::assertion;
use super::discovery::{canonical_resource, AsMetadata, Discovery};
use super::formgrant;
use super::keyclient;
use super::oauth::{self, target_params, token_url, Grant, TokenCall, TokenFailure};
use super::registration::{self, ClientAuth};
use super::stepup::widen;
use super::timeline::StepKind;
use super::tokens::{self, backoff, m2m_cache_ttl, ExpiresIn, Stored, TokenMeta, UpTokenResponse};
use super::{now, vault_err, FlowToken, Upstream, UpstreamError};
use crate::sync::lock;

/// A client-credentials token served from memory until `valid_until` (unix seconds).
pub struct Cached {
    pub token: Secret,
    pub valid_until: u64,
    /// Which client and token URL produced it; a config change makes it stale.
    pub key: String,
    /// DPoP-bound (sent with a proof).
    pub bound: bool,
}

impl Cached {
    fn flow_token(&self) -> FlowToken {
        match self.bound {
            true => FlowToken::Bound(self.token.clone()),
            false => FlowToken::Bearer(self.token.clone()),
        }
    }
}

/// A remembered failure: callers arriving before `until` get it without a new request.
#[derive(Clone)]
pub struct Failure {
    pub until: u64,
    pub key: String,
    pub failure: TokenFailure,
}

/// When a cached token made at `meta.obtained_at` stops being served.
pub fn deadline(meta: &TokenMeta) -> u64 {
    let expires_in = match meta.expires_at {
        Some(e) => ExpiresIn::Seconds(e.saturating_sub(meta.obtained_at) as i64),
        None => ExpiresIn::Missing,
    };
    meta.obtained_at + m2m_cache_ttl(expires_in).as_secs()
}

/// What a cached client-credentials token was made for: a change to any part means a new token.
fn cache_key(server: &ServerConfig) -> String {
    let mut audience = server
        .audience
        .as_deref()
        .map(|a| format!(" audience={a}"))
        .unwrap_or_default();
    // A token via the company sign-in is for that company's client: another one means a new token.
    if let (Some(e), Some(OAuthFlow::Enterprise)) = (&server.enterprise, server.oauth_flow) {
        audience.push_str(&format!(" via={} {}", e.issuer, e.client_id));
    }
    if let Some(source) = &server.assertion {
        audience.push_str(&format!(" workload={source}"));
    }
    format!(
        "{} {} {}{audience}",
        server.url,
        server.client_id.as_deref().unwrap_or(""),
        server
            .token_url
            .as_ref()
            .map(|u| u.as_str())
            .unwrap_or("discovered")
    )
}

impl Upstream {
    /// The server's client-credentials token; `refused` is a token the upstream just rejected.
    pub(super) async fn m2m_token(
        &self,
        server: &ServerConfig,
        refused: Option<&Secret>,
    ) -> Result<FlowToken, UpstreamError> {
        let name = server.name.as_str();
        let vault = &self.inner.deps.vault;
        // A step-up's wider scope is part of the key: tokens fetched before it are not reused.
        let key = match self.stepped_up(&server.name) {
            Some(extra) => format!("{} +{extra}", cache_key(server)),
            None => cache_key(server),
        };
        let state = self.state(&server.name);
        let mut flight = state.flight.lock().await;
        let now = now();
        if let Some(c) = &flight.m2m {
            if c.key == key && now < c.valid_until && refused.is_none_or(|r| *r != c.token) {
                return Ok(c.flow_token());
            }
        }
        if flight.m2m.is_none() && refused.is_none() {
            if let Some(s) = tokens::load(vault, name).await.map_err(vault_err(name))? {
                let until = deadline(&s.meta);
                if s.meta.m2m_key.as_deref() == Some(key.as_str()) && now < until {
                    flight.m2m = Some(Cached {
                        token: s.access.clone(),
                        valid_until: until,
                        key,
                        bound: s.bound(),
                    });
                    return Ok(s.into());
                }
            }
        }
        if let Some(f) = flight
            .m2m_failure
            .as_ref()
            .filter(|f| f.key == key && now < f.until)
        {
            return Err(f.failure.clone().into_error(name));
        }
        let fetched = match server.oauth_flow {
            Some(OAuthFlow::Enterprise) => self.fetch_enterprise(server, &key, now).await,
            _ => self.fetch_m2m(server, &key, now).await,
        };
        match fetched {
            Ok((stored, method)) => {
                let until = deadline(&stored.meta);
                tokens::save(vault, name, &stored)
                    .await
                    .map_err(vault_err(name))?;
                flight.m2m = Some(Cached {
                    token: stored.access.clone(),
                    valid_until: until,
                    key,
                    bound: stored.bound(),
                });
                flight.m2m_failure = None;
                flight.failures = 0;
                self.signed_in(&server.name);
                let detail = fetched_detail(server, &stored, method, now);
                self.note(&server.name, StepKind::Token, true, &detail);
                Ok(stored.into())
            }
            Err(Fetch::Setup(e)) => {
                self.note(&server.name, StepKind::Token, false, &e.to_string());
                Err(e)
            }
            Err(Fetch::Token(f)) => {
                let e = f.clone().into_error(name).to_string();
                self.note(&server.name, StepKind::Token, false, &e);
                flight.failures += 1;
                let until = now + backoff(flight.failures).as_secs();
                flight.m2m_failure = Some(Failure {
                    until,
                    key,
                    failure: f.clone(),
                });
                Err(f.into_error(name))
            }
        }
    }

    /// One machine token; a self-registered key client the authorization server no longer
    /// knows registers again and retries once ([`keyclient::lost_registration`]).
    async fn fetch_m2m(
        &self,
        server: &ServerConfig,
        key: &str,
        now: u64,
    ) -> Result<(Stored, ClientAuth), Fetch> {
        let data_dir = &self.inner.deps.data_dir;
        let mut retried = false;
        loop {
            match self.fetch_m2m_once(server, key, now).await {
                Err(Fetch::Token(mut f)) => {
                    let again = keyclient::lost_registration(data_dir, server, &mut f);
                    if retried || !again {
                        return Err(Fetch::Token(f));
                    }
                    let detail = format!("{}; registering again with the same key", f.detail);
                    self.note(&server.name, StepKind::Registration, false, &detail);
                    retried = true;
                }
                other => return other,
            }
        }
    }

    async fn fetch_m2m_once(
        &self,
        server: &ServerConfig,
        key: &str,
        now: u64,
    ) -> Result<(Stored, ClientAuth), Fetch> {
        let name = server.name.as_str();
        let discovery = match &server.token_url {
            Some(_) => lock(&self.state(&server.name).discovery).clone(),
            None => Some(self.discover(server).await),
        };
        let meta = discovery.as_ref().and_then(|d| d.metadata.clone());
        let endpoint = token_endpoint(server, meta.as_ref())?;
        let client = self.machine_client_of(server, meta.as_ref()).await?;
        let url = token_url(name, &endpoint).map_err(Fetch::Setup)?;
        let params = self.machine_params(server, discovery.as_deref());
        let algs = meta
            .as_ref()
            .and_then(|m| m.dpop_signing_alg_values_supported.as_deref());
        let dpop = self.dpop_if(&server.name, super::dpop::wanted(server.dpop, algs));
        let call = TokenCall {
            http: &self.inner.http,
            data_dir: &self.inner.deps.data_dir,
            server: name,
            url,
            params,
            dpop: dpop.await.map_err(Fetch::Setup)?,
        };
        let (resp, method) = match &server.assertion {
            Some(source) => self.jwt_bearer(call, client, source).await?,
            None => {
                let client = machine_client(name, client)?;
                let sent = oauth::grant(call, client, Grant::ClientCredentials).await;
                sent.map_err(Fetch::Token)?
            }
        };
        Ok((machine_stored(&resp, key, now), method))
    }

    /// The configured client; else, for a `private_key_jwt` server without `client_id`, the
    /// client it registered itself with its public key.
    async fn machine_client_of(
        &self,
        server: &ServerConfig,
        meta: Option<&AsMetadata>,
    ) -> Result<Option<registration::ClientInfo>, Fetch> {
        let methods = meta.and_then(|m| m.token_endpoint_auth_methods_supported.as_deref());
        let deps = &self.inner.deps;
        let configured = registration::configured_client(&deps.vault, server, methods).await;
        if let Some(c) = configured.map_err(Fetch::Setup)? {
            return Ok(Some(c.for_issuer(meta.map(|m| m.issuer.as_str()))));
        }
        let Some(meta) = meta.filter(|_| assertion::uses_key(server) && server.assertion.is_none())
        else {
            return Ok(None);
        };
        let ctx = registration::Ctx {
            http: &self.inner.http,
            vault: &deps.vault,
            data_dir: &deps.data_dir,
            redirect_uri: &deps.redirect_uri,
        };
        let made = registration::key_client(&ctx, server, meta).await;
        made.map(Some).map_err(Fetch::Setup)
    }

    /// What a machine token is asked for: `resource`, `audience` and the scope (widened by a
    /// step-up).
    fn machine_params(
        &self,
        server: &ServerConfig,
        discovery: Option<&Discovery>,
    ) -> Vec<(String, String)> {
        let scope = match discovery {
            Some(d) => d.scope(&server.scopes),
            None => (!server.scopes.is_empty()).then(|| server.scopes.join(" ")),
        };
        let scope = widen(scope.as_deref(), self.stepped_up(&server.name).as_deref());
        let resource = server.send_resource.then(|| {
            discovery
                .map(|d| d.resource.clone())
                .unwrap_or_else(|| canonical_resource(&server.url))
        });
        let mut params = target_params(resource.as_deref(), server.audience.as_deref());
        params.extend(scope.map(|s| ("scope".to_string(), s)));
        params
    }

    /// Workload identity federation: the platform's JWT, read now, as an RFC 7523 §2.1 grant.
    /// A refusal is the answer (no other grant is tried).
    async fn jwt_bearer(
        &self,
        mut call: TokenCall<'_>,
        client: Option<registration::ClientInfo>,
        source: &AssertionSource,
    ) -> Result<(UpTokenResponse, ClientAuth), Fetch> {
        let token = assertion::workload_token(source)
            .await
            .map_err(|e| setup(call.server, &e))?;
        call.params
            .push(("assertion".into(), token.expose().to_string()));
        let proved = call.dpop.as_ref().map(|d| d.thumbprint().to_string());
        let what = "jwt-bearer token request";
        let sent = formgrant::send(call, client, assertion::JWT_BEARER, what).await;
        let (mut resp, method): (UpTokenResponse, _) = sent.map_err(Fetch::Token)?;
        resp.proved_with = proved;
        Ok((resp, method))
    }
}

/// A machine token as kept (any grant): an expiry even when the answer gave none, no refresh
/// token (the grant is simply made again), and the cache key it was made for.
pub(super) fn machine_stored(resp: &UpTokenResponse, key: &str, now: u64) -> Stored {
    let mut stored = Stored::from_response(resp, None, now);
    if stored.meta.expires_at.is_none() {
        stored.meta.expires_at = Some(now + resp.expires_in_parsed().lifetime());
    }
    stored.refresh = None;
    stored.meta.has_refresh_token = false;
    stored.meta.m2m_key = Some(key.to_string());
    stored
}

/// The timeline's words for a machine token just fetched.
fn fetched_detail(server: &ServerConfig, stored: &Stored, method: ClientAuth, now: u64) -> String {
    let valid = match stored.meta.expires_at {
        Some(at) => format!("valid for {} s", at.saturating_sub(now)),
        None => "without an expiry".into(),
    };
    let bound = match &stored.meta.dpop_jkt {
        Some(jkt) => format!(", DPoP-bound (key thumbprint {jkt})"),
        None => String::new(),
    };
    if let (Some(company), Some(OAuthFlow::Enterprise)) = (&server.enterprise, server.oauth_flow) {
        let name = &company.name;
        return format!(
            "fetched, {valid}, by the jwt-bearer grant with an ID-JAG from {name}'s sign-in{bound}"
        );
    }
    match &server.assertion {
        Some(source) => format!("fetched, {valid}, by the jwt-bearer grant with the workload token from {source}{bound}"),
        None => format!("fetched, {valid}, with client authentication {}{bound}", method.as_str()),
    }
}

/// The configured token URL, else the discovered one.
fn token_endpoint(server: &ServerConfig, meta: Option<&AsMetadata>) -> Result<String, Fetch> {
    match (&server.token_url, meta.and_then(|m| m.token_endpoint.clone())) {
        (Some(u), _) => Ok(u.to_string()),
        (None, Some(u)) => Ok(u),
        (None, None) => Err(setup(server.name.as_str(), "a machine token needs a token endpoint: set \"token_url\", or make sure the server's authorization server publishes metadata")),
    }
}

/// The client of a client-credentials request: configured, with a secret or a key.
fn machine_client(
    name: &str,
    client: Option<registration::ClientInfo>,
) -> Result<registration::ClientInfo, Fetch> {
    let client = client.ok_or_else(|| {
        setup(
            name,
            "client_credentials needs \"client_id\" and \"client_secret\"",
        )
    })?;
    if client.secret.is_none() && client.key.is_none() {
        return Err(setup(name, "client_credentials needs \"client_secret\" (e.g. \"os.environ/VAR\"), or \"token_endpoint_auth_method\": \"private_key_jwt\" for a key instead"));
    }
    Ok(client)
}

fn setup(server: &str, detail: &str) -> Fetch {
    Fetch::Setup(UpstreamError::Setup {
        server: server.into(),
        detail: detail.into(),
    })
}

pub(super) enum Fetch {
    Setup(UpstreamError),
    Token(TokenFailure),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_deadline_is_the_cache_ttl_after_the_token_was_obtained() {
        let meta = |obtained_at, expires_at| TokenMeta {
            obtained_at,
            expires_at,
            ..TokenMeta::default()
        };
        assert_eq!(deadline(&meta(1000, Some(4600))), 1000 + 2880);
        assert_eq!(deadline(&meta(1000, Some(1030))), 1015);
        assert_eq!(deadline(&meta(1000, Some(1004))), 1002);
        assert_eq!(deadline(&meta(1000, Some(1000))), 1000);
        assert_eq!(
            deadline(&meta(1000, None)),
            1000 + tokens::DEFAULT_LIFETIME - tokens::renewal_margin(tokens::DEFAULT_LIFETIME)
        );
    }
}
