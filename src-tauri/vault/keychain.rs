//! The OS keychain (Secret Service, macOS Keychain, Windows Credential Manager) via `keyring`.

use super::{TokenStore, VaultError, SERVICE};
use crate::secret::Secret;

/// Entries of [`SERVICE`] in the OS keychain.
#[derive(Default)]
pub struct KeyringStore;

/// Windows Credential Manager caps a blob at 2560 bytes; stay under it on every platform so a
/// config that works on Linux works everywhere.
pub const MAX_ENTRY_BYTES: usize = 2560;

fn map_err(e: keyring::Error) -> VaultError {
    match e {
        keyring::Error::NoStorageAccess(inner) => {
            let text = inner.to_string();
            if text.to_ascii_lowercase().contains("lock") {
                VaultError::Locked
            } else {
                VaultError::Unavailable(text)
            }
        }
        keyring::Error::PlatformFailure(inner) => VaultError::Unavailable(inner.to_string()),
        keyring::Error::TooLong(field, _) => VaultError::TooLarge(field, MAX_ENTRY_BYTES),
        other => VaultError::Other(other.to_string()),
    }
}

impl TokenStore for KeyringStore {
    fn get(&self, key: &str) -> Result<Option<Secret>, VaultError> {
        let entry = keyring::Entry::new(SERVICE, key).map_err(map_err)?;
        match entry.get_password() {
            Ok(v) => Ok(Some(Secret::new(v))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    fn set(&self, key: &str, value: &Secret) -> Result<(), VaultError> {
        if value.expose().len() > MAX_ENTRY_BYTES {
            return Err(VaultError::TooLarge(key.to_string(), value.expose().len()));
        }
        let entry = keyring::Entry::new(SERVICE, key).map_err(map_err)?;
        entry.set_password(value.expose()).map_err(map_err)
    }

    fn delete(&self, key: &str) -> Result<(), VaultError> {
        let entry = keyring::Entry::new(SERVICE, key).map_err(map_err)?;
        match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }
}
