//! What the person manages through the CLI and the dashboard: the local clients and the
//! servers each was approved for, their grants, and the local API keys; listed and revoked.

use crate::clock::unix_now;

use super::{ApiKeyInfo, ClientInfo, GrantInfo, Issuer, IssuerError};
use crate::secret::Secret;

impl Issuer {
    /// Local clients with the servers each was approved for.
    pub fn list_clients(&self) -> Vec<ClientInfo> {
        let s = self.lock();
        let mut out: Vec<ClientInfo> = s
            .clients
            .values()
            .map(|c| ClientInfo {
                client_id: c.client_id.clone(),
                client_name: c.client_name.clone(),
                redirect_uris: c.redirect_uris.clone(),
                created_at: c.created_at,
                last_used: c.last_used,
                approved_servers: s
                    .consents
                    .iter()
                    .filter(|k| k.client_id == c.client_id)
                    .map(|k| k.server.clone())
                    .collect(),
            })
            .collect();
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.client_id.cmp(&b.client_id))
        });
        out
    }

    /// Live grants (one per authorization a client holds).
    pub fn list_grants(&self) -> Vec<GrantInfo> {
        let s = self.lock();
        let mut out: Vec<GrantInfo> = s
            .grants
            .values()
            .map(|g| GrantInfo {
                id: g.id.clone(),
                client_id: g.client_id.clone(),
                client_name: s
                    .clients
                    .get(&g.client_id)
                    .and_then(|c| c.client_name.clone()),
                server: g.server.clone(),
                created_at: g.created_at,
                refreshed_at: g.refreshed_at,
            })
            .collect();
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        out
    }

    /// Revokes one grant and its tokens; `false` when it did not exist.
    pub fn revoke_grant(&self, grant_id: &str) -> Result<bool, IssuerError> {
        self.mutate(|s| s.revoke_grant(grant_id))
    }

    /// Forgets a client: its registration, consents, grants and tokens.
    pub fn revoke_client(&self, client_id: &str) -> Result<bool, IssuerError> {
        self.mutate(|s| s.revoke_client(client_id))
    }

    /// Creates a local API key. The returned secret is shown once; only its hash is kept.
    pub fn create_api_key(
        &self,
        name: &str,
        server: Option<&str>,
    ) -> Result<(ApiKeyInfo, Secret), IssuerError> {
        let now = unix_now();
        self.mutate(|s| s.create_api_key(name, server, now))
    }

    pub fn list_api_keys(&self) -> Vec<ApiKeyInfo> {
        self.lock()
            .api_keys
            .iter()
            .map(|k| ApiKeyInfo {
                id: k.id.clone(),
                name: k.name.clone(),
                server: k.server.clone(),
                created_at: k.created_at,
                last_used: k.last_used,
            })
            .collect()
    }

    pub fn revoke_api_key(&self, id: &str) -> Result<bool, IssuerError> {
        self.mutate(|s| {
            let before = s.api_keys.len();
            s.api_keys.retain(|k| k.id != id);
            before != s.api_keys.len()
        })
    }
}
