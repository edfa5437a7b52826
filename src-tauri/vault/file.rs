//! The encrypted file store, for hosts without a keychain (SSH hosts, WSL, containers): one
//! file per entry in an owner-only directory, each sealed with AES-256-GCM under a key the
//! person keeps ([`super::filekey`]).
//!
//! Chosen only explicitly (`--store file` or the config's `token_store`), never as a fallback.
//! Every write uses a fresh random nonce and goes through `fsutil::write_private` (0600, atomic);
//! the entry's name is the associated data, so a file copied over another entry's fails to
//! open instead of handing one server's token to another. A wrong key is found when the store
//! opens (a sealed check file) and nothing is written, deleted or changed then.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

use super::filekey::{KeySource, StoreKey};
use super::{StoreInfo, StoreKind, TokenStore, VaultError};
use crate::secret::Secret;

/// First bytes of every sealed file: the format, so a later one can be told apart.
const MAGIC: &[u8; 4] = b"MAB1";
const NONCE_BYTES: usize = 12;
/// Bound into every entry's associated data with its name.
const AAD_PREFIX: &[u8] = b"mcp-auth-broker token store v1\0";
/// The file that tells a wrong key from a right one before anything is touched.
const CHECK_FILE: &str = "key-check";
/// The check file's entry name (an entry name never starts with NUL) and content.
const CHECK_NAME: &str = "\0key-check";
const CHECK_TEXT: &[u8] = b"mcp-auth-broker key check";
/// Suffix of entry files (the check file has none, so no entry name can collide with it).
const SUFFIX: &str = ".sealed";

/// A sealed file that did not open: wrong key, altered, truncated or another entry's file.
#[derive(Debug, PartialEq, Eq)]
pub struct Unopenable;

/// Seals `plain` for the entry `name` with a fresh random nonce.
pub fn seal(cipher: &Aes256Gcm, name: &str, plain: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_BYTES];
    rand::rng().fill_bytes(&mut nonce);
    let aad = [AAD_PREFIX, name.as_bytes()].concat();
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &aad,
            },
        )
        .expect("AES-GCM encrypts any message of token size");
    [MAGIC.as_slice(), &nonce, &sealed].concat()
}

/// Opens what [`seal`] wrote for the entry `name`.
pub fn unseal(cipher: &Aes256Gcm, name: &str, bytes: &[u8]) -> Result<Vec<u8>, Unopenable> {
    let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or(Unopenable)?;
    if rest.len() < NONCE_BYTES {
        return Err(Unopenable);
    }
    let (nonce, sealed) = rest.split_at(NONCE_BYTES);
    let aad = [AAD_PREFIX, name.as_bytes()].concat();
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map_err(|_| Unopenable)
}

/// The file name of an entry: letters, digits, `-` and `_` kept, every other byte `%XX`, so
/// names map one-to-one onto files and never leave the directory (`/` is escaped too).
pub fn file_name(entry: &str) -> String {
    let mut out = String::with_capacity(entry.len() + SUFFIX.len());
    for b in entry.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => out.push(b as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out.push_str(SUFFIX);
    out
}

/// Entries sealed with one key in one owner-only directory.
pub struct FileStore {
    dir: PathBuf,
    cipher: Aes256Gcm,
    source: KeySource,
}

impl FileStore {
    /// Opens (creating owner-only when missing) the store in `dir`. Refuses a directory others
    /// can enter and a key that does not open the store's check file; neither refusal touches
    /// a file.
    pub fn open(dir: &Path, key: &StoreKey, source: KeySource) -> Result<FileStore, VaultError> {
        let store = FileStore {
            dir: dir.to_path_buf(),
            cipher: Aes256Gcm::new(key.bytes().into()),
            source,
        };
        crate::fsutil::create_private_dir(dir).map_err(|e| store.io("create", dir, e))?;
        store.check_dir_mode()?;
        store.check_key()
    }

    fn io(&self, what: &str, path: &Path, e: std::io::Error) -> VaultError {
        VaultError::StoreFile(format!(
            "cannot {what} {} of the token store: {e} — nothing was deleted",
            path.display()
        ))
    }

    #[cfg(unix)]
    fn check_dir_mode(&self) -> Result<(), VaultError> {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(&self.dir).map_err(|e| self.io("read", &self.dir, e))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 == 0 {
            return Ok(());
        }
        Err(VaultError::StoreFile(format!(
            "the token store directory {d} can be entered by other users (mode {mode:04o}); make it owner-only with `chmod 700 {d}` and start again — nothing was changed",
            d = self.dir.display()
        )))
    }

    #[cfg(not(unix))]
    fn check_dir_mode(&self) -> Result<(), VaultError> {
        Ok(())
    }

    /// The key opens the check file; without one (a new store, or one whose check file was
    /// removed) it must open every entry there is, and the check file is then written.
    fn check_key(self) -> Result<FileStore, VaultError> {
        let check = self.dir.join(CHECK_FILE);
        match fs::read(&check) {
            Ok(bytes) => {
                unseal(&self.cipher, CHECK_NAME, &bytes).map_err(|_| self.wrong_key())?;
                return Ok(self);
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(self.io("read", &check, e)),
        }
        let listing = fs::read_dir(&self.dir).map_err(|e| self.io("list", &self.dir, e))?;
        for entry in listing.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(SUFFIX) else {
                continue;
            };
            let bytes = fs::read(entry.path()).map_err(|e| self.io("read", &entry.path(), e))?;
            let opens = unescape(stem).is_some_and(|n| unseal(&self.cipher, &n, &bytes).is_ok());
            if !opens {
                return Err(self.wrong_key());
            }
        }
        let sealed = seal(&self.cipher, CHECK_NAME, CHECK_TEXT);
        crate::fsutil::write_private(&check, &sealed).map_err(|e| self.io("write", &check, e))?;
        Ok(self)
    }

    fn wrong_key(&self) -> VaultError {
        VaultError::StoreKey(format!(
            "the key from {} does not open the token store in {d}: it is not the key the tokens were stored with (or a file there was altered); start with that key, or move {d} away and sign in again to start a new store — nothing was deleted or changed",
            self.source,
            d = self.dir.display()
        ))
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(file_name(key))
    }
}

/// The entry name of a file stem written by [`file_name`].
fn unescape(stem: &str) -> Option<String> {
    let mut out = Vec::with_capacity(stem.len());
    let mut bytes = stem.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex = [bytes.next()?, bytes.next()?];
        out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
    }
    String::from_utf8(out).ok()
}

impl TokenStore for FileStore {
    fn get(&self, key: &str) -> Result<Option<Secret>, VaultError> {
        let path = self.path(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io("read", &path, e)),
        };
        let plain = unseal(&self.cipher, key, &bytes).map_err(|_| {
            VaultError::StoreFile(format!(
                "the token store file {} does not open with this store's key: it was altered, damaged or copied from another entry; sign in to that server again to replace it — nothing was deleted",
                path.display()
            ))
        })?;
        String::from_utf8(plain)
            .map(|s| Some(Secret::new(s)))
            .map_err(|_| {
                VaultError::StoreFile(format!(
                    "the token store file {} holds no text",
                    path.display()
                ))
            })
    }

    fn set(&self, key: &str, value: &Secret) -> Result<(), VaultError> {
        let path = self.path(key);
        let sealed = seal(&self.cipher, key, value.expose().as_bytes());
        crate::fsutil::write_private(&path, &sealed).map_err(|e| self.io("write", &path, e))
    }

    fn delete(&self, key: &str) -> Result<(), VaultError> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io("delete", &path, e)),
        }
    }

    fn info(&self) -> StoreInfo {
        StoreInfo {
            kind: StoreKind::File,
            description: format!(
                "an encrypted file store in {} (key from {})",
                self.dir.display(),
                self.source
            ),
        }
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
