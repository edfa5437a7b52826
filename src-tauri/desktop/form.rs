//! The dashboard's add/edit form: what it shows of an entry and what it sends back. Typed
//! secrets are [`Secret`]s from the moment they are read and go to the keychain, never into the
//! config file (only a reference to them does).

use serde::{Deserialize, Serialize};

use crate::config::RawServer;
use crate::secret::{Secret, SecretRef};

/// The editable fields of an entry, for the edit form. Secret fields are reported as "set or not".
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerFormView {
    pub url: String,
    pub auth_type: String,
    pub oauth_flow: String,
    pub client_id: String,
    pub scopes: String,
    pub authorization_url: String,
    pub token_url: String,
    pub audience: String,
    pub client_secret_set: bool,
    pub auth_value_set: bool,
}

impl ServerFormView {
    pub fn from_raw(raw: &RawServer) -> Self {
        let scopes = match &raw.scopes {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        };
        ServerFormView {
            url: raw.url.clone().unwrap_or_default(),
            auth_type: raw.auth_type.clone().unwrap_or_default(),
            oauth_flow: raw
                .oauth_flow
                .clone()
                .or_else(|| raw.oauth2_flow.clone())
                .unwrap_or_default(),
            client_id: raw.client_id.clone().unwrap_or_default(),
            scopes,
            authorization_url: raw.authorization_url.clone().unwrap_or_default(),
            token_url: raw.token_url.clone().unwrap_or_default(),
            audience: raw.audience.clone().unwrap_or_default(),
            client_secret_set: raw.client_secret.is_some(),
            auth_value_set: raw.auth_value.is_some(),
        }
    }
}

/// The add/edit form as submitted. Empty strings mean "not set"; an empty secret keeps the one
/// already stored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServerForm {
    pub name: String,
    pub url: String,
    pub auth_type: String,
    pub oauth_flow: String,
    pub client_id: String,
    /// Typed by the person; goes to the keychain, never into the config file.
    pub client_secret: FormSecret,
    pub auth_value: FormSecret,
    pub scopes: String,
    pub authorization_url: String,
    pub token_url: String,
    pub audience: String,
}

/// A secret field of the form: deserialised straight into a [`Secret`], so it cannot be logged.
#[derive(Debug, Clone, Default)]
pub struct FormSecret(pub Option<Secret>);

impl<'de> Deserialize<'de> for FormSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        Ok(FormSecret(
            (!text.trim().is_empty()).then(|| Secret::new(text.trim())),
        ))
    }
}

/// A secret to put in the keychain before the config that references it is saved.
#[derive(Debug)]
pub struct PendingSecret {
    pub entry: String,
    pub value: Secret,
}

fn opt(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Applies the form to a raw entry (keeping its unknown fields) and says which typed secrets must
/// go to the keychain. A typed `os.environ/VAR` or `keychain:ENTRY` reference is written as is.
pub fn apply_form(form: &ServerForm, raw: &mut RawServer) -> Vec<PendingSecret> {
    let name = form.name.trim();
    raw.url = opt(&form.url);
    raw.auth_type = opt(&form.auth_type).filter(|t| t != "none");
    raw.oauth_flow = opt(&form.oauth_flow);
    // The form shows the flow under either name and saves it under the broker's; saving the
    // form is the person setting the entry up, so an import's "needs setup" mark goes too.
    raw.oauth2_flow = None;
    raw.needs_setup = None;
    raw.client_id = opt(&form.client_id);
    raw.scopes = opt(&form.scopes).map(serde_json::Value::String);
    raw.authorization_url = opt(&form.authorization_url);
    raw.token_url = opt(&form.token_url);
    raw.audience = opt(&form.audience);
    let mut pending = Vec::new();
    for (field, typed, slot) in [
        ("client_secret", &form.client_secret, &mut raw.client_secret),
        ("auth_value", &form.auth_value, &mut raw.auth_value),
    ] {
        let Some(value) = &typed.0 else { continue };
        if SecretRef::parse(value.expose()).is_some() {
            *slot = Some(value.expose().to_string());
            continue;
        }
        let reference = SecretRef::keychain_for(name, field);
        if let SecretRef::Keychain(entry) = &reference {
            pending.push(PendingSecret {
                entry: entry.clone(),
                value: value.clone(),
            });
        }
        *slot = Some(reference.to_string());
    }
    pending
}
