//! Secrets at rest: the OS keychain (or, chosen explicitly, an encrypted file store) behind a
//! small trait, with an in-process cache.
//!
//! Architecture Invariant: only `vault::keychain` imports `keyring`. Callers use [`Vault`]
//! (async; blocking store calls run on the blocking pool).

pub mod choice;
pub mod file;
pub mod filekey;
pub mod keychain;
pub mod memory;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;

type Slot = Arc<Mutex<Option<Option<Secret>>>>;

use crate::secret::{Secret, SecretRef};
use crate::sync::lock;

pub use choice::{open_store, StoreChoice, StoreInfo, StoreKind};
pub use file::FileStore;
pub use keychain::KeyringStore;
pub use memory::MemoryStore;

/// The keychain service name every entry of this app lives under.
pub const SERVICE: &str = "mcp-auth-broker";

#[derive(Debug, Clone, thiserror::Error)]
pub enum VaultError {
    #[error("the OS keychain is not available ({0}); on Linux start a Secret Service (GNOME Keyring or KWallet) and unlock it, then try again; on a host without one (SSH, WSL, containers) keep the tokens in an encrypted file instead: `--store file` with a key in MCP_AUTH_BROKER_STORE_KEY (see the README) — nothing was deleted")]
    Unavailable(String),
    #[error("the OS keychain is locked; unlock it and try again (GNOME: the Passwords and Keys app, or `secret-tool search --unlock service mcp-auth-broker`; KDE: KWallet Manager; macOS: Keychain Access) — nothing was deleted")]
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
    /// The file store's key is missing, malformed, exposed or not the store's (says what to do).
    #[error("{0}")]
    StoreKey(String),
    /// A file of the file store could not be read, written or opened (says which and what to do).
    #[error("{0}")]
    StoreFile(String),
}

/// A synchronous secret store. Implementations may block; [`Vault`] calls them off the runtime.
pub trait TokenStore: Send + Sync + 'static {
    fn get(&self, key: &str) -> Result<Option<Secret>, VaultError>;
    fn set(&self, key: &str, value: &Secret) -> Result<(), VaultError>;
    /// Deleting a missing entry is not an error.
    fn delete(&self, key: &str) -> Result<(), VaultError>;
    /// Which store this is, for `status` and the dashboard.
    fn info(&self) -> StoreInfo;
}

/// The secret store the rest of the broker uses: async, cached (each secret read from the
/// keychain at most once per process), cheap to clone.
#[derive(Clone)]
pub struct Vault {
    backend: Arc<dyn TokenStore>,
    /// Per key: `None` = not read yet; `Some(None)` records "known absent" so a missing entry is
    /// not re-queried on every request.
    cache: Arc<std::sync::Mutex<HashMap<String, Slot>>>,
    /// Values the keychain refused ([`Vault::write_or_keep`]; `None`: a delete) that this process
    /// uses meanwhile and writes once the keychain accepts again: a refreshed token set exists
    /// nowhere else once the authorization server has rotated the old refresh token.
    unsaved: Arc<std::sync::Mutex<HashMap<String, Option<Secret>>>>,
}

impl Vault {
    pub fn new(backend: Arc<dyn TokenStore>) -> Self {
        Vault {
            backend,
            cache: Arc::default(),
            unsaved: Arc::default(),
        }
    }

    /// Which store holds the secrets.
    pub fn info(&self) -> StoreInfo {
        self.backend.info()
    }

    /// A vault over a fresh in-memory store (unit tests).
    pub fn in_memory() -> Self {
        Vault::new(Arc::new(MemoryStore::default()))
    }

    /// The per-key slot: one keychain call per key at a time, and other keys never wait on it
    /// (a keychain prompt for one entry must not stall every request of the process).
    fn slot(&self, key: &str) -> Slot {
        let mut cache = lock(&self.cache);
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
        self.write_known(key, Some(value)).await
    }

    pub async fn delete(&self, key: &str) -> Result<(), VaultError> {
        self.write_known(key, None).await
    }

    /// Writes `value` (`None`: deletes) and, once the keychain took it, caches it.
    async fn write_known(&self, key: &str, value: Option<Secret>) -> Result<(), VaultError> {
        let slot = self.slot(key);
        let mut known = slot.lock().await;
        self.write(key, value.clone()).await?;
        self.unsaved().remove(key);
        *known = Some(value);
        Ok(())
    }

    async fn write(&self, key: &str, value: Option<Secret>) -> Result<(), VaultError> {
        let k = key.to_string();
        self.blocking(move |b| match &value {
            Some(v) => b.set(&k, v),
            None => b.delete(&k),
        })
        .await
    }

    fn unsaved(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Secret>>> {
        lock(&self.unsaved)
    }

    /// Like [`Vault::set`] / [`Vault::delete`], but when the keychain refuses (locked, gone) this
    /// process still uses the new value and writes it at the next [`Vault::save_unsaved`]. The
    /// keychain's error is returned all the same, for the caller to report.
    pub async fn write_or_keep(&self, key: &str, value: Option<Secret>) -> Result<(), VaultError> {
        let slot = self.slot(key);
        let mut known = slot.lock().await;
        let written = self.write(key, value.clone()).await;
        match &written {
            Ok(()) => self.unsaved().remove(key),
            Err(_) => self.unsaved().insert(key.to_string(), value.clone()),
        };
        *known = Some(value);
        written
    }

    /// Whether values kept by [`Vault::write_or_keep`] still wait for the keychain.
    pub fn has_unsaved(&self) -> bool {
        !self.unsaved().is_empty()
    }

    /// Writes what [`Vault::write_or_keep`] could not; stops at the first refusal.
    pub async fn save_unsaved(&self) -> Result<(), VaultError> {
        let keys: Vec<String> = self.unsaved().keys().cloned().collect();
        for key in keys {
            let slot = self.slot(&key);
            let _known = slot.lock().await;
            // Written (or replaced) by another call while this one waited for the slot.
            let Some(value) = self.unsaved().get(&key).cloned() else {
                continue;
            };
            self.write(&key, value).await?;
            self.unsaved().remove(&key);
        }
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
                if let Some(rx) = lock(&self.release).take() {
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
        fn info(&self) -> StoreInfo {
            self.inner.info()
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

    /// A store that refuses every call while `locked`, as a locked keychain does.
    #[derive(Default)]
    struct Lockable {
        inner: MemoryStore,
        locked: std::sync::atomic::AtomicBool,
    }

    impl Lockable {
        fn check(&self) -> Result<(), VaultError> {
            match self.locked.load(Ordering::SeqCst) {
                true => Err(VaultError::Locked),
                false => Ok(()),
            }
        }
    }

    impl TokenStore for Lockable {
        fn get(&self, key: &str) -> Result<Option<Secret>, VaultError> {
            self.check()?;
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &Secret) -> Result<(), VaultError> {
            self.check()?;
            self.inner.set(key, value)
        }
        fn delete(&self, key: &str) -> Result<(), VaultError> {
            self.check()?;
            self.inner.delete(key)
        }
        fn info(&self) -> StoreInfo {
            self.inner.info()
        }
    }

    fn stored(store: &Lockable, key: &str) -> Option<String> {
        store
            .inner
            .get(key)
            .unwrap()
            .map(|s| s.expose().to_string())
    }

    #[tokio::test]
    async fn a_value_the_locked_keychain_refused_is_used_meanwhile_and_written_once_unlocked() {
        let store = Arc::new(Lockable::default());
        store.inner.set("k", &Secret::new("old")).unwrap();
        store.inner.set("gone", &Secret::new("x")).unwrap();
        let vault = Vault::new(store.clone());
        store.locked.store(true, Ordering::SeqCst);
        let refused = vault.write_or_keep("k", Some(Secret::new("new"))).await;
        assert!(matches!(refused, Err(VaultError::Locked)), "{refused:?}");
        assert!(vault.write_or_keep("gone", None).await.is_err());
        assert_eq!(vault.get("k").await.unwrap().unwrap().expose(), "new");
        assert!(vault.get("gone").await.unwrap().is_none());
        assert!(vault.has_unsaved());
        assert!(vault.save_unsaved().await.is_err(), "still locked");
        assert_eq!(stored(&store, "k").as_deref(), Some("old"));

        store.locked.store(false, Ordering::SeqCst);
        vault.save_unsaved().await.unwrap();
        assert!(!vault.has_unsaved());
        assert_eq!(stored(&store, "k").as_deref(), Some("new"));
        assert_eq!(stored(&store, "gone"), None);
    }

    #[tokio::test]
    async fn a_later_write_replaces_a_value_still_waiting_for_the_keychain() {
        let store = Arc::new(Lockable::default());
        let vault = Vault::new(store.clone());
        store.locked.store(true, Ordering::SeqCst);
        assert!(vault
            .write_or_keep("k", Some(Secret::new("first")))
            .await
            .is_err());
        store.locked.store(false, Ordering::SeqCst);
        vault.set("k", Secret::new("second")).await.unwrap();
        assert!(!vault.has_unsaved(), "the newer value is written");
        vault.save_unsaved().await.unwrap();
        assert_eq!(stored(&store, "k").as_deref(), Some("second"));
    }
}
