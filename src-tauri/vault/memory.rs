//! An in-memory [`TokenStore`] for unit tests of pure logic.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{StoreInfo, StoreKind, TokenStore, VaultError};
use crate::secret::Secret;

#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Secret>>,
}

impl TokenStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Secret>, VaultError> {
        Ok(self
            .entries
            .lock()
            .expect("memory store lock")
            .get(key)
            .cloned())
    }

    fn set(&self, key: &str, value: &Secret) -> Result<(), VaultError> {
        self.entries
            .lock()
            .expect("memory store lock")
            .insert(key.to_string(), value.clone());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), VaultError> {
        self.entries.lock().expect("memory store lock").remove(key);
        Ok(())
    }

    fn info(&self) -> StoreInfo {
        StoreInfo {
            kind: StoreKind::Memory,
            description: "memory (this process only)".into(),
        }
    }
}
