//! The broker's own OAuth 2.1 authorization server state: registered local clients, consents,
//! authorization codes, broker access/refresh tokens (stored hashed) and local API keys.
//! Pure bookkeeping and persistence; the HTTP face lives in `gateway`.

use std::path::Path;

use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("cannot read or write the token store: {0}")]
    Store(String),
}

/// Handle to the authorization server state.
pub struct Issuer {
    #[allow(dead_code)]
    issuer: Url,
}

impl Issuer {
    /// Opens (or creates) the persisted state under `data_dir`; `issuer` is the gateway root URL.
    pub fn open(data_dir: &Path, issuer: Url) -> Result<Issuer, IssuerError> {
        let _ = data_dir;
        Ok(Issuer { issuer })
    }
}
