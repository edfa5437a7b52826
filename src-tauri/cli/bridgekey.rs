//! The stdio bridge's API key (`connect NAME`): scoped to NAME, created through the admin API
//! the first time and kept in the OS keychain; a key the broker rejects is replaced.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::secret::Secret;
use crate::vault::Vault;

/// The keychain entry holding the bridge's API key for `name`.
pub fn keychain_entry(name: &str) -> String {
    format!("bridge/{name}")
}

/// The API key's display name in `mcp-auth-broker api-key list`.
pub fn key_name(name: &str) -> String {
    format!("stdio bridge ({name})")
}

/// Where the bridge's API key comes from and goes to.
pub(super) struct Credentials {
    pub vault: Vault,
    pub base: String,
    pub admin: String,
    pub name: String,
}

impl Credentials {
    /// The stored key, or a new one.
    pub async fn current(&self) -> Result<Secret, String> {
        let entry = keychain_entry(&self.name);
        match self.vault.get(&entry).await.map_err(|e| e.to_string())? {
            Some(key) => Ok(key),
            None => self.replace().await,
        }
    }

    /// Creates a new key scoped to the server and stores it in place of the old one.
    pub async fn replace(&self) -> Result<Secret, String> {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/admin/api-keys", self.base))
            .bearer_auth(&self.admin)
            .json(&json!({ "name": key_name(&self.name), "server": self.name }))
            .send()
            .await
            .map_err(|e| format!("cannot reach the broker at {}: {e}", self.base))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status == StatusCode::UNAUTHORIZED {
            return Err(format!("the broker at {} did not accept the admin token; pass the same --data-dir the running broker uses", self.base));
        }
        let Some(key) = body["key"].as_str().filter(|_| status.is_success()) else {
            return Err(format!(
                "the broker refused to create an API key for the bridge: {}",
                body["error_description"]
                    .as_str()
                    .unwrap_or("no reason given")
            ));
        };
        let key = Secret::new(key);
        self.vault
            .set(&keychain_entry(&self.name), key.clone())
            .await
            .map_err(|e| e.to_string())?;
        eprintln!(
            "Created API key \"{}\" for the bridge; it is kept in the OS keychain.",
            key_name(&self.name)
        );
        Ok(key)
    }
}
