//! How a machine token is fetched (any grant but the company sign-in's): the client
//! (configured, or registered with its own key), what is asked for, the client-credentials or
//! jwt-bearer request, and the token as kept. [`super::m2m`] decides when to fetch one.

use crate::config::machine::AssertionSource;
use crate::config::ServerConfig;

use super::assertion;
use super::discovery::{canonical_resource, AsMetadata, Discovery};
use super::formgrant;
use super::keyclient;
use super::oauth::{self, target_params, token_url, Grant, TokenCall, TokenFailure};
use super::registration::{self, ClientAuth};
use super::stepup::widen;
use super::timeline::StepKind;
use super::tokens::{Stored, UpTokenResponse};
use super::{Upstream, UpstreamError};
use crate::sync::lock;

impl Upstream {
    /// One machine token; a self-registered key client the authorization server no longer
    /// knows registers again and retries once ([`keyclient::lost_registration`]).
    pub(super) async fn fetch_m2m(
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
