//! The broker's own OAuth 2.1 authorization server state: registered local clients, consents,
//! authorization codes, broker access/refresh tokens (stored as SHA-256 hashes only) and local
//! API keys. Pure bookkeeping lives in [`state`] and takes `now`; this handle adds the lock and
//! persistence (`<data_dir>/issuer.json`, written atomically, mode 0600). The HTTP face lives in
//! `gateway`.
//!
//! Tokens: access tokens (`mab_at_…`, 1 h) and refresh tokens (`mab_rt_…`, 30 days, rotated on
//! every use; reuse of a rotated one revokes the family) are bound to one server. Local API keys
//! (`mab_key_…`) are accepted as `Authorization: Bearer <key>` or `x-api-key: <key>`.

pub mod carried;
pub mod codes;
pub mod crypto;
mod manage;
pub mod model;
pub mod redirect;
pub mod register;
pub mod state;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use url::Url;

pub use model::*;
pub use register::{RegistrationError, RegistrationRequest};
pub use state::Revocation;
use state::State;

use crate::clock::unix_now;
use crate::secret::Secret;
use crate::sync::lock;

const STATE_FILE: &str = "issuer.json";

#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("cannot read or write the token store: {0}")]
    Store(String),
}

/// Why a presented token was not accepted (mapped to `401 invalid_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Unknown,
    Expired,
    /// Valid, but issued for another server (audience mismatch).
    WrongServer,
}

/// `/token` failures with their RFC 6749 §5.2 error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidClient(String),
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::InvalidRequest(_) => "invalid_request",
            TokenError::InvalidClient(_) => "invalid_client",
            TokenError::InvalidGrant(_) => "invalid_grant",
            TokenError::InvalidTarget(_) => "invalid_target",
            TokenError::UnsupportedGrantType(_) => "unsupported_grant_type",
        }
    }
}

pub use codes::{CodeRequest, Presented};

/// Handle to the authorization server state.
pub struct Issuer {
    /// The default issuer (`http://127.0.0.1:PORT`); the gateway answers with the loopback
    /// spelling the client used (see `gateway::authserver`).
    issuer: Url,
    /// Where the state is persisted.
    path: PathBuf,
    /// One lock over all bookkeeping, held only for in-memory work (never across file I/O, so
    /// proxied requests checking tokens never wait for a disk write), with the generation of
    /// the state it guards.
    state: Mutex<(State, u64)>,
    /// Serialises file writes; holds the generation last written, so an older snapshot never
    /// overwrites a newer one.
    written: Mutex<u64>,
    /// Test-only: admit client ID metadata documents served over plain http on 127.0.0.1
    /// (see [`Issuer::allow_plain_loopback_metadata_documents_for_tests`]). Never set otherwise.
    plain_loopback_documents: AtomicBool,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.issuer.as_str())
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// Opens (or creates) the persisted state under `data_dir`; `issuer` is the gateway root URL.
    pub fn open(data_dir: &Path, issuer: Url) -> Result<Issuer, IssuerError> {
        crate::fsutil::create_private_dir(data_dir).map_err(|e| {
            IssuerError::Store(format!("cannot create {}: {e}", data_dir.display()))
        })?;
        let path = data_dir.join(STATE_FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<State>(&bytes)
                .map_err(|e| IssuerError::Store(format!("{} is damaged ({e}); move it aside to start over (local clients will sign in again)", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(IssuerError::Store(format!("cannot read {}: {e}", path.display()))),
        };
        Ok(Issuer {
            issuer,
            path,
            state: Mutex::new((state, 0)),
            written: Mutex::new(0),
            plain_loopback_documents: AtomicBool::new(false),
        })
    }

    /// TEST-ONLY, never called by the broker: admits client ID metadata documents at
    /// `http://127.0.0.1:PORT/…`, which is how tests serve them (no TLS server there). Without
    /// it a document must be https and off loopback ([`register::metadata_document_url`]).
    pub fn allow_plain_loopback_metadata_documents_for_tests(&self) {
        self.plain_loopback_documents.store(true, Ordering::Relaxed);
    }

    /// Whether the test-only allowance above is on.
    pub fn plain_loopback_documents(&self) -> bool {
        self.plain_loopback_documents.load(Ordering::Relaxed)
    }

    pub fn issuer_url(&self) -> &Url {
        &self.issuer
    }

    fn lock(&self) -> StateGuard<'_> {
        StateGuard(lock(&self.state))
    }

    /// Runs `f` on the state and persists the result.
    fn mutate<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, IssuerError> {
        self.mutate_then_write_if(|s| (f(s), true))
    }

    /// Runs a token request on the state and persists only what it changed (tokens issued or
    /// revoked): a refused attempt costs no write, so a flood of bad requests cannot turn into
    /// a flood of fsyncs.
    fn mutate_tokens<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, IssuerError> {
        self.mutate_then_write_if(|s| {
            s.tokens_changed = false;
            let out = f(s);
            (out, s.tokens_changed)
        })
    }

    /// Runs `f`; when it says so, writes the state (blocking I/O: callers on the async
    /// runtime use `spawn_blocking`). The state lock is never held across the write.
    fn mutate_then_write_if<T>(
        &self,
        f: impl FnOnce(&mut State) -> (T, bool),
    ) -> Result<T, IssuerError> {
        let (out, generation, bytes) = {
            let mut guard = lock(&self.state);
            let (state, generation) = &mut *guard;
            let (out, write) = f(state);
            if !write {
                return Ok(out);
            }
            state.prune(unix_now());
            *generation += 1;
            let bytes =
                serde_json::to_vec(&*state).map_err(|e| IssuerError::Store(e.to_string()))?;
            (out, *generation, bytes)
        };
        let mut written = lock(&self.written);
        if generation > *written {
            crate::fsutil::write_private(&self.path, &bytes).map_err(|e| {
                IssuerError::Store(format!("cannot write {}: {e}", self.path.display()))
            })?;
            *written = generation;
        }
        Ok(out)
    }

    /// The hot path of every proxied request: no allocation beyond the hash, no I/O.
    pub fn authenticate(
        &self,
        token: &str,
        server: &str,
        now: u64,
    ) -> Result<Principal, AuthFailure> {
        self.lock().authenticate(token, server, now)
    }

    /// RFC 7591 registration of a public client.
    pub fn register(
        &self,
        request: RegistrationRequest,
        now: u64,
    ) -> Result<Result<Client, RegistrationError>, IssuerError> {
        let client = match request.into_client(now) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        self.mutate(|s| {
            s.add_client(client.clone())
                .map(|()| client)
                .map_err(RegistrationError::Full)
        })
    }

    /// Records (or refreshes) a client known by its client ID metadata document.
    pub fn upsert_metadata_client(&self, client: Client) -> Result<(), IssuerError> {
        self.mutate(|s| {
            let last_used = s.clients.get(&client.client_id).and_then(|c| c.last_used);
            let _ = s.add_client(Client {
                last_used,
                ..client
            });
        })
    }

    pub fn client(&self, client_id: &str) -> Option<Client> {
        self.lock().clients.get(client_id).cloned()
    }

    pub fn has_consent(&self, client_id: &str, server: &str) -> bool {
        self.lock().has_consent(client_id, server)
    }

    pub fn add_consent(&self, client_id: &str, server: &str, now: u64) -> Result<(), IssuerError> {
        self.mutate(|s| s.add_consent(client_id, server, now))
    }

    pub fn issue_code(&self, request: CodeRequest, now: u64) -> Secret {
        self.lock().issue_code(request, now)
    }

    pub fn exchange_code(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        server: Option<&str>,
        now: u64,
    ) -> Result<Result<TokenSet, TokenError>, IssuerError> {
        let presented = Presented {
            client_id,
            redirect_uri,
            verifier,
            server,
        };
        self.mutate_tokens(|s| s.exchange_code(code, presented, now))
    }

    pub fn refresh(
        &self,
        refresh_token: &str,
        client_id: &str,
        server: Option<&str>,
        now: u64,
    ) -> Result<Result<TokenSet, TokenError>, IssuerError> {
        self.mutate_tokens(|s| s.refresh(refresh_token, client_id, server, now))
    }

    /// RFC 7009 revocation of an access or refresh token by the client it was issued to.
    pub fn revoke_token(&self, token: &str, client_id: &str) -> Result<Revocation, IssuerError> {
        self.mutate(|s| s.revoke_token(token, client_id))
    }
}

/// The locked state, without its generation (changes through it are not persisted: only
/// codes, which live in memory, are changed this way).
struct StateGuard<'a>(std::sync::MutexGuard<'a, (State, u64)>);

impl std::ops::Deref for StateGuard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.0 .0
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.0 .0
    }
}

#[cfg(test)]
mod tests;
