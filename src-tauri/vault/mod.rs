//! Secrets at rest: the OS keychain behind a small trait, with an in-process cache.
//!
//! Architecture Invariant: only `vault::keychain` imports `keyring`. Callers use [`Vault`]
//! (async; blocking keychain calls run on the blocking pool).

pub mod keychain;
pub mod memory;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

type Slot = Arc<Mutex<Option<Option<Secret>>>>;

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
    /// Per key: `None` = not read yet; `Some(None)` records "known absent" so a missing entry is
    /// not re-queried on every request.
    cache: Arc<std::sync::Mutex<HashMap<String, Slot>>>,
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

    /// The per-key slot: one keychain call per key at a time, and other keys never wait on it
    /// (a keychain prompt for one entry must not stall every request of the process).
    fn slot(&self, key: &str) -> Slot {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.entry(key.to_string()).or_default().clone()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn TokenStore) -> Result<T, VaultError> + Send + 'static,
    ) -> Result<T, VaultError> {
        let backend = self.backend.clone();
        tokio::task::spawn_blocking(move || f(backend.as_ref()))
            .await
            .map_err(|e| VaultError::Other(e.to_string()))?
    }

    pub async fn get(&self, key: &str) -> Result<Option<Secret>, VaultError> {
        let slot = self.slot(key);
        let mut known = slot.lock().await;
        if let Some(hit) = known.as_ref() {
            return Ok(hit.clone());
        }
        let k = key.to_string();
        let value = self.blocking(move |b| b.get(&k)).await?;
        *known = Some(value.clone());
        Ok(value)
    }

    pub async fn set(&self, key: &str, value: Secret) -> Result<(), VaultError> {
        let slot = self.slot(key);
        let mut known = slot.lock().await;
        let (k, v) = (key.to_string(), value.clone());
        self.blocking(move |b| b.set(&k, &v)).await?;
        *known = Some(Some(value));
        Ok(())
    }

    pub async fn delete(&self, key: &str) -> Result<(), VaultError> {
        let slot = self.slot(key);
        let mut known = slot.lock().await;
        let k = key.to_string();
        self.blocking(move |b| b.delete(&k)).await?;
        *known = Some(None);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A store whose reads of "slow" wait for a signal, counting every backend read.
    struct Gated {
        inner: MemoryStore,
        reads: AtomicUsize,
        release: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    }

    impl TokenStore for Gated {
        fn get(&self, key: &str) -> Result<Option<Secret>, VaultError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if key == "slow" {
                if let Some(rx) = self.release.lock().unwrap().take() {
                    let _ = rx.recv();
                }
            }
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &Secret) -> Result<(), VaultError> {
            self.inner.set(key, value)
        }
        fn delete(&self, key: &str) -> Result<(), VaultError> {
            self.inner.delete(key)
        }
    }

    #[tokio::test]
    async fn a_slow_keychain_read_blocks_only_its_own_key_and_each_key_is_read_once() {
        let (tx, rx) = std::sync::mpsc::channel();
        let store = Arc::new(Gated {
            inner: MemoryStore::default(),
            reads: AtomicUsize::new(0),
            release: std::sync::Mutex::new(Some(rx)),
        });
        store.inner.set("fast", &Secret::new("f")).unwrap();
        let vault = Vault::new(store.clone());
        let v = vault.clone();
        let slow = tokio::spawn(async move { v.get("slow").await });
        let fast = tokio::time::timeout(std::time::Duration::from_secs(5), vault.get("fast")).await;
        assert_eq!(
            fast.expect("not blocked by the slow key")
                .unwrap()
                .unwrap()
                .expose(),
            "f"
        );
        tx.send(()).unwrap();
        assert!(slow.await.unwrap().unwrap().is_none());
        vault.get("fast").await.unwrap();
        vault.get("slow").await.unwrap();
        assert_eq!(
            store.reads.load(Ordering::SeqCst),
            2,
            "each key read from the backend once"
        );
        vault.set("slow", Secret::new("s")).await.unwrap();
        assert_eq!(vault.get("slow").await.unwrap().unwrap().expose(), "s");
        vault.delete("slow").await.unwrap();
        assert!(vault.get("slow").await.unwrap().is_none());
        assert_eq!(store.reads.load(Ordering::SeqCst), 2);
    }
}
