//! Secrets at rest: the OS keychain behind a small trait, with an in-process cache.
//!
//! Architecture Invariant: only `vault::keychain` imports `keyring`. Callers use [`Vault`]
//! (async; blocking keychain calls run on the blocking pool).

pub mod keychain;
pub mod memory;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::secret::{Secret, SecretRef};

pub use keychain::KeyringStore;
pub use memory::MemoryStore;

/// The keychain service name every entry of this app lives under.
pub const SERVICE: &str = "mcp-auth-broker";

#[derive(Debug, Clone, thiserror::Error)]
pub enum VaultError {
    #[error("the OS keychain is not available ({0}); on Linux start a Secret Service (GNOME Keyring or KWallet) and unlock it, then try again — nothing was deleted")]
    Unavailable(String),
    #[error("the OS keychain is locked; unlock it (log in to your desktop session or run `gnome-keyring-daemon --unlock`) and try again — nothing was deleted")]
    Locked,
    #[error("the secret for {0} is too large for the keychain ({1} bytes)")]
    TooLarge(String, usize),
    #[error("environment variable {0} is not set; export it before starting the broker or store the secret in the keychain instead")]
    MissingEnv(String),
    #[error(
        "keychain entry {0} does not exist; enter the secret again in the app or with the CLI"
    )]
    MissingEntry(String),
    #[error("keychain error: {0}")]
    Other(String),
}

/// A synchronous secret store. Implementations may block; [`Vault`] calls them off the runtime.
pub trait TokenStore: Send + Sync + 'static {
    fn get(&self, key: &str) -> Result<Option<Secret>, VaultError>;
    fn set(&self, key: &str, value: &Secret) -> Result<(), VaultError>;
    /// Deleting a missing entry is not an error.
    fn delete(&self, key: &str) -> Result<(), VaultError>;
}

/// The secret store the rest of the broker uses: async, cached (each secret read from the
/// keychain at most once per process), cheap to clone.
#[derive(Clone)]
pub struct Vault {
    backend: Arc<dyn TokenStore>,
    /// `None` records "known absent" so a missing entry is not re-queried on every request.
    cache: Arc<Mutex<HashMap<String, Option<Secret>>>>,
}

impl Vault {
    pub fn new(backend: Arc<dyn TokenStore>) -> Self {
        Vault {
            backend,
            cache: Arc::default(),
        }
    }

    /// A vault over a fresh in-memory store (unit tests).
    pub fn in_memory() -> Self {
        Vault::new(Arc::new(MemoryStore::default()))
    }

    pub async fn get(&self, key: &str) -> Result<Option<Secret>, VaultError> {
        let mut cache = self.cache.lock().await;
        if let Some(hit) = cache.get(key) {
            return Ok(hit.clone());
        }
        let backend = self.backend.clone();
        let k = key.to_string();
        let value = tokio::task::spawn_blocking(move || backend.get(&k))
            .await
            .map_err(|e| VaultError::Other(e.to_string()))??;
        cache.insert(key.to_string(), value.clone());
        Ok(value)
    }

    pub async fn set(&self, key: &str, value: Secret) -> Result<(), VaultError> {
        let mut cache = self.cache.lock().await;
        let backend = self.backend.clone();
        let (k, v) = (key.to_string(), value.clone());
        tokio::task::spawn_blocking(move || backend.set(&k, &v))
            .await
            .map_err(|e| VaultError::Other(e.to_string()))??;
        cache.insert(key.to_string(), Some(value));
        Ok(())
    }

    pub async fn delete(&self, key: &str) -> Result<(), VaultError> {
        let mut cache = self.cache.lock().await;
        let backend = self.backend.clone();
        let k = key.to_string();
        tokio::task::spawn_blocking(move || backend.delete(&k))
            .await
            .map_err(|e| VaultError::Other(e.to_string()))??;
        cache.insert(key.to_string(), None);
        Ok(())
    }

    /// Resolves a config secret reference to its value.
    pub async fn resolve(&self, r: &SecretRef) -> Result<Secret, VaultError> {
        match r {
            SecretRef::Env(var) => std::env::var(var)
                .map(Secret::new)
                .map_err(|_| VaultError::MissingEnv(var.clone())),
            SecretRef::Keychain(entry) => self
                .get(entry)
                .await?
                .ok_or_else(|| VaultError::MissingEntry(entry.clone())),
        }
    }
}
