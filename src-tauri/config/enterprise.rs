//! The top-level `enterprise` block: the company identity provider the person signs in to once
//! (enterprise-managed authorization, SEP-990), and which servers use it (`oauth_flow:
//! "enterprise"`). Parsed with the server entries' own field parsers (`fields.rs`); its errors
//! name `enterprise.FIELD`.

use std::collections::BTreeMap;
use std::sync::Arc;

use url::Url;

use super::raw::RawEnterprise;
use super::validate::{ConfigError, Env, ServerValidator};
use super::{OAuthFlow, ServerConfig, ServerName};
use crate::secret::SecretRef;

/// The scopes asked of the identity provider when the block names none: the ID token, and a
/// refresh token so renewals need nobody while the company session lasts.
pub const DEFAULT_SCOPES: &[&str] = &["openid", "offline_access"];

/// The company identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseConfig {
    /// What the person calls it: "Sign in to Acme", "via Acme".
    pub name: String,
    pub issuer: Url,
    /// The broker's client at the identity provider.
    pub client_id: String,
    /// `None` for a public client.
    pub client_secret: Option<SecretRef>,
    /// Always includes `openid`.
    pub scopes: Vec<String>,
}

const KNOWN: &str = "name, issuer, client_id, client_secret, scopes";

/// The validated block and, when a variable it names is unset, why its servers wait for setup.
pub(super) type Validated = Option<(Arc<EnterpriseConfig>, Option<String>)>;

/// Validates the block; problems go to `errors` (as `enterprise.FIELD`) and `warnings`.
pub(super) fn validate(
    raw: Option<&RawEnterprise>,
    env: Env<'_>,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) -> Validated {
    let raw = raw?;
    for key in raw.unknown.keys() {
        warnings.push(format!(
            "enterprise: unknown field \"{key}\" ignored (known: {KNOWN})"
        ));
    }
    let mut own = Vec::new();
    let mut v = ServerValidator::block("enterprise", &mut own, warnings, env);
    let issuer = issuer(raw.issuer.as_deref(), &mut v);
    let client_id = match raw.client_id.as_deref() {
        Some(text) => v.client_id(text),
        None => {
            v.err("client_id", "is missing", "add the client ID the identity provider gave the broker (e.g. \"os.environ/IDP_CLIENT_ID\" or the ID as is)");
            None
        }
    };
    let client_secret = raw
        .client_secret
        .as_deref()
        .and_then(|text| client_secret(text, &mut v));
    let scopes = scopes(raw.scopes.as_ref(), &mut v);
    let setup = std::mem::take(&mut v.setup);
    let name = display_name(raw.name.as_deref(), issuer.as_ref(), &mut v);
    errors.extend(own.into_iter().map(|mut e| {
        e.field = format!("enterprise.{}", e.field);
        e.server = None;
        e
    }));
    let config = EnterpriseConfig {
        name: name?,
        issuer: issuer?,
        client_id: client_id.unwrap_or_default(),
        client_secret,
        scopes,
    };
    let setup = (!setup.is_empty()).then(|| format!("the enterprise block: {}", setup.join("; ")));
    Some((Arc::new(config), setup))
}

/// `issuer`, required.
fn issuer(text: Option<&str>, v: &mut ServerValidator<'_>) -> Option<Url> {
    let Some(text) = text else {
        v.err(
            "issuer",
            "is missing",
            "add the identity provider's issuer, e.g. \"issuer\": \"https://acme.okta.com\"",
        );
        return None;
    };
    v.url("issuer", text)
}

/// `client_secret`: a secret reference, never the secret itself.
fn client_secret(text: &str, v: &mut ServerValidator<'_>) -> Option<SecretRef> {
    if SecretRef::parse(text).is_some() {
        return v.secret("client_secret", text);
    }
    v.err(
        "client_secret",
        "holds a literal secret; secrets are never stored in the config file",
        "write \"os.environ/VAR\" (or \"keychain:ENTRY\") and keep the secret there",
    );
    None
}

/// `scopes`, [`DEFAULT_SCOPES`] when unset; a list without `openid` is an error.
fn scopes(raw: Option<&serde_json::Value>, v: &mut ServerValidator<'_>) -> Vec<String> {
    let Some(value) = raw else {
        return DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect();
    };
    let scopes = v.scopes(Some(value));
    if !scopes.iter().any(|s| s == "openid") {
        v.err(
            "scopes",
            "does not include \"openid\", so the identity provider would send no ID token",
            "add \"openid\" (and \"offline_access\" so renewals need no sign-in)",
        );
    }
    scopes
}

/// `name`, or the issuer's host when the block names none.
fn display_name(
    name: Option<&str>,
    issuer: Option<&Url>,
    v: &mut ServerValidator<'_>,
) -> Option<String> {
    match name.map(str::trim) {
        Some(n) if n.is_empty() || n.len() > 64 || n.chars().any(char::is_control) => {
            v.err(
                "name",
                format!("\"{n}\" is not a usable name"),
                "write the company's name as people know it, e.g. \"Acme\" (1 to 64 characters)",
            );
            None
        }
        Some(n) => Some(n.to_string()),
        None => issuer.and_then(|u| u.host_str()).map(str::to_string),
    }
}

/// Gives each `oauth_flow: "enterprise"` server the block, or says what is missing.
pub(super) fn attach(
    block: &Validated,
    servers: &mut BTreeMap<ServerName, ServerConfig>,
    errors: &mut Vec<ConfigError>,
) {
    for server in servers.values_mut() {
        if server.oauth_flow != Some(OAuthFlow::Enterprise) {
            continue;
        }
        let err = |field: &str, problem: &str, fix: &str| ConfigError {
            server: Some(server.name.to_string()),
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        };
        let Some((config, setup)) = block else {
            errors.push(err("oauth_flow", "is \"enterprise\" but the file has no top-level \"enterprise\" block", "add \"enterprise\": {\"name\": \"Acme\", \"issuer\": \"https://idp.example.com\", \"client_id\": \"...\"} naming the company identity provider"));
            continue;
        };
        if server.client_id.is_none() && server.needs_setup.is_none() {
            errors.push(err("client_id", "is required for the enterprise flow (the authorization server knows the broker by it, and the identity provider names it in the ID-JAG)", "add the \"client_id\" the server's authorization server registered for the broker (and \"client_secret\": \"os.environ/VAR\" if it has one)"));
        }
        if let Some(why) = setup {
            server.needs_setup = Some(match server.needs_setup.take() {
                Some(own) => format!("{own}; {why}"),
                None => why.clone(),
            });
            server.enabled = false;
        }
        server.enterprise = Some(config.clone());
    }
}

#[cfg(test)]
#[path = "enterprise_tests.rs"]
mod tests;
