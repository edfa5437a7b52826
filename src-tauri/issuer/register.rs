//! RFC 7591 registration requests (and client ID metadata documents, which carry the same
//! fields): validation into a [`Client`].

use serde::Deserialize;

use super::crypto;
use super::model::{ApplicationType, Client};
use super::redirect::{check_registrable, MAX_REDIRECT_URIS};

/// Longest `client_name` kept (display text).
pub const MAX_CLIENT_NAME: usize = 200;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistrationRequest {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub client_name: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub scope: Option<String>,
    /// OIDC Dynamic Client Registration's `native` or `web`; MCP 2026-07-28 clients send it.
    pub application_type: Option<String>,
    /// Present in client ID metadata documents only.
    pub client_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    InvalidMetadata(String),
    #[error("{0}")]
    Full(String),
}

impl RegistrationError {
    pub fn code(&self) -> &'static str {
        match self {
            RegistrationError::InvalidRedirectUri(_) => "invalid_redirect_uri",
            RegistrationError::InvalidMetadata(_) | RegistrationError::Full(_) => {
                "invalid_client_metadata"
            }
        }
    }
}

impl RegistrationRequest {
    /// Validates the metadata; the new client gets a random `client_id`.
    pub fn into_client(self, now: u64) -> Result<Client, RegistrationError> {
        self.into_client_with_id(crypto::random_id(), now)
    }

    pub fn into_client_with_id(
        self,
        client_id: String,
        now: u64,
    ) -> Result<Client, RegistrationError> {
        if self.redirect_uris.is_empty() {
            return Err(RegistrationError::InvalidRedirectUri("redirect_uris is required: at least one loopback (http://127.0.0.1:PORT/…), private-use scheme or https URI".into()));
        }
        if self.redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(RegistrationError::InvalidRedirectUri(format!(
                "at most {MAX_REDIRECT_URIS} redirect_uris are accepted"
            )));
        }
        for uri in &self.redirect_uris {
            check_registrable(uri).map_err(RegistrationError::InvalidRedirectUri)?;
        }
        // RFC 7591 §3.2.1 lets the server replace requested metadata: every client is registered
        // as public (`none`, PKCE required) whatever it asked for, and the response says so.
        let grant_types = self
            .grant_types
            .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
        if let Some(bad) = grant_types
            .iter()
            .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
        {
            return Err(RegistrationError::InvalidMetadata(format!(
                "grant type \"{bad}\" is not supported; use authorization_code and refresh_token"
            )));
        }
        if let Some(bad) = self
            .response_types
            .iter()
            .flatten()
            .find(|r| r.as_str() != "code")
        {
            return Err(RegistrationError::InvalidMetadata(format!(
                "response type \"{bad}\" is not supported; use \"code\""
            )));
        }
        let application_type = application_type(self.application_type.as_deref())?;
        let client_name = self
            .client_name
            .map(|n| {
                n.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_CLIENT_NAME)
                    .collect::<String>()
            })
            .filter(|n| !n.trim().is_empty());
        Ok(Client {
            client_id,
            client_name,
            redirect_uris: self.redirect_uris,
            grant_types,
            created_at: now,
            last_used: None,
            metadata_document: false,
            application_type,
        })
    }
}

/// `native` (also when unsaid) or `web`; anything else is refused naming it.
fn application_type(said: Option<&str>) -> Result<ApplicationType, RegistrationError> {
    match said {
        None | Some("native") => Ok(ApplicationType::Native),
        Some("web") => Ok(ApplicationType::Web),
        Some(other) => Err(RegistrationError::InvalidMetadata(format!(
            "application_type \"{other}\" is not supported; use \"native\" (an app on this machine) or \"web\""
        ))),
    }
}
