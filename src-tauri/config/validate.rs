//! Raw config → typed [`Config`]. Every error names the server, the field and the fix; unknown
//! fields become warnings (reported, never silently dropped).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::litellm;
use super::machine::KeySource;
use super::raw::{RawConfig, RawServer};
use super::{
    AuthType, Config, ServerConfig, ServerName, TokenAuthMethod, Transport, DEFAULT_HEALTH_INTERVAL,
};

/// One thing wrong with the config, precise enough to fix without reading code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The server entry, or `None` for a top-level field.
    pub server: Option<String>,
    pub field: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.server {
            Some(server) => write!(
                f,
                "server \"{server}\", field \"{}\": {}; fix: {}",
                self.field, self.problem, self.fix
            ),
            None => write!(
                f,
                "field \"{}\": {}; fix: {}",
                self.field, self.problem, self.fix
            ),
        }
    }
}

/// A validated config plus what was accepted but deserves a word (unknown fields).
#[derive(Debug, Clone)]
pub struct Validated {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// Reads one environment variable (the process environment, or a test's).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Validates a whole file; returns every error found, not just the first. A `client_id`
/// written as `os.environ/VAR` is read from the process environment.
pub fn validate(raw: &RawConfig) -> Result<Validated, Vec<ConfigError>> {
    validate_in(raw, &|var| std::env::var(var).ok())
}

/// [`validate`] with the environment as a parameter.
pub fn validate_in(raw: &RawConfig, env: Env<'_>) -> Result<Validated, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for key in raw.unknown.keys() {
        warnings.push(format!("unknown top-level field \"{key}\" ignored (known: mcp_servers, port, health_interval_secs, token_store, token_store_key_file, enterprise)"));
    }
    if raw.port == Some(0) {
        errors.push(ConfigError {
            server: None,
            field: "port".into(),
            problem: "0 is not a fixed port".into(),
            fix: "use a port from 1024 to 65535, or remove the field to use the default".into(),
        });
    }
    let health_interval = health_interval(raw.health_interval_secs, &mut errors);
    let (token_store, token_store_key_file) =
        super::store::token_store(raw, &mut errors, &mut warnings);
    let enterprise =
        super::enterprise::validate(raw.enterprise.as_ref(), env, &mut errors, &mut warnings);
    let mut servers = servers(raw, env, &mut errors, &mut warnings);
    super::enterprise::attach(&enterprise, &mut servers, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let config = Config {
        servers,
        port: raw.port,
        health_interval,
        token_store,
        token_store_key_file,
        enterprise: enterprise.map(|(e, _)| e),
    };
    Ok(Validated { config, warnings })
}

fn health_interval(secs: Option<u64>, errors: &mut Vec<ConfigError>) -> Duration {
    match secs {
        None => DEFAULT_HEALTH_INTERVAL,
        Some(s) if (5..=86_400).contains(&s) => Duration::from_secs(s),
        Some(s) => {
            errors.push(ConfigError {
                server: None,
                field: "health_interval_secs".into(),
                problem: format!("{s} is out of range"),
                fix: "use a value from 5 to 86400 seconds".into(),
            });
            DEFAULT_HEALTH_INTERVAL
        }
    }
}

/// Every server entry: valid ones, and unfinished ones (`needs_setup`) kept out of service;
/// LiteLLM entries the broker cannot proxy are skipped with a warning.
fn servers(
    raw: &RawConfig,
    env: Env<'_>,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) -> BTreeMap<ServerName, ServerConfig> {
    let mut servers = BTreeMap::new();
    for (name, entry) in &raw.mcp_servers {
        if let Some(why) = litellm::not_proxied(entry) {
            warnings.push(format!("server \"{name}\" ignored: {why}"));
            continue;
        }
        let mut own = Vec::new();
        let mut v = ServerValidator {
            name,
            errors: &mut own,
            warnings,
            setup: Vec::new(),
            env,
        };
        let server = v.server(entry);
        let kept = match (server, entry.needs_setup.as_deref()) {
            (Some(server), _) => Some(server),
            (None, Some(reason)) => placeholder(name, entry, reason, &own),
            (None, None) => None,
        };
        match kept {
            Some(server) => {
                servers.insert(server.name.clone(), server);
            }
            None => errors.extend(own),
        }
    }
    servers
}

/// Validates one server entry, collecting every problem rather than stopping at the first, so
/// one save shows the person all that needs fixing. The field parsers are in `fields.rs`.
pub(super) struct ServerValidator<'a> {
    pub(super) name: &'a str,
    errors: &'a mut Vec<ConfigError>,
    warnings: &'a mut Vec<String>,
    /// Why the entry cannot be used yet although it is valid (an unset variable).
    pub(super) setup: Vec<String>,
    pub(super) env: Env<'a>,
}

const KNOWN_SERVER_FIELDS: &str = "url, transport, auth_type, auth_value, oauth_flow (or oauth2_flow), client_id, client_secret, token_url, authorization_url, registration_url, client_id_metadata_url, audience, scopes, headers (or static_headers), delegate_auth_to_upstream, send_resource, dpop, authorization_params, token_endpoint_auth_method, private_key, assertion_audience, assertion_file, assertion_env, allowed_tools, disallowed_tools, enabled, needs_setup";

/// A `needs_setup` entry whose fields do not all validate: kept (out of service) with what is
/// wrong added to its reason, so one unfinished entry never stops the rest of the file. Its
/// name and URL must be usable, or the errors stand.
fn placeholder(
    name: &str,
    raw: &RawServer,
    reason: &str,
    errors: &[ConfigError],
) -> Option<ServerConfig> {
    let name = ServerName::parse(name).ok()?;
    let url = crate::urlcheck::check_remote_url(raw.url.as_deref()?).ok()?;
    let problems: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}; fix: {}", e.field, e.problem, e.fix))
        .collect();
    Some(ServerConfig {
        name,
        url,
        transport: Transport::Http,
        auth_type: AuthType::None,
        auth_value: None,
        oauth_flow: None,
        client_id: None,
        client_secret: None,
        token_url: None,
        authorization_url: None,
        registration_url: None,
        client_id_metadata_url: None,
        audience: None,
        scopes: Vec::new(),
        headers: BTreeMap::new(),
        delegate_auth_to_upstream: false,
        send_resource: true,
        dpop: None,
        authorization_params: BTreeMap::new(),
        token_endpoint_auth_method: None,
        private_key: None,
        assertion_audience: None,
        assertion: None,
        allowed_tools: None,
        disallowed_tools: Vec::new(),
        enabled: false,
        needs_setup: Some(format!("{reason} (also: {})", problems.join("; "))),
        enterprise: None,
    })
}

impl<'a> ServerValidator<'a> {
    /// A validator for a block that is not a server entry (`enterprise`), reusing the parsers.
    pub(super) fn block(
        name: &'a str,
        errors: &'a mut Vec<ConfigError>,
        warnings: &'a mut Vec<String>,
        env: Env<'a>,
    ) -> ServerValidator<'a> {
        ServerValidator {
            name,
            errors,
            warnings,
            setup: Vec::new(),
            env,
        }
    }

    pub(super) fn err(&mut self, field: &str, problem: impl Into<String>, fix: impl Into<String>) {
        self.errors.push(ConfigError {
            server: Some(self.name.to_string()),
            field: field.to_string(),
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    fn server(&mut self, raw: &RawServer) -> Option<ServerConfig> {
        let before = self.errors.len();
        let name = self.server_name();
        self.warn_unknown(raw);
        let url = self.server_url(raw);
        let transport = self.transport(raw.transport.as_deref());
        let auth_type = self.auth_type(raw.auth_type.as_deref());
        let oauth_flow = self.oauth_flow(raw);
        let auth_value = self.opt_secret("auth_value", raw.auth_value.as_deref());
        let client_secret = self.opt_secret("client_secret", raw.client_secret.as_deref());
        let client_id = raw.client_id.as_deref().and_then(|id| self.client_id(id));
        let token_url = self.opt_url("token_url", raw.token_url.as_deref());
        let authorization_url = self.opt_url("authorization_url", raw.authorization_url.as_deref());
        let registration_url = self.opt_url("registration_url", raw.registration_url.as_deref());
        let cimd_url = raw.client_id_metadata_url.as_deref();
        let client_id_metadata_url = cimd_url.and_then(|t| self.cimd_url(t));
        let audience = raw.audience.as_deref().and_then(|a| self.audience(a));
        let scopes = self.scopes(raw.scopes.as_ref());
        let (token_endpoint_auth_method, private_key, assertion_audience) = self.client_key(raw);
        let assertion = self.assertion(raw, oauth_flow);
        let headers = self.all_headers(raw);
        let authorization_params = self.authorization_params(raw.authorization_params.as_ref());
        let dpop = self.dpop(raw.dpop.as_ref());
        self.check_combinations(raw, auth_type, oauth_flow, &headers);
        if self.errors.len() > before {
            return None;
        }
        let needs_setup = self.setup_reason(raw);
        Some(ServerConfig {
            name: name?,
            url: url?,
            transport,
            auth_type,
            auth_value,
            oauth_flow,
            client_id,
            client_secret,
            token_url,
            authorization_url,
            registration_url,
            client_id_metadata_url,
            audience,
            scopes,
            headers,
            delegate_auth_to_upstream: raw.delegate_auth_to_upstream.unwrap_or(false),
            send_resource: raw.send_resource.unwrap_or(true),
            dpop,
            authorization_params,
            token_endpoint_auth_method,
            private_key,
            assertion_audience,
            assertion,
            allowed_tools: raw.allowed_tools.clone(),
            disallowed_tools: raw.disallowed_tools.clone().unwrap_or_default(),
            enabled: raw.enabled.unwrap_or(true) && needs_setup.is_none(),
            needs_setup,
            enterprise: None,
        })
    }

    /// How the client authenticates with a key: `token_endpoint_auth_method`, `private_key`
    /// and `assertion_audience`, which belong together.
    fn client_key(
        &mut self,
        raw: &RawServer,
    ) -> (Option<TokenAuthMethod>, Option<KeySource>, Option<String>) {
        let method = raw.token_endpoint_auth_method.as_deref();
        let token_endpoint_auth_method = method.and_then(|m| self.token_auth_method(m));
        let private_key = raw.private_key.as_deref().and_then(|k| self.private_key(k));
        let key = (private_key.as_ref(), token_endpoint_auth_method);
        let assertion_audience = self.key_method(raw, key);
        (token_endpoint_auth_method, private_key, assertion_audience)
    }

    /// Why a valid entry is out of service: its own `needs_setup`, and what validation found
    /// missing (an unset variable, a missing file).
    fn setup_reason(&mut self, raw: &RawServer) -> Option<String> {
        let reasons = raw.needs_setup.iter().cloned().chain(self.setup.drain(..));
        Some(reasons.collect::<Vec<_>>().join("; ")).filter(|s| !s.is_empty())
    }

    fn server_name(&mut self) -> Option<ServerName> {
        match ServerName::parse(self.name) {
            Ok(n) => Some(n),
            Err(why) => {
                self.err(
                    "name",
                    format!("the name {why}"),
                    "rename the entry, e.g. \"github\" or \"linear-prod\"",
                );
                None
            }
        }
    }

    /// Unknown fields are warnings (LiteLLM's own fields say what the broker does instead).
    fn warn_unknown(&mut self, raw: &RawServer) {
        for key in raw.unknown.keys() {
            let warning = litellm::ignored_warning(self.name, key).unwrap_or_else(|| {
                format!(
                    "server \"{}\": unknown field \"{key}\" ignored (known: {KNOWN_SERVER_FIELDS})",
                    self.name
                )
            });
            self.warnings.push(warning);
        }
    }

    fn server_url(&mut self, raw: &RawServer) -> Option<url::Url> {
        match raw.url.as_deref() {
            None => {
                self.err(
                    "url",
                    "is missing",
                    "add the upstream MCP endpoint, e.g. \"url\": \"https://mcp.example.com/mcp\"",
                );
                None
            }
            Some(text) => self.url("url", text),
        }
    }
}
