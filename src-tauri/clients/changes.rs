//! The changes the dashboard made to client files, kept in `<data dir>/client-changes.json` so
//! each can be undone later (after a restart too) — and only those: the window names a change
//! by its backup, never a path of its own choosing.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::connect::EntryChange;

/// One edit of one client file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The client's name as shown ("Cursor").
    pub client: String,
    pub path: PathBuf,
    pub backup: PathBuf,
    /// The digest of what was written (`connect::digest`).
    pub written: String,
    pub at: u64,
    pub changes: Vec<EntryChange>,
    #[serde(default)]
    pub undone: bool,
}

/// The list on disk. A missing or unreadable file is an empty list: losing it only loses the
/// Undo buttons, never a backup.
pub struct Log {
    file: PathBuf,
}

impl Log {
    pub fn in_dir(data_dir: &Path) -> Log {
        Log {
            file: data_dir.join("client-changes.json"),
        }
    }

    pub fn list(&self) -> Vec<Record> {
        std::fs::read(&self.file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn push(&self, record: Record) -> std::io::Result<()> {
        let mut all = self.list();
        all.push(record);
        self.save(&all)
    }

    /// The change whose backup is `backup`, not yet undone.
    pub fn find(&self, backup: &str) -> Option<Record> {
        self.list()
            .into_iter()
            .find(|r| !r.undone && r.backup.as_os_str() == backup)
    }

    pub fn mark_undone(&self, backup: &Path) -> std::io::Result<()> {
        let mut all = self.list();
        for r in all.iter_mut().filter(|r| r.backup == backup) {
            r.undone = true;
        }
        self.save(&all)
    }

    fn save(&self, all: &[Record]) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(all).expect("records serialise");
        crate::fsutil::write_private(&self.file, &text)
    }
}
