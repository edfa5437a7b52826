//! Upstream tokens at rest and the lifetime arithmetic around them (pure; `now` is a parameter).
//!
//! Each server's tokens live in the vault as separate entries (`upstream/{server}/access_token`,
//! `…/refresh_token`, and a small non-secret `…/meta` JSON with absolute times), so each stays
//! far below the keychain's per-entry limit and a long JWT gets chunked by the vault alone.

use std::time::Duration;

use oauth2::TokenResponse as _;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::vault::{Vault, VaultError};

/// Lifetime assumed when a token response has no usable `expires_in`.
pub const DEFAULT_LIFETIME: u64 = 3600;
/// Longest lifetime believed; bigger `expires_in` values are clamped (clock skew, "never").
pub const MAX_LIFETIME: u64 = 30 * 24 * 3600;

/// `expires_in` as sent: a number, a numeric string, absent, or nonsense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiresIn {
    Missing,
    Seconds(i64),
    Invalid,
}

impl ExpiresIn {
    pub fn from_json(v: Option<&serde_json::Value>) -> ExpiresIn {
        match v {
            None | Some(serde_json::Value::Null) => ExpiresIn::Missing,
            Some(serde_json::Value::Number(n)) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .map(|f| f.clamp(i64::MIN as f64, i64::MAX as f64) as i64)
                })
                .map_or(ExpiresIn::Invalid, ExpiresIn::Seconds),
            Some(serde_json::Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map_or(ExpiresIn::Invalid, ExpiresIn::Seconds),
            Some(_) => ExpiresIn::Invalid,
        }
    }

    /// The lifetime believed: missing/invalid → [`DEFAULT_LIFETIME`], zero or negative → 0
    /// (already expired), huge → [`MAX_LIFETIME`].
    pub fn lifetime(self) -> u64 {
        match self {
            ExpiresIn::Missing | ExpiresIn::Invalid => DEFAULT_LIFETIME,
            ExpiresIn::Seconds(s) if s <= 0 => 0,
            ExpiresIn::Seconds(s) => (s as u64).min(MAX_LIFETIME),
        }
    }
}

/// How long before its expiry a token of `lifetime` seconds is replaced: a fifth of the
/// lifetime, at least a minute, but never more than half of it (so a short-lived token is
/// neither refreshed on every call nor ever sent after it expired). The one rule for user
/// tokens (refresh ahead) and machine tokens (the cache's end).
pub fn renewal_margin(lifetime: u64) -> u64 {
    (lifetime / 5).max(60).min(lifetime / 2)
}

/// How long a client-credentials token is served from the cache: its lifetime less the
/// [`renewal_margin`] (a token living 4 s is served for 2 s; one living an hour for 48 min).
/// A token without a lifetime (0 or negative `expires_in`) is not cached.
pub fn m2m_cache_ttl(expires_in: ExpiresIn) -> Duration {
    let lifetime = expires_in.lifetime();
    Duration::from_secs(lifetime - renewal_margin(lifetime))
}

/// Refresh ahead of expiry: when less than the [`renewal_margin`] of the lifetime is left.
pub fn needs_refresh(meta: &TokenMeta, now: u64) -> bool {
    match meta.expires_at {
        None => false,
        Some(exp) => now + renewal_margin(exp.saturating_sub(meta.obtained_at)) >= exp,
    }
}

/// Backoff after `failures` consecutive transient refresh failures: 2, 4, 8 … capped at 5 min.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(failures.min(16)).min(300))
}

/// The token endpoint's answer, parsed leniently (`token_type` optional, `expires_in` any shape).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct UpTokenResponse {
    pub access_token: oauth2::AccessToken,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub expires_in: Option<serde_json::Value>,
    #[serde(default)]
    pub refresh_token: Option<oauth2::RefreshToken>,
    #[serde(default)]
    pub scope: Option<String>,
    /// An OpenID Connect ID token (kept only for the company sign-in, which exchanges it).
    #[serde(default)]
    pub id_token: Option<oauth2::AccessToken>,
    #[serde(skip, default = "bearer")]
    bearer: oauth2::basic::BasicTokenType,
    /// The thumbprint of the DPoP key the request was proved with (set by `oauth::grant`, never
    /// read from the answer); the token is bound to it when `token_type` is `DPoP`.
    #[serde(skip)]
    pub proved_with: Option<String>,
}

fn bearer() -> oauth2::basic::BasicTokenType {
    oauth2::basic::BasicTokenType::Bearer
}

impl oauth2::TokenResponse for UpTokenResponse {
    type TokenType = oauth2::basic::BasicTokenType;
    fn access_token(&self) -> &oauth2::AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &Self::TokenType {
        &self.bearer
    }
    fn expires_in(&self) -> Option<Duration> {
        match self.expires_in_parsed() {
            ExpiresIn::Seconds(s) if s > 0 => Some(Duration::from_secs(s as u64)),
            _ => None,
        }
    }
    fn refresh_token(&self) -> Option<&oauth2::RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<oauth2::Scope>> {
        None
    }
}

impl UpTokenResponse {
    pub fn expires_in_parsed(&self) -> ExpiresIn {
        ExpiresIn::from_json(self.expires_in.as_ref())
    }

    /// The key the access token is bound to: a proof was sent and the answer's `token_type` is
    /// `DPoP` (a `Bearer` answer to a proof is an unbound token, used as a bearer token).
    pub fn dpop_jkt(&self) -> Option<String> {
        let dpop = self
            .token_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("dpop"));
        self.proved_with.clone().filter(|_| dpop)
    }
}

/// Non-secret facts stored next to the tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenMeta {
    /// Unix seconds.
    pub obtained_at: u64,
    /// Unix seconds; `None` = no expiry known.
    pub expires_at: Option<u64>,
    pub has_refresh_token: bool,
    #[serde(default)]
    pub scope: Option<String>,
    /// The refresh token was refused (`invalid_grant`): do not try it again; sign in.
    #[serde(default)]
    pub refresh_rejected: bool,
    /// For a client-credentials token: which client and token URL made it.
    #[serde(default)]
    pub m2m_key: Option<String>,
    /// The upstream URL the token was obtained for. A token is never sent to another URL: when
    /// the config points the server elsewhere, the person signs in again.
    #[serde(default)]
    pub server_url: Option<String>,
    /// The `audience` the token was asked for (config `audience`); when the config changes it,
    /// the token is for another API and the person signs in again.
    #[serde(default)]
    pub audience: Option<String>,
    /// The thumbprint of the DPoP key the access token is bound to (RFC 9449): it is sent with
    /// the `DPoP` scheme and a proof. `None` for a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
}

/// A server's stored token set.
#[derive(Debug, Clone)]
pub struct Stored {
    pub access: Secret,
    pub refresh: Option<Secret>,
    pub meta: TokenMeta,
    /// The ID token, kept only for the company sign-in ([`keeps_id_token`]).
    pub id_token: Option<Secret>,
}

impl Stored {
    /// Builds the set to store from a token response; a response without a refresh token keeps
    /// the previous one (RFC 6749 §6).
    pub fn from_response(
        r: &UpTokenResponse,
        previous_refresh: Option<Secret>,
        now: u64,
    ) -> Stored {
        let refresh = r
            .refresh_token
            .as_ref()
            .map(|t| Secret::new(t.secret().clone()))
            .or(previous_refresh);
        let lifetime = r.expires_in_parsed().lifetime();
        // A user token with no, zero or negative lifetime has no known expiry: it is refreshed
        // when the upstream refuses it, not on every call.
        let expires_at = match r.expires_in_parsed() {
            ExpiresIn::Missing => None,
            ExpiresIn::Seconds(s) if s <= 0 => None,
            _ => Some(now + lifetime),
        };
        Stored {
            access: Secret::new(r.access_token().secret().clone()),
            meta: TokenMeta {
                obtained_at: now,
                expires_at,
                has_refresh_token: refresh.is_some(),
                scope: r.scope.clone(),
                refresh_rejected: false,
                m2m_key: None,
                server_url: None,
                audience: None,
                dpop_jkt: r.dpop_jkt(),
            },
            refresh,
            id_token: r.id_token.as_ref().map(|t| Secret::new(t.secret().clone())),
        }
    }

    /// The access token is DPoP-bound (sent with the `DPoP` scheme and a proof).
    pub fn bound(&self) -> bool {
        self.meta.dpop_jkt.is_some()
    }

    pub fn expired(&self, now: u64) -> bool {
        self.meta.expires_at.is_some_and(|e| e <= now)
    }
}

fn key(server: &str, part: &str) -> String {
    format!("upstream/{server}/{part}")
}

/// Only the company sign-in keeps its ID token: enterprise-managed authorization exchanges it
/// for each server's grant. A server's own ID token is of no use to the broker, so not kept.
fn keeps_id_token(server: &str) -> bool {
    server == super::enterprise::SESSION
}

/// Reads a server's tokens; `None` when no access token is stored.
pub async fn load(vault: &Vault, server: &str) -> Result<Option<Stored>, VaultError> {
    let Some(access) = vault.get(&key(server, "access_token")).await? else {
        return Ok(None);
    };
    let refresh = vault.get(&key(server, "refresh_token")).await?;
    let meta = match vault.get(&key(server, "meta")).await? {
        Some(m) => serde_json::from_str(m.expose()).unwrap_or_default(),
        None => TokenMeta::default(),
    };
    let id_token = match keeps_id_token(server) {
        true => vault.get(&key(server, "id_token")).await?,
        false => None,
    };
    Ok(Some(Stored {
        access,
        refresh,
        meta,
        id_token,
    }))
}

/// Writes a token set. The refresh token goes first, so a rotated refresh token is on disk
/// before the new access token is ever used.
pub async fn save(vault: &Vault, server: &str, s: &Stored) -> Result<(), VaultError> {
    match &s.refresh {
        Some(r) => vault.set(&key(server, "refresh_token"), r.clone()).await?,
        None => vault.delete(&key(server, "refresh_token")).await?,
    }
    if keeps_id_token(server) {
        match &s.id_token {
            Some(t) => vault.set(&key(server, "id_token"), t.clone()).await?,
            None => vault.delete(&key(server, "id_token")).await?,
        }
    }
    vault
        .set(&key(server, "access_token"), s.access.clone())
        .await?;
    save_meta(vault, server, &s.meta).await
}

/// Writes a refreshed token set. The authorization server has already rotated the old refresh
/// token, so if the keychain refuses (locked) the new set is still used by this process and
/// written once the keychain accepts again ([`Vault::save_unsaved`]) instead of being lost; the
/// first refusal is returned for the caller to report.
pub async fn save_or_keep(vault: &Vault, server: &str, s: &Stored) -> Result<(), VaultError> {
    let meta = Secret::new(serde_json::to_string(&s.meta).expect("meta serialises"));
    let parts = [
        ("refresh_token", s.refresh.clone()),
        ("id_token", s.id_token.clone()),
        ("access_token", Some(s.access.clone())),
        ("meta", Some(meta)),
    ];
    let mut first = None;
    for (part, value) in parts {
        if part == "id_token" && !keeps_id_token(server) {
            continue;
        }
        if let Err(e) = vault.write_or_keep(&key(server, part), value).await {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

pub async fn save_meta(vault: &Vault, server: &str, meta: &TokenMeta) -> Result<(), VaultError> {
    let json = serde_json::to_string(meta).expect("meta serialises");
    vault.set(&key(server, "meta"), Secret::new(json)).await
}

/// Deletes every token entry of a server (each attempted; the first error is returned).
pub async fn delete(vault: &Vault, server: &str) -> Result<(), VaultError> {
    let mut first = None;
    let id_token = keeps_id_token(server).then_some("id_token");
    for part in ["access_token", "refresh_token", "meta"]
        .into_iter()
        .chain(id_token)
    {
        if let Err(e) = vault.delete(&key(server, part)).await {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
#[path = "tokens_tests.rs"]
mod tests;
