//! The OS keychain (Secret Service, macOS Keychain, Windows Credential Manager) via `keyring`.
//!
//! Windows Credential Manager caps a secret at 2560 bytes of UTF-16 (1280 characters), and some
//! upstream JWTs are longer. Values that do not fit are split: the entry itself then holds a
//! marker with the chunk count and the pieces live in `{key}#chunk1..N`. Chunks are written
//! before the marker, and a failed read never deletes anything.

use super::{StoreInfo, StoreKind, TokenStore, VaultError, SERVICE};
use crate::secret::Secret;

/// Entries of [`SERVICE`] in the OS keychain.
#[derive(Default)]
pub struct KeyringStore;

/// Windows Credential Manager caps a blob at 2560 bytes; stay under it on every platform so a
/// config that works on Linux works everywhere.
pub const MAX_ENTRY_BYTES: usize = 2560;
/// UTF-16 code units per chunk (2 bytes each), with room to spare under [`MAX_ENTRY_BYTES`].
pub const CHUNK_UNITS: usize = 1200;
/// Most chunks one value may use (≈ 1.2 MB of text, far beyond any token).
pub const MAX_CHUNKS: usize = 1000;
const MARKER: &str = "mcp-auth-broker:chunked:v1:";

fn map_err(e: keyring::Error) -> VaultError {
    if e.to_string().to_ascii_lowercase().contains("locked") {
        return VaultError::Locked;
    }
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

/// Splits `value` into pieces of at most [`CHUNK_UNITS`] UTF-16 units (never inside a char).
/// `None` when it fits in one entry as it is.
pub fn split(value: &str) -> Option<Vec<String>> {
    let units: usize = value.encode_utf16().count();
    if units <= CHUNK_UNITS && !value.starts_with(MARKER) {
        return None;
    }
    let mut out = Vec::new();
    let mut current = String::new();
    let mut n = 0;
    for c in value.chars() {
        if n + c.len_utf16() > CHUNK_UNITS {
            out.push(std::mem::take(&mut current));
            n = 0;
        }
        current.push(c);
        n += c.len_utf16();
    }
    out.push(current);
    Some(out)
}

/// The chunk count a marker value names, if it is one.
pub fn chunk_count(stored: &str) -> Option<usize> {
    stored
        .strip_prefix(MARKER)?
        .parse()
        .ok()
        .filter(|n| (1..=MAX_CHUNKS).contains(n))
}

fn chunk_key(key: &str, i: usize) -> String {
    format!("{key}#chunk{i}")
}

fn raw_get(key: &str) -> Result<Option<String>, VaultError> {
    let entry = keyring::Entry::new(SERVICE, key).map_err(map_err)?;
    match entry.get_password() {
        Ok(v) => Ok(Some(v)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(map_err(e)),
    }
}

fn raw_set(key: &str, value: &str) -> Result<(), VaultError> {
    keyring::Entry::new(SERVICE, key)
        .map_err(map_err)?
        .set_password(value)
        .map_err(map_err)
}

fn raw_delete(key: &str) -> Result<(), VaultError> {
    let entry = keyring::Entry::new(SERVICE, key).map_err(map_err)?;
    match entry.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(map_err(e)),
    }
}

impl TokenStore for KeyringStore {
    fn get(&self, key: &str) -> Result<Option<Secret>, VaultError> {
        let Some(stored) = raw_get(key)? else {
            return Ok(None);
        };
        let Some(n) = chunk_count(&stored) else {
            return Ok(Some(Secret::new(stored)));
        };
        let mut value = String::new();
        for i in 1..=n {
            match raw_get(&chunk_key(key, i))? {
                Some(piece) => value.push_str(&piece),
                None => {
                    return Err(VaultError::Other(format!(
                        "keychain entry {key} is incomplete (part {i} of {n} is missing); sign in again or re-enter the secret"
                    )))
                }
            }
        }
        Ok(Some(Secret::new(value)))
    }

    fn set(&self, key: &str, value: &Secret) -> Result<(), VaultError> {
        let old = raw_get(key)?.as_deref().and_then(chunk_count).unwrap_or(0);
        let new = match split(value.expose()) {
            None => {
                raw_set(key, value.expose())?;
                0
            }
            Some(pieces) if pieces.len() > MAX_CHUNKS => {
                return Err(VaultError::TooLarge(key.to_string(), value.expose().len()))
            }
            Some(pieces) => {
                for (i, piece) in pieces.iter().enumerate() {
                    raw_set(&chunk_key(key, i + 1), piece)?;
                }
                raw_set(key, &format!("{MARKER}{}", pieces.len()))?;
                pieces.len()
            }
        };
        for i in (new + 1)..=old {
            raw_delete(&chunk_key(key, i))?;
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), VaultError> {
        let old = raw_get(key)?.as_deref().and_then(chunk_count).unwrap_or(0);
        raw_delete(key)?;
        for i in 1..=old {
            raw_delete(&chunk_key(key, i))?;
        }
        Ok(())
    }

    fn info(&self) -> StoreInfo {
        StoreInfo {
            kind: StoreKind::Keychain,
            description: "the OS keychain".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_keychain_is_reported_as_locked() {
        let e = keyring::Error::PlatformFailure(
            "DBus error: Cannot create an item in a locked collection".into(),
        );
        assert!(matches!(map_err(e), VaultError::Locked));
        let e = keyring::Error::PlatformFailure("org.freedesktop.DBus.Error.ServiceUnknown".into());
        let err = map_err(e);
        assert!(matches!(err, VaultError::Unavailable(_)));
        assert!(err.to_string().contains("nothing was deleted"));
    }

    #[test]
    fn short_values_are_stored_as_they_are() {
        assert_eq!(split("abc"), None);
        assert_eq!(split(&"a".repeat(CHUNK_UNITS)), None);
    }

    #[test]
    fn long_values_split_into_pieces_that_fit_windows_and_join_back() {
        let jwt = "eyJ".to_string() + &"x".repeat(5000);
        let pieces = split(&jwt).unwrap();
        assert_eq!(pieces.len(), 5);
        assert!(pieces
            .iter()
            .all(|p| p.encode_utf16().count() * 2 <= MAX_ENTRY_BYTES));
        assert_eq!(pieces.concat(), jwt);
        let wide = "é€😀".repeat(700);
        let pieces = split(&wide).unwrap();
        assert!(pieces
            .iter()
            .all(|p| p.encode_utf16().count() <= CHUNK_UNITS));
        assert_eq!(pieces.concat(), wide);
    }

    #[test]
    fn a_value_that_looks_like_a_marker_is_chunked_so_it_reads_back_unchanged() {
        let tricky = format!("{MARKER}3");
        assert_eq!(split(&tricky).unwrap(), vec![tricky.clone()]);
        assert_eq!(chunk_count(&tricky), Some(3));
        assert_eq!(chunk_count(&format!("{MARKER}0")), None);
        assert_eq!(chunk_count("plain"), None);
    }
}
