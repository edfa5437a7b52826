//! Client credentials (machine to machine): the client authentication of [`clientauth`] (what
//! the metadata says, one fallback, what worked remembered), a cache that ends at the renewal
//! margin (`tokens::m2m_cache_ttl`: never past the token's life, half of it for a short-lived
//! token), and one token request per burst: callers queue on the server's flight lock and the
//! first one fetches for all. A failure is remembered for a short, growing backoff so a burst
//! cannot hammer a failing AS. Workload identity federation (`oauth_flow: "jwt_bearer"`) is the
//! same machine token by another grant: the platform's JWT, re-read for each request.

use crate::config::{OAuthFlow, ServerConfig};
use crate::secret::Secret;

/// The company sign-in's grant (`enterprise`) fetches and keeps its machine token as the
/// others do.
pub(super) use super::machine::{machine_stored, Fetch};
use super::oauth::TokenFailure;
use super::registration::ClientAuth;
use super::timeline::StepKind;
use super::tokens::{self, backoff, m2m_cache_ttl, ExpiresIn, Stored, TokenMeta};
use super::{now, vault_err, FlowToken, Upstream, UpstreamError};

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
        // A step-up's wider scope is part of the key: tokens fetched before it are not reused.
        let key = match self.stepped_up(&server.name) {
            Some(extra) => format!("{} +{extra}", cache_key(server)),
            None => cache_key(server),
        };
        let state = self.state(&server.name);
        let mut flight = state.flight.lock().await;
        let now = now();
        if let Some(token) = self
            .kept_m2m(&mut flight, server, &key, refused, now)
            .await?
        {
            return Ok(token);
        }
        // Boxed: the token request is kilobytes of future, and inline it would make every
        // call's credential future that large (moved with every request's future).
        let fetched = match server.oauth_flow {
            Some(OAuthFlow::Enterprise) => Box::pin(self.fetch_enterprise(server, &key, now)).await,
            _ => Box::pin(self.fetch_m2m(server, &key, now)).await,
        };
        Box::pin(self.settle_m2m(&mut flight, server, key, now, fetched)).await
    }

    /// The token to send without asking the authorization server: the one in memory for `key`
    /// (unless it is the one just `refused`), else at the first use one kept in the vault;
    /// or the error of a failure under `key` still backing off.
    async fn kept_m2m(
        &self,
        flight: &mut super::Flight,
        server: &ServerConfig,
        key: &str,
        refused: Option<&Secret>,
        now: u64,
    ) -> Result<Option<FlowToken>, UpstreamError> {
        let name = server.name.as_str();
        if let Some(c) = &flight.m2m {
            if c.key == key && now < c.valid_until && refused.is_none_or(|r| *r != c.token) {
                return Ok(Some(c.flow_token()));
            }
        }
        if flight.m2m.is_none() && refused.is_none() {
            let vault = &self.inner.deps.vault;
            if let Some(s) = tokens::load(vault, name).await.map_err(vault_err(name))? {
                let until = deadline(&s.meta);
                if s.meta.m2m_key.as_deref() == Some(key) && now < until {
                    flight.m2m = Some(Cached {
                        token: s.access.clone(),
                        valid_until: until,
                        key: key.to_string(),
                        bound: s.bound(),
                    });
                    return Ok(Some(s.into()));
                }
            }
        }
        match flight
            .m2m_failure
            .as_ref()
            .filter(|f| f.key == key && now < f.until)
        {
            Some(f) => Err(f.failure.clone().into_error(name)),
            None => Ok(None),
        }
    }

    /// Keeps a fetched token (vault and memory) and says so on the timeline, or remembers a
    /// refused fetch under `key` to back off from.
    async fn settle_m2m(
        &self,
        flight: &mut super::Flight,
        server: &ServerConfig,
        key: String,
        now: u64,
        fetched: Result<(Stored, ClientAuth), Fetch>,
    ) -> Result<FlowToken, UpstreamError> {
        let name = server.name.as_str();
        match fetched {
            Ok((stored, method)) => {
                let until = deadline(&stored.meta);
                tokens::save(&self.inner.deps.vault, name, &stored)
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
