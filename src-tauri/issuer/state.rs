//! The authorization server's bookkeeping: pure functions of the state and `now` (Unix seconds).
//! Persistence and locking live in [`super::Issuer`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::crypto::{self, hash};
use super::model::*;
use super::redirect;
use super::{AuthFailure, TokenError};
use crate::secret::Secret;

/// Most clients kept; beyond it the oldest never-used client is dropped, else registration fails.
pub const MAX_CLIENTS: usize = 500;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub clients: HashMap<String, Client>,
    #[serde(default)]
    pub consents: Vec<Consent>,
    #[serde(default)]
    pub grants: HashMap<String, Grant>,
    /// Keyed by the hex SHA-256 of the access token.
    #[serde(default)]
    pub access: HashMap<String, AccessRecord>,
    /// Keyed by the hex SHA-256 of the refresh token.
    #[serde(default)]
    pub refresh: HashMap<String, RefreshRecord>,
    #[serde(default)]
    pub api_keys: Vec<ApiKey>,
    /// Keyed by the hex SHA-256 of the code; never persisted (codes live minutes).
    #[serde(skip)]
    pub codes: HashMap<String, CodeRecord>,
    /// Set when tokens were issued or revoked: what a token request changed that must reach
    /// the file (a refused attempt changes nothing persisted, and writes nothing).
    #[serde(skip)]
    pub tokens_changed: bool,
}

/// What a revocation request did (RFC 7009 §2.1–2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    /// Not a token the broker knows (answered 200 all the same, §2.2).
    Unknown,
    /// Issued to another client: refused, nothing revoked.
    OtherClient,
}

impl State {
    /// Adds a client; when full, evicts the oldest client that was never used.
    pub fn add_client(&mut self, client: Client) -> Result<(), String> {
        if self.clients.len() >= MAX_CLIENTS && !self.clients.contains_key(&client.client_id) {
            let victim = self
                .clients
                .values()
                .filter(|c| c.last_used.is_none())
                .min_by_key(|c| c.created_at)
                .map(|c| c.client_id.clone());
            match victim {
                Some(id) => {
                    self.clients.remove(&id);
                }
                None => return Err(format!("too many registered clients ({MAX_CLIENTS}); revoke unused clients in the broker's app first")),
            }
        }
        self.clients.insert(client.client_id.clone(), client);
        Ok(())
    }

    pub fn has_consent(&self, client_id: &str, server: &str) -> bool {
        self.consents
            .iter()
            .any(|c| c.client_id == client_id && c.server == server)
    }

    pub fn add_consent(&mut self, client_id: &str, server: &str, now: u64) {
        if !self.has_consent(client_id, server) {
            self.consents.push(Consent {
                client_id: client_id.into(),
                server: server.into(),
                approved_at: now,
            });
        }
    }

    /// Rotates a refresh token. Reusing a rotated one revokes the whole family.
    pub fn refresh(
        &mut self,
        refresh_token: &str,
        client_id: &str,
        server: Option<&str>,
        now: u64,
    ) -> Result<TokenSet, TokenError> {
        let key = hash(refresh_token);
        let Some(record) = self.refresh.get(&key).cloned() else {
            return Err(TokenError::InvalidGrant(
                "the refresh token is unknown, expired or revoked; authorize again".into(),
            ));
        };
        if record.rotated {
            self.revoke_grant(&record.grant_id);
            return Err(TokenError::InvalidGrant(
                "the refresh token was already used; every token of this authorization is revoked"
                    .into(),
            ));
        }
        if record.expires_at <= now {
            self.refresh.remove(&key);
            return Err(TokenError::InvalidGrant(
                "the refresh token expired; authorize again".into(),
            ));
        }
        let Some(grant) = self.grants.get(&record.grant_id).cloned() else {
            return Err(TokenError::InvalidGrant(
                "the authorization was revoked; authorize again".into(),
            ));
        };
        if grant.client_id != client_id {
            return Err(TokenError::InvalidGrant(
                "the refresh token was issued to another client".into(),
            ));
        }
        if let Some(server) = server {
            if server != grant.server {
                return Err(TokenError::InvalidTarget(format!(
                    "resource names server \"{server}\" but the token is for \"{}\"",
                    grant.server
                )));
            }
        }
        if let Some(r) = self.refresh.get_mut(&key) {
            r.rotated = true;
        }
        if let Some(g) = self.grants.get_mut(&record.grant_id) {
            g.refreshed_at = Some(now);
        }
        if let Some(client) = self.clients.get_mut(client_id) {
            client.last_used = Some(now);
        }
        Ok(self.mint(&record.grant_id, now))
    }

    pub(super) fn mint(&mut self, grant_id: &str, now: u64) -> TokenSet {
        self.tokens_changed = true;
        let grant = self.grants[grant_id].clone();
        let access = crypto::random_token(crypto::ACCESS_PREFIX);
        let refresh = crypto::random_token(crypto::REFRESH_PREFIX);
        self.access.insert(
            hash(&access),
            AccessRecord {
                grant_id: grant.id.clone(),
                server: grant.server.clone(),
                client_id: grant.client_id.clone(),
                expires_at: now + ACCESS_TTL,
            },
        );
        self.refresh.insert(
            hash(&refresh),
            RefreshRecord {
                grant_id: grant.id.clone(),
                expires_at: now + REFRESH_TTL,
                rotated: false,
            },
        );
        TokenSet {
            access_token: Secret::new(access),
            refresh_token: Secret::new(refresh),
            expires_in: ACCESS_TTL,
            scope: grant.scope,
            server: grant.server,
        }
    }

    /// Removes a grant and every token of it.
    pub fn revoke_grant(&mut self, grant_id: &str) -> bool {
        let existed = self.grants.remove(grant_id).is_some();
        let tokens = self.access.len() + self.refresh.len();
        self.access.retain(|_, a| a.grant_id != grant_id);
        self.refresh.retain(|_, r| r.grant_id != grant_id);
        self.tokens_changed |= existed || tokens != self.access.len() + self.refresh.len();
        existed
    }

    /// RFC 7009: revoking either token of a grant revokes the grant, when `client_id` is the
    /// client it was issued to (§2.1); a token of another client is left alone.
    pub fn revoke_token(&mut self, token: &str, client_id: &str) -> Revocation {
        let key = hash(token);
        let owner = self
            .access
            .get(&key)
            .map(|a| (a.grant_id.clone(), a.client_id.clone()))
            .or_else(|| {
                let grant_id = &self.refresh.get(&key)?.grant_id;
                let grant = self.grants.get(grant_id)?;
                Some((grant_id.clone(), grant.client_id.clone()))
            });
        match owner {
            Some((grant, owner)) if owner == client_id => {
                self.revoke_grant(&grant);
                Revocation::Revoked
            }
            Some(_) => Revocation::OtherClient,
            None => Revocation::Unknown,
        }
    }

    /// Removes a client, its consents and its grants.
    pub fn revoke_client(&mut self, client_id: &str) -> bool {
        let existed = self.clients.remove(client_id).is_some();
        self.consents.retain(|c| c.client_id != client_id);
        let grants: Vec<String> = self
            .grants
            .values()
            .filter(|g| g.client_id == client_id)
            .map(|g| g.id.clone())
            .collect();
        for g in grants {
            self.revoke_grant(&g);
        }
        self.codes.retain(|_, c| c.client_id != client_id);
        existed
    }

    /// The hot path: who does `token` belong to, if it may be used at `server`?
    pub fn authenticate(
        &mut self,
        token: &str,
        server: &str,
        now: u64,
    ) -> Result<Principal, AuthFailure> {
        let key = hash(token);
        if token.starts_with(crypto::API_KEY_PREFIX) {
            let key_rec = self
                .api_keys
                .iter_mut()
                .find(|k| k.hash == key)
                .ok_or(AuthFailure::Unknown)?;
            if key_rec.server.as_deref().is_some_and(|s| s != server) {
                return Err(AuthFailure::WrongServer);
            }
            key_rec.last_used = Some(now);
            return Ok(Principal::ApiKey {
                id: key_rec.id.clone(),
            });
        }
        let record = self.access.get(&key).ok_or(AuthFailure::Unknown)?;
        if record.expires_at <= now {
            return Err(AuthFailure::Expired);
        }
        if record.server != server {
            return Err(AuthFailure::WrongServer);
        }
        Ok(Principal::Client {
            client_id: record.client_id.clone(),
        })
    }

    pub fn create_api_key(
        &mut self,
        name: &str,
        server: Option<&str>,
        now: u64,
    ) -> (ApiKeyInfo, Secret) {
        let key = crypto::random_token(crypto::API_KEY_PREFIX);
        let rec = ApiKey {
            id: crypto::random_id(),
            name: name.to_string(),
            hash: hash(&key),
            server: server.map(str::to_string),
            created_at: now,
            last_used: None,
        };
        let info = ApiKeyInfo {
            id: rec.id.clone(),
            name: rec.name.clone(),
            server: rec.server.clone(),
            created_at: now,
            last_used: None,
        };
        self.api_keys.push(rec);
        (info, Secret::new(key))
    }

    /// Drops expired tokens and rotated refresh tokens past their lifetime.
    pub fn prune(&mut self, now: u64) {
        self.access.retain(|_, a| a.expires_at > now);
        self.refresh.retain(|_, r| r.expires_at > now);
        self.codes.retain(|_, c| c.expires_at > now);
        let live: std::collections::HashSet<&String> = self
            .refresh
            .values()
            .map(|r| &r.grant_id)
            .chain(self.access.values().map(|a| &a.grant_id))
            .collect();
        let dead: Vec<String> = self
            .grants
            .keys()
            .filter(|g| !live.contains(g))
            .cloned()
            .collect();
        for g in dead {
            self.grants.remove(&g);
        }
    }

    /// True when `requested` may be used with `client` (RFC 8252 loopback port rule).
    pub fn redirect_allowed(client: &Client, requested: &str) -> bool {
        client
            .redirect_uris
            .iter()
            .any(|r| redirect::matches(r, requested))
    }
}
