//! Parsers for the fields of one server entry that need more than a type check: the transport,
//! auth type and flow, URLs, secret references, the audience, scopes and extra headers. Each reports through
//! [`ServerValidator::err`] with the field, the problem and the fix, and returns what was usable.

use std::collections::BTreeMap;

use serde_json::Value;
use url::Url;

use super::raw::RawServer;
use super::validate::ServerValidator;
use super::{AuthType, HeaderValue, OAuthFlow, TokenAuthMethod, Transport};
use crate::secret::SecretRef;
use crate::urlcheck::check_remote_url;

impl ServerValidator<'_> {
    /// One setting with a broker name and a LiteLLM name: either may be written, or both when
    /// they agree.
    pub(super) fn either<'v>(
        &mut self,
        ours: &str,
        value: &'v Option<String>,
        litellm: &str,
        alias: &'v Option<String>,
    ) -> Option<&'v str> {
        match (value.as_deref(), alias.as_deref()) {
            (Some(a), Some(b)) if a != b => {
                self.err(
                    ours,
                    format!("is \"{a}\" but {litellm} (LiteLLM's name for it) is \"{b}\""),
                    format!("keep one of \"{ours}\" and \"{litellm}\""),
                );
                None
            }
            (a, b) => a.or(b),
        }
    }

    /// The client ID as written, or read from the environment for `os.environ/VAR` (LiteLLM's
    /// spelling). An unset variable leaves the server needing setup; the rest of the file works.
    pub(super) fn client_id(&mut self, text: &str) -> Option<String> {
        match SecretRef::parse(text) {
            Some(SecretRef::Env(var)) if !var.is_empty() => match (self.env)(&var) {
                Some(value) if !value.trim().is_empty() => Some(value.trim().to_string()),
                _ => {
                    self.setup.push(format!("client_id names the environment variable {var}, which is not set for the broker; set it and restart the broker"));
                    None
                }
            },
            Some(_) => {
                self.err(
                    "client_id",
                    format!("\"{text}\" is not a client ID"),
                    "write the client ID as is (it is not a secret) or as \"os.environ/VAR\"",
                );
                None
            }
            None if text.trim().is_empty() => {
                self.err(
                    "client_id",
                    "is empty",
                    "remove it or paste the client ID from the provider",
                );
                None
            }
            None => Some(text.to_string()),
        }
    }

    /// `headers` and LiteLLM's `static_headers`, merged; one name with two values is an error.
    pub(super) fn all_headers(&mut self, raw: &RawServer) -> BTreeMap<String, HeaderValue> {
        let mut out = self.headers(raw.headers.as_ref());
        for (name, value) in self.headers(raw.static_headers.as_ref()) {
            match out.get(&name) {
                Some(v) if *v != value => self.err(
                    "static_headers",
                    format!("\"{name}\" is also in \"headers\" with another value"),
                    "keep the header in one of them",
                ),
                _ => {
                    out.insert(name, value);
                }
            }
        }
        out
    }

    /// Extra authorization-request parameters: never one the broker sets itself (the sign-in's
    /// own `state`, PKCE, redirect, scope, resource or audience must not be overridden).
    pub(super) fn authorization_params(
        &mut self,
        raw: Option<&BTreeMap<String, String>>,
    ) -> BTreeMap<String, String> {
        const OWN: [&str; 10] = [
            "response_type",
            "client_id",
            "redirect_uri",
            "state",
            "scope",
            "code_challenge",
            "code_challenge_method",
            "resource",
            "audience",
            "nonce",
        ];
        let mut out = BTreeMap::new();
        for (name, value) in raw.into_iter().flatten() {
            if OWN.contains(&name.as_str()) {
                self.err(
                    "authorization_params",
                    format!("\"{name}\" is set by the broker itself"),
                    "remove it (use scopes, audience or send_resource for those)",
                );
            } else if name.is_empty() || value.chars().any(char::is_control) {
                self.err(
                    "authorization_params",
                    format!("\"{name}\" is not a usable parameter"),
                    "use names and one-line values, e.g. \"access_type\": \"offline\"",
                );
            } else {
                out.insert(name.clone(), value.clone());
            }
        }
        out
    }

    pub(super) fn transport(&mut self, text: Option<&str>) -> Transport {
        match text {
            None | Some("http") | Some("streamable_http") | Some("streamable-http") => {
                Transport::Http
            }
            Some("sse") => Transport::Sse,
            Some(other) => {
                self.err(
                    "transport",
                    format!("\"{other}\" is not a supported transport"),
                    "use \"http\" (Streamable HTTP) or \"sse\"",
                );
                Transport::Http
            }
        }
    }

    pub(super) fn auth_type(&mut self, text: Option<&str>) -> AuthType {
        match text {
            None | Some("none") => AuthType::None,
            Some("bearer_token") => AuthType::BearerToken,
            Some("api_key") => AuthType::ApiKey,
            Some("oauth2") => AuthType::OAuth2,
            Some(other) => {
                self.err(
                    "auth_type",
                    format!("\"{other}\" is not an auth type"),
                    "use one of \"none\", \"bearer_token\", \"api_key\", \"oauth2\"",
                );
                AuthType::None
            }
        }
    }

    /// `oauth_flow`, or LiteLLM's `oauth2_flow`.
    pub(super) fn oauth_flow(&mut self, raw: &RawServer) -> Option<OAuthFlow> {
        match self.either(
            "oauth_flow",
            &raw.oauth_flow,
            "oauth2_flow",
            &raw.oauth2_flow,
        ) {
            None => None,
            Some("authorization_code") => Some(OAuthFlow::AuthorizationCode),
            Some("client_credentials") => Some(OAuthFlow::ClientCredentials),
            Some("enterprise") => Some(OAuthFlow::Enterprise),
            Some("jwt_bearer") => Some(OAuthFlow::JwtBearer),
            Some(other) => {
                self.err("oauth_flow", format!("\"{other}\" is not an OAuth flow"), "use \"authorization_code\", \"client_credentials\", \"enterprise\" (tokens via the company sign-in) or \"jwt_bearer\" (a workload token), or remove it to let the broker classify the server");
                None
            }
        }
    }

    /// [`Self::url`] for a field that may be absent.
    pub(super) fn opt_url(&mut self, field: &str, text: Option<&str>) -> Option<Url> {
        text.and_then(|t| self.url(field, t))
    }

    /// [`Self::secret`] for a field that may be absent.
    pub(super) fn opt_secret(&mut self, field: &str, text: Option<&str>) -> Option<SecretRef> {
        text.and_then(|t| self.secret(field, t))
    }

    pub(super) fn url(&mut self, field: &str, text: &str) -> Option<Url> {
        match check_remote_url(text) {
            Ok(url) => Some(url),
            Err(problem) => {
                self.err(field, format!("\"{text}\" {problem}"), "use an absolute https URL, e.g. \"https://mcp.example.com/mcp\" (http only for 127.0.0.1 or localhost)");
                None
            }
        }
    }

    pub(super) fn cimd_url(&mut self, text: &str) -> Option<Url> {
        let url = self.url("client_id_metadata_url", text)?;
        if url.scheme() != "https" || url.path() == "/" {
            self.err("client_id_metadata_url", format!("\"{text}\" must be an https URL with a path"), "host the client ID metadata document at e.g. https://example.com/mcp-auth-broker.json");
            return None;
        }
        Some(url)
    }

    pub(super) fn secret(&mut self, field: &str, text: &str) -> Option<SecretRef> {
        match SecretRef::parse(text) {
            Some(SecretRef::Env(var)) if var.is_empty() => {
                self.err(
                    field,
                    "names an empty environment variable",
                    "write \"os.environ/VAR_NAME\"",
                );
                None
            }
            Some(SecretRef::Keychain(entry)) if entry.is_empty() => {
                self.err(
                    field,
                    "names an empty keychain entry",
                    "store the secret from the app or CLI, which writes the reference for you",
                );
                None
            }
            Some(r) => Some(r),
            None => {
                self.err(
                    field,
                    "holds a literal secret; secrets are never stored in the config file",
                    format!("use \"os.environ/VAR\", or store it in the keychain with `mcp-auth-broker add {} --{} -` (the app writes \"{}\")", self.name, field.replace('_', "-"), SecretRef::keychain_for(self.name, field)),
                );
                None
            }
        }
    }

    /// `dpop`: true or false; anything else is an error naming the choices.
    pub(super) fn dpop(&mut self, raw: Option<&Value>) -> Option<bool> {
        match raw? {
            Value::Bool(b) => Some(*b),
            other => {
                self.err(
                    "dpop",
                    format!("is {other}, not true or false"),
                    "set \"dpop\": true (always bind this server's tokens to a key), false (never), or remove it (bound when the authorization server offers DPoP)",
                );
                None
            }
        }
    }

    pub(super) fn audience(&mut self, text: &str) -> Option<String> {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.chars().any(char::is_control) || trimmed.len() > 2048 {
            self.err(
                "audience",
                format!("{text:?} is not an audience"),
                "give the API identifier the authorization server expects, e.g. \"https://api.example.com\" (one line, at most 2048 bytes), or remove it",
            );
            return None;
        }
        Some(trimmed.to_string())
    }

    pub(super) fn token_auth_method(&mut self, text: &str) -> Option<TokenAuthMethod> {
        match text {
            "client_secret_basic" => Some(TokenAuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(TokenAuthMethod::ClientSecretPost),
            "none" => Some(TokenAuthMethod::None),
            "private_key_jwt" => Some(TokenAuthMethod::PrivateKeyJwt),
            other => {
                self.err(
                    "token_endpoint_auth_method",
                    format!("\"{other}\" is not a client authentication method the broker can use"),
                    "use \"client_secret_basic\", \"client_secret_post\", \"private_key_jwt\" or \"none\", or remove it to let the broker choose",
                );
                None
            }
        }
    }

    pub(super) fn scopes(&mut self, raw: Option<&Value>) -> Vec<String> {
        match raw {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(s) if !s.is_empty() && !s.contains(char::is_whitespace) => {
                            out.push(s.to_string())
                        }
                        _ => {
                            self.err("scopes", format!("{item} is not a scope"), "list scopes as strings without spaces, e.g. [\"repo\", \"read:user\"]");
                        }
                    }
                }
                out
            }
            Some(other) => {
                self.err(
                    "scopes",
                    format!("{other} is neither a list nor a string"),
                    "use a list like [\"repo\", \"read:user\"] or a space-separated string",
                );
                Vec::new()
            }
        }
    }

    pub(super) fn headers(
        &mut self,
        raw: Option<&BTreeMap<String, String>>,
    ) -> BTreeMap<String, HeaderValue> {
        let mut out = BTreeMap::new();
        for (name, value) in raw.into_iter().flatten() {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.err(
                    "headers",
                    format!("\"{name}\" is not a valid header name"),
                    "use a token like \"X-Tenant\"",
                );
                continue;
            }
            let lower = name.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "host" | "content-length" | "connection" | "transfer-encoding" | "mcp-session-id"
            ) {
                self.err(
                    "headers",
                    format!("\"{name}\" is managed by the broker"),
                    "remove it from \"headers\"",
                );
                continue;
            }
            let sensitive = is_sensitive_header(name);
            match SecretRef::parse(value) {
                Some(r) => {
                    out.insert(name.clone(), HeaderValue::Secret(r));
                }
                None if sensitive => {
                    let field = format!("headers.{name}");
                    self.err(
                        &field,
                        "holds a literal credential; secrets are never stored in the config file",
                        "use \"os.environ/VAR\" or a keychain reference",
                    );
                }
                None => {
                    if http::HeaderValue::from_str(value).is_err() {
                        self.err(
                            "headers",
                            format!("the value of \"{name}\" is not a valid header value"),
                            "remove control characters and non-ASCII text",
                        );
                        continue;
                    }
                    out.insert(name.clone(), HeaderValue::Literal(value.clone()));
                }
            }
        }
        out
    }
}

/// True for a header name that carries a credential (`Authorization`, `X-Api-Key`, cookies, …):
/// its value must be a secret reference, never a literal.
pub fn is_sensitive_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        "authorization",
        "token",
        "key",
        "secret",
        "cookie",
        "password",
    ]
    .iter()
    .any(|s| lower.contains(s))
}
