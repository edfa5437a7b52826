//! Secret values and references to them.
//!
//! A [`Secret`] never prints its value: `Debug` and `Display` are redacted, it has no `Serialize`,
//! and comparing two secrets takes the same time whatever they hold. A [`SecretRef`] is what the
//! config file holds instead of a secret: the name of an environment variable or a keychain entry.

use std::fmt;

use subtle::ConstantTimeEq;

/// A token, client secret, API key, authorization code or PKCE verifier.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself. Call this only where the value leaves the process on purpose:
    /// an HTTP header or form field sent upstream, or the keychain.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret configured for a server lives. The config file only ever holds one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `os.environ/VAR` (LiteLLM's spelling): read from the environment when needed.
    Env(String),
    /// `keychain:ENTRY`: an entry of this app's service in the OS keychain.
    Keychain(String),
}

impl SecretRef {
    pub const ENV_PREFIX: &'static str = "os.environ/";
    pub const KEYCHAIN_PREFIX: &'static str = "keychain:";

    /// Parses a reference; `None` when the text is not a reference (a literal value).
    pub fn parse(text: &str) -> Option<SecretRef> {
        if let Some(var) = text.strip_prefix(Self::ENV_PREFIX) {
            return Some(SecretRef::Env(var.to_string()));
        }
        text.strip_prefix(Self::KEYCHAIN_PREFIX)
            .map(|entry| SecretRef::Keychain(entry.to_string()))
    }

    /// The keychain reference used for a secret typed into the UI or CLI for `server`/`field`.
    pub fn keychain_for(server: &str, field: &str) -> SecretRef {
        SecretRef::Keychain(format!("config/{server}/{field}"))
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(var) => write!(f, "{}{var}", Self::ENV_PREFIX),
            SecretRef::Keychain(entry) => write!(f, "{}{entry}", Self::KEYCHAIN_PREFIX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2-token");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
    }

    #[test]
    fn secret_refs_parse_env_and_keychain_and_reject_literals() {
        assert_eq!(
            SecretRef::parse("os.environ/GH"),
            Some(SecretRef::Env("GH".into()))
        );
        assert_eq!(
            SecretRef::parse("keychain:config/gh/client_secret"),
            Some(SecretRef::Keychain("config/gh/client_secret".into()))
        );
        assert_eq!(SecretRef::parse("abc123"), None);
        assert_eq!(
            SecretRef::keychain_for("gh", "client_secret").to_string(),
            "keychain:config/gh/client_secret"
        );
    }
}
