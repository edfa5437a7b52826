//! An in-memory [`TokenStore`] for unit tests of pure logic.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{StoreInfo, StoreKind, TokenStore, VaultError};
use crate::secret::Secret;
use crate::sync::lock;

#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Secret>>,
}

impl TokenStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Secret>, VaultError> {
        Ok(lock(&self.entries).get(key).cloned())
    }

    fn set(&self, key: &str, value: &Secret) -> Result<(), VaultError> {
        lock(&self.entries).insert(key.to_string(), value.clone());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), VaultError> {
        lock(&self.entries).remove(key);
        Ok(())
    }

    fn info(&self) -> StoreInfo {
        StoreInfo {
            kind: StoreKind::Memory,
            description: "memory (this process only)".into(),
        }
    }
}
