//! The key of the encrypted file store ([`super::file::FileStore`]): 32 random bytes written in
//! base64, read from an environment variable or from a key file only its owner can read.
//!
//! The key never appears in an error, a log line or `Debug`: messages name where the key was
//! looked for, never what was found there.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;

use super::VaultError;

/// The environment variable that holds the key when no key file is configured.
pub const KEY_ENV: &str = "MCP_AUTH_BROKER_STORE_KEY";

/// Bytes in a key (AES-256).
pub const KEY_BYTES: usize = 32;

/// How a person makes a key; every "no usable key" message shows it.
pub const MAKE_KEY: &str = "openssl rand -base64 32";

/// Where the key comes from. Displayed in `status` and the dashboard, so it names the place only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An environment variable (normally [`KEY_ENV`]).
    Env(String),
    /// A file holding the base64 key; refused unless owner-only.
    File(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env(var) => write!(f, "the environment variable {var}"),
            KeySource::File(path) => write!(f, "the key file {}", path.display()),
        }
    }
}

/// A decoded key. `Debug` is redacted; the bytes leave only into the cipher.
#[derive(Clone)]
pub struct StoreKey([u8; KEY_BYTES]);

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey([redacted])")
    }
}

impl StoreKey {
    /// Parses the base64 text of a key (surrounding whitespace allowed, padding optional).
    /// The error says what is wrong with the text without repeating it.
    pub fn parse(text: &str) -> Result<StoreKey, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("it is empty".into());
        }
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text))
            .map_err(|_| "it is not base64 text".to_string())?;
        let bytes: [u8; KEY_BYTES] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!("it decodes to {} bytes instead of {KEY_BYTES}", b.len())
        })?;
        Ok(StoreKey(bytes))
    }

    pub(super) fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }

    /// Reads the key from `source`; `env` reads one environment variable (the process's, or a
    /// test's). A key file must be a regular file with no permission for group or others.
    pub fn load(
        source: &KeySource,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<StoreKey, VaultError> {
        let text = match source {
            KeySource::Env(var) => env(var)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| VaultError::StoreKey(missing_key_message(var)))?,
            KeySource::File(path) => read_key_file(path)?,
        };
        StoreKey::parse(&text).map_err(|why| {
            VaultError::StoreKey(format!(
                "the token store key in {source} is not usable: {why}; it must be {KEY_BYTES} random bytes in base64 (make one with `{MAKE_KEY}`) — nothing was changed"
            ))
        })
    }
}

/// What to do when neither a key file nor the variable is there.
pub fn missing_key_message(var: &str) -> String {
    format!(
        "the file token store (--store file) needs a key and {var} is not set: export {var} with {KEY_BYTES} random bytes in base64 (make one with `{MAKE_KEY}`), or keep the key in a file only you can read and pass --store-key-file PATH (config: \"token_store_key_file\") — nothing was changed"
    )
}

/// Why a key file with these permission bits is refused, if it is: anyone but the owner may
/// read or change it. (Pure, for unit tests; the caller reads the mode.)
pub fn mode_problem(path: &Path, mode: u32) -> Option<String> {
    (mode & 0o077 != 0).then(|| {
        format!(
            "the key file {} can be read or changed by other users (mode {:04o}); make it owner-only with `chmod 600 {}` and start again — nothing was changed",
            path.display(),
            mode & 0o7777,
            path.display()
        )
    })
}

fn read_key_file(path: &Path) -> Result<String, VaultError> {
    let refuse = |why: String| VaultError::StoreKey(why);
    let meta = std::fs::metadata(path).map_err(|e| {
        refuse(match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "the key file {p} does not exist; create it owner-only with `(umask 077; {MAKE_KEY} > {p})`, or set {KEY_ENV} instead — nothing was changed",
                p = path.display()
            ),
            _ => format!("cannot read the key file {}: {e}", path.display()),
        })
    })?;
    if !meta.is_file() {
        return Err(refuse(format!(
            "the key file {} is not a regular file",
            path.display()
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Some(why) = mode_problem(path, meta.permissions().mode()) {
            return Err(refuse(why));
        }
    }
    std::fs::read_to_string(path)
        .map_err(|e| refuse(format!("cannot read the key file {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn a_base64_key_of_32_bytes_parses_with_or_without_padding_and_whitespace() {
        let key = StoreKey::parse(&format!("  {GOOD}\n")).unwrap();
        assert_eq!(key.bytes()[31], 31);
        let bare = StoreKey::parse(GOOD.trim_end_matches('=')).unwrap();
        assert_eq!(bare.bytes(), key.bytes());
    }

    #[test]
    fn a_key_of_the_wrong_length_or_not_base64_is_refused_without_echoing_it() {
        let short = StoreKey::parse("c2hvcnQta2V5").unwrap_err();
        assert!(short.contains("9 bytes instead of 32"), "{short}");
        let junk = StoreKey::parse("not base64 at all!").unwrap_err();
        assert!(junk.contains("not base64"), "{junk}");
        assert!(!junk.contains("at all"), "{junk}");
        assert!(StoreKey::parse(" \n").unwrap_err().contains("empty"));
    }

    #[test]
    fn a_key_never_shows_in_debug() {
        let key = StoreKey::parse(GOOD).unwrap();
        assert_eq!(format!("{key:?}"), "StoreKey([redacted])");
    }

    #[test]
    fn a_missing_variable_names_the_variable_the_flag_and_how_to_make_a_key() {
        let err = StoreKey::load(&KeySource::Env(KEY_ENV.into()), &|_| None).unwrap_err();
        let text = err.to_string();
        for part in [KEY_ENV, "--store-key-file", MAKE_KEY, "nothing was changed"] {
            assert!(text.contains(part), "{part}: {text}");
        }
        let bad = StoreKey::load(&KeySource::Env("K".into()), &|_| Some("abc".into()));
        let text = bad.unwrap_err().to_string();
        assert!(text.contains("environment variable K"), "{text}");
        assert!(!text.contains("abc"), "never the value: {text}");
    }

    #[test]
    fn only_an_owner_only_key_file_mode_is_accepted() {
        let p = Path::new("/k");
        assert_eq!(mode_problem(p, 0o100600), None);
        assert_eq!(mode_problem(p, 0o100400), None);
        let loose = mode_problem(p, 0o100644).unwrap();
        assert!(
            loose.contains("mode 0644") && loose.contains("chmod 600 /k"),
            "{loose}"
        );
        assert!(mode_problem(p, 0o100620).is_some());
        assert!(mode_problem(p, 0o100601).is_some());
    }
}
