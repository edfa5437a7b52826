//! Which store holds the secrets: the OS keychain (the default) or the encrypted file store,
//! chosen by `--store` or the config's `token_store`. Never chosen for the person: a missing
//! keychain stays an error (whose message names `--store file`), it does not switch stores.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::file::FileStore;
use super::filekey::{KeySource, StoreKey, KEY_ENV};
use super::{KeyringStore, TokenStore, VaultError};

/// The kinds of store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    #[default]
    Keychain,
    File,
    /// In-process only (tests, benchmarks).
    Memory,
}

impl StoreKind {
    /// The names a person may write (`--store`, `token_store`).
    pub const CHOICES: &'static str = "\"keychain\" or \"file\"";

    pub fn parse(text: &str) -> Result<StoreKind, String> {
        match text {
            "keychain" => Ok(StoreKind::Keychain),
            "file" => Ok(StoreKind::File),
            other => Err(format!(
                "\"{other}\" is not a token store; use {}",
                Self::CHOICES
            )),
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreKind::Keychain => "keychain",
            StoreKind::File => "file",
            StoreKind::Memory => "memory",
        })
    }
}

/// Which store holds the tokens, as `status` and the dashboard say it. Names places, never a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreInfo {
    pub kind: StoreKind,
    /// "the OS keychain", "an encrypted file store in … (key from …)".
    pub description: String,
}

/// The store settings after the command line and the config are merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreChoice {
    pub kind: StoreKind,
    /// The file store's key file; without one the key is read from [`KEY_ENV`].
    pub key_file: Option<PathBuf>,
}

impl StoreChoice {
    /// Where the file store's key comes from.
    pub fn key_source(&self) -> KeySource {
        match &self.key_file {
            Some(path) => KeySource::File(path.clone()),
            None => KeySource::Env(KEY_ENV.to_string()),
        }
    }
}

/// The directory of the file store under the broker's data dir.
pub fn file_store_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tokens")
}

/// Opens the chosen store, reading the process environment for the key.
pub fn open_store(
    choice: &StoreChoice,
    data_dir: &Path,
) -> Result<Arc<dyn TokenStore>, VaultError> {
    open_store_in(choice, data_dir, &|var| std::env::var(var).ok())
}

/// [`open_store`] with the environment as a parameter. The file store's key and directory are
/// checked here, so a wrong or missing key stops the start before anything is read or written.
pub fn open_store_in(
    choice: &StoreChoice,
    data_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<dyn TokenStore>, VaultError> {
    match choice.kind {
        StoreKind::Keychain => Ok(Arc::new(KeyringStore)),
        StoreKind::Memory => Ok(Arc::new(super::MemoryStore::default())),
        StoreKind::File => {
            let source = choice.key_source();
            let key = StoreKey::load(&source, env)?;
            Ok(Arc::new(FileStore::open(
                &file_store_dir(data_dir),
                &key,
                source,
            )?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keychain_and_file_are_choices_a_person_can_write() {
        assert_eq!(StoreKind::parse("file"), Ok(StoreKind::File));
        assert_eq!(StoreKind::parse("keychain"), Ok(StoreKind::Keychain));
        let err = StoreKind::parse("memory").unwrap_err();
        assert!(err.contains("\"keychain\" or \"file\""), "{err}");
    }

    #[test]
    fn the_file_store_without_a_key_creates_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let choice = StoreChoice {
            kind: StoreKind::File,
            key_file: None,
        };
        let err = open_store_in(&choice, tmp.path(), &|_| None).err().unwrap();
        assert!(matches!(err, VaultError::StoreKey(_)), "{err:?}");
        assert!(!file_store_dir(tmp.path()).exists());
    }
}
