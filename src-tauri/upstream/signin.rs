//! What the browser sign-in ([`super::authcode`]) and the device sign-in ([`super::device`])
//! share, so both register and record the client, keep the tokens and end the same way.

use crate::config::{ServerConfig, ServerName};
use crate::events::Event;

use super::discovery::{same_issuer, Discovery};
use super::pending;
use super::registration::{self, ClientInfo, Ctx, Endpoints, Record, Registration};
use super::stepup::sign_in_scope;
use super::timeline::{self, StepKind};
use super::tokens::{self, Stored, UpTokenResponse};
use super::{now, vault_err, Upstream, UpstreamError};

/// The client and endpoints a sign-in uses (either flow), registered and ready to record.
pub(super) struct Prepared {
    pub client: ClientInfo,
    pub issuer: String,
    /// The scope asked for.
    pub asked: Option<String>,
    pub resource: Option<String>,
    pub endpoints: Endpoints,
    pub reg: Registration,
}

impl Upstream {
    /// Registers (or reuses) the client a sign-in uses, either flow, and says so on the
    /// timeline; `authorize` is `None` for a device sign-in without an authorization endpoint.
    pub(super) async fn prepare_client(
        &self,
        server: &ServerConfig,
        d: &Discovery,
        scope: Option<String>,
        authorize: Option<String>,
        token: String,
    ) -> Result<Prepared, UpstreamError> {
        let meta = d.metadata.as_ref();
        let origin = server.url.origin().ascii_serialization();
        let issuer = meta
            .map(|m| m.issuer.clone())
            .or_else(|| d.issuer.clone())
            .unwrap_or(origin);
        // The scope goes into the registration too: servers built on the MCP SDKs refuse
        // `/authorize` scopes a client was not registered with.
        let usual = scope.or_else(|| d.scope(&server.scopes));
        let asked = sign_in_scope(
            usual.as_deref(),
            meta.and_then(|m| m.scopes_supported.as_deref()),
            self.stepped_up_for_sign_in(&server.name).as_deref(),
        );
        let (client, reg) = self
            .register_for_sign_in(server, d, &issuer, asked.as_deref())
            .await?;
        let resource = server.send_resource.then(|| d.resource.clone());
        let endpoints = Endpoints {
            issuer: issuer.clone(),
            authorization_endpoint: authorize,
            token_endpoint: token,
            revocation_endpoint: meta.and_then(|m| m.revocation_endpoint.clone()),
            iss_supported: meta.is_some_and(|m| m.authorization_response_iss_parameter_supported),
            resource: resource.clone(),
            auth_methods: meta.and_then(|m| m.token_endpoint_auth_methods_supported.clone()),
            dpop: super::dpop::wanted(
                server.dpop,
                meta.and_then(|m| m.dpop_signing_alg_values_supported.as_deref()),
            ),
        };
        Ok(Prepared {
            client,
            issuer,
            asked,
            resource,
            endpoints,
            reg,
        })
    }

    /// The registration step of a sign-in (reused, configured or dynamic) at `issuer`, on the
    /// timeline either way, with a note when the server now names another authorization server
    /// than the one the saved record was made at.
    async fn register_for_sign_in(
        &self,
        server: &ServerConfig,
        d: &Discovery,
        issuer: &str,
        asked: Option<&str>,
    ) -> Result<(ClientInfo, Registration), UpstreamError> {
        let origin = server.url.origin().ascii_serialization();
        let legacy_register = d.legacy_defaults.then(|| format!("{origin}/register"));
        let redirect = self.inner.deps.redirect_uri.clone();
        let ctx = Ctx {
            http: &self.inner.http,
            vault: &self.inner.deps.vault,
            data_dir: &self.inner.deps.data_dir,
            redirect_uri: &redirect,
        };
        let was = registration::load_record(&self.inner.deps.data_dir, server.name.as_str())
            .endpoints
            .map(|e| e.issuer)
            .filter(|was| !same_issuer(was, issuer));
        let meta = d.metadata.as_ref();
        let registered =
            registration::ensure_client(&ctx, server, issuer, meta, legacy_register, asked).await;
        let (client, reg) = match registered {
            Ok(r) => r,
            Err(e) => {
                self.note(&server.name, StepKind::Registration, false, &e.to_string());
                return Err(e);
            }
        };
        let detail = timeline::registration_step(&reg);
        if let Some(was) = was {
            let moved = format!("the server now names the authorization server {issuer} (was {was}); its own client is used there: {detail}");
            self.note(
                &server.name,
                StepKind::AuthorizationServerChanged,
                true,
                &moved,
            );
        }
        self.note(&server.name, StepKind::Registration, true, &detail);
        Ok((client, reg))
    }

    /// Records the endpoints and client of a sign-in about to start (refresh and sign-out use
    /// them without discovery).
    pub(super) fn save_sign_in(
        &self,
        name: &str,
        endpoints: Endpoints,
        reg: Registration,
    ) -> Result<Record, UpstreamError> {
        let mut record = registration::load_record(&self.inner.deps.data_dir, name);
        record.endpoints = Some(endpoints);
        record.registration = Some(reg);
        registration::save_record(&self.inner.deps.data_dir, name, &record).map_err(|e| {
            UpstreamError::Setup {
                server: name.into(),
                detail: format!(
                    "cannot save sign-in state in {}: {e}",
                    self.inner.deps.data_dir.display()
                ),
            }
        })?;
        Ok(record)
    }

    /// Says how a sign-in ended (either flow): events, the timeline, and its waiter.
    pub(super) fn conclude(
        &self,
        server: &ServerName,
        result: &Result<(), UpstreamError>,
        done: Option<pending::Done>,
    ) {
        match result {
            Ok(()) => {
                self.signed_in(server);
                self.emit(Event::SignInFinished {
                    server: server.clone(),
                });
            }
            Err(e) => self.emit(Event::SignInFailed {
                server: server.clone(),
                reason: e.to_string(),
            }),
        }
        if let Some(done) = done {
            let _ = done.send(result.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        }
    }

    /// Keeps the tokens a sign-in got (either flow) in the vault, bound to the server's URL;
    /// `asked` is what was granted when the response names no scope.
    pub(super) async fn keep_tokens(
        &self,
        server: &ServerConfig,
        resp: &UpTokenResponse,
        asked: Option<String>,
    ) -> Result<(), UpstreamError> {
        let name = server.name.as_str();
        let mut stored = Stored::from_response(resp, None, now());
        stored.meta.scope = stored.meta.scope.or(asked);
        stored.meta.server_url = Some(server.url.to_string());
        stored.meta.audience = server.audience.clone();
        tokens::save(&self.inner.deps.vault, name, &stored)
            .await
            .map_err(vault_err(name))?;
        if let Some(jkt) = &stored.meta.dpop_jkt {
            let detail = format!("DPoP-bound token (key thumbprint {jkt})");
            self.note(&server.name, StepKind::Token, true, &detail);
        }
        let state = self.state(&server.name);
        let mut flight = state.flight.lock().await;
        flight.failures = 0;
        flight.retry_after = None;
        Ok(())
    }
}
