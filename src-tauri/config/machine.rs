//! Machine credentials without shared secrets, as configured: the private key of a
//! `private_key_jwt` client (RFC 7523 client assertions) and the platform-issued JWT of workload
//! identity federation (`oauth_flow: "jwt_bearer"`). Neither value is ever in the config file:
//! a key is a secret reference or a file path (or, unset, a key the broker generates and keeps
//! in the token store); a workload token is a file or an environment variable, re-read on each
//! use because platforms rotate it.

use std::path::{Path, PathBuf};

use super::raw::RawServer;
use super::validate::ServerValidator;
use super::{OAuthFlow, TokenAuthMethod};
use crate::secret::SecretRef;

/// Where a configured `private_key_jwt` key (PEM) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `os.environ/VAR` or `keychain:ENTRY`.
    Secret(SecretRef),
    /// An absolute path to a PEM file, read on each use.
    File(PathBuf),
}

/// Where the workload's JWT for the jwt-bearer grant comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssertionSource {
    /// `assertion_file`: e.g. a Kubernetes projected service account token.
    File(PathBuf),
    /// `assertion_env`: the name of an environment variable (CI systems).
    Env(String),
}

impl std::fmt::Display for AssertionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AssertionSource::File(p) => write!(f, "the file {}", p.display()),
            AssertionSource::Env(v) => write!(f, "the environment variable {v}"),
        }
    }
}

impl ServerValidator<'_> {
    /// `private_key`: a secret reference or an absolute file path; never the PEM itself.
    pub(super) fn private_key(&mut self, text: &str) -> Option<KeySource> {
        if SecretRef::parse(text).is_some() {
            return self.secret("private_key", text).map(KeySource::Secret);
        }
        if text.contains("-----BEGIN") || text.contains("PRIVATE KEY") {
            self.err("private_key", "holds a literal private key; secrets are never stored in the config file", "put the PEM in a file only you can read and write its absolute path here, or use \"os.environ/VAR\"; or remove \"private_key\" and let the broker generate one (`mcp-auth-broker key NAME` shows its public key)");
            return None;
        }
        let path = self.absolute_path("private_key", text)?;
        if !path.is_file() {
            self.setup.push(format!("private_key names the file {}, which does not exist or is not a file; create it (a P-256 PEM key) or fix the path, then save the config again", path.display()));
        }
        Some(KeySource::File(path))
    }

    /// `assertion_file` / `assertion_env`: exactly one, and only for `oauth_flow: "jwt_bearer"`.
    pub(super) fn assertion(
        &mut self,
        raw: &RawServer,
        flow: Option<OAuthFlow>,
    ) -> Option<AssertionSource> {
        let jwt_bearer = flow == Some(OAuthFlow::JwtBearer);
        let source = match (raw.assertion_file.as_deref(), raw.assertion_env.as_deref()) {
            (Some(_), Some(_)) => {
                self.err(
                    "assertion_file",
                    "and \"assertion_env\" are both set",
                    "keep the one your platform provides the workload token in",
                );
                return None;
            }
            (Some(file), None) => {
                AssertionSource::File(self.absolute_path("assertion_file", file)?)
            }
            (None, Some(var)) => AssertionSource::Env(self.env_name(var)?),
            (None, None) => {
                if jwt_bearer {
                    self.err("oauth_flow", "is \"jwt_bearer\" but no workload token is configured", "add \"assertion_file\": \"/path/to/token\" or \"assertion_env\": \"VAR\" (the JWT your platform issues)");
                }
                return None;
            }
        };
        if !jwt_bearer {
            let field = match source {
                AssertionSource::File(_) => "assertion_file",
                AssertionSource::Env(_) => "assertion_env",
            };
            self.err(
                field,
                "is set but oauth_flow is not \"jwt_bearer\"",
                "set \"oauth_flow\": \"jwt_bearer\" to exchange the workload token, or remove it",
            );
            return None;
        }
        self.check_readable(&source);
        Some(source)
    }

    /// An unreadable workload token leaves the server needing setup; the rest of the file works.
    fn check_readable(&mut self, source: &AssertionSource) {
        match source {
            AssertionSource::File(path) if !path.is_file() => self.setup.push(format!("assertion_file names {}, which does not exist or is not a file; check the platform mounts the workload token there, then save the config again", path.display())),
            AssertionSource::Env(var) if (self.env)(var).is_none_or(|v| v.trim().is_empty()) => self.setup.push(format!("assertion_env names the environment variable {var}, which is not set (or empty) for the broker; set it and restart the broker")),
            _ => {}
        }
    }

    /// `private_key` belongs to `private_key_jwt`, and so does `assertion_audience` (returned).
    pub(super) fn key_method(
        &mut self,
        raw: &RawServer,
        (key, method): (Option<&KeySource>, Option<TokenAuthMethod>),
    ) -> Option<String> {
        if key.is_some() && method != Some(TokenAuthMethod::PrivateKeyJwt) {
            self.err("private_key", "is set but token_endpoint_auth_method is not \"private_key_jwt\"", "set \"token_endpoint_auth_method\": \"private_key_jwt\", or remove \"private_key\"");
        }
        self.assertion_audience(raw.assertion_audience.as_deref(), method)
    }

    /// `assertion_audience`: the `aud` of client assertions, for providers whose token endpoint
    /// wants another one than the issuer (some want the token endpoint URL, some a fixed
    /// identifier URL); an http(s) URL, only with `private_key_jwt`. Never fetched.
    fn assertion_audience(
        &mut self,
        text: Option<&str>,
        method: Option<TokenAuthMethod>,
    ) -> Option<String> {
        let text = text?.trim();
        let field = "assertion_audience";
        if method != Some(TokenAuthMethod::PrivateKeyJwt) {
            self.err(field, "is set but token_endpoint_auth_method is not \"private_key_jwt\"", "set \"token_endpoint_auth_method\": \"private_key_jwt\", or remove \"assertion_audience\"");
            return None;
        }
        let parsed = url::Url::parse(text).ok();
        if parsed.is_none_or(|u| !matches!(u.scheme(), "http" | "https") || !u.has_host()) {
            self.err(field, format!("\"{text}\" is not an http(s) URL"), "write the audience the provider names for client assertions, e.g. its issuer \"https://login.example.com\" or token endpoint \"https://login.example.com/oauth2/token\"");
            return None;
        }
        Some(text.to_string())
    }

    fn absolute_path(&mut self, field: &str, text: &str) -> Option<PathBuf> {
        let path = Path::new(text.trim());
        if text.trim().is_empty() || !path.is_absolute() {
            self.err(
                field,
                format!("\"{text}\" is not an absolute path"),
                "write the file's full path, e.g. \"/var/run/secrets/tokens/mcp\"",
            );
            return None;
        }
        Some(path.to_path_buf())
    }

    fn env_name(&mut self, text: &str) -> Option<String> {
        let var = text
            .strip_prefix(SecretRef::ENV_PREFIX)
            .unwrap_or(text)
            .trim();
        if var.is_empty() || var.contains(['=', '\0']) {
            self.err(
                "assertion_env",
                format!("\"{text}\" is not an environment variable name"),
                "write the variable's name, e.g. \"MCP_WORKLOAD_TOKEN\"",
            );
            return None;
        }
        Some(var.to_string())
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
