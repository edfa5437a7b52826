//! Noticing when the config file changes. The file itself is watched, not its folder: a folder
//! also holding logs (or anything busy) would otherwise wake the watcher on every write there,
//! and with `RUST_LOG=trace` the watcher's own trace lines, written to a log file in that
//! folder, woke it again without end. The folder is watched only while the file does not
//! exist, to see it created.
//!
//! An editor (or [`super::file::write`]) that replaces the file by renaming a new one over it
//! ends the watch on the old file; every event re-arms the watch on whatever the path names now.

use std::path::{Path, PathBuf};

use notify::event::ModifyKind;
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::file::ConfigFileError;

/// Raw events queued at most; beyond that they are dropped, which loses nothing: any event
/// still queued re-arms the watch and reloads the file as it is then.
const QUEUE: usize = 64;

/// What the watch is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    File,
    /// The folder, while the file does not exist.
    Folder,
}

/// A watch on one config file. Keep it for as long as changes are wanted.
pub struct ConfigWatcher {
    watcher: RecommendedWatcher,
    path: PathBuf,
    folder: PathBuf,
    target: Target,
    events: mpsc::Receiver<Event>,
}

impl ConfigWatcher {
    /// Starts watching `path` (its folder is created owner-only when missing).
    pub fn new(path: &Path) -> Result<ConfigWatcher, ConfigFileError> {
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        crate::fsutil::create_private_dir(&folder).map_err(|source| ConfigFileError::Write {
            path: folder.clone(),
            source,
        })?;
        let (tx, events) = mpsc::channel(QUEUE);
        let watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            if let Ok(event) = event {
                let _ = tx.try_send(event);
            }
        })
        .map_err(|e| ConfigFileError::Watch {
            path: path.into(),
            message: e.to_string(),
        })?;
        let mut watch = ConfigWatcher {
            watcher,
            path: path.to_path_buf(),
            folder,
            target: Target::Folder,
            events,
        };
        watch.arm()?;
        Ok(watch)
    }

    /// Waits for the next change to what the file says (`None` once the watcher has stopped).
    /// Bursts are not merged here: the caller lets them settle.
    pub async fn changed(&mut self) -> Option<()> {
        loop {
            let event = self.events.recv().await?;
            if !self.concerns_the_file(&event) {
                continue;
            }
            if self.target == Target::Folder || may_end_the_watch(&event.kind) {
                // Ignored: the folder stays watched and the next event tries again.
                let _ = self.arm();
            }
            if changes_content(&event.kind) {
                return Some(());
            }
        }
    }

    /// True for events about the config file (in folder mode, the folder's other entries are
    /// none of its business).
    fn concerns_the_file(&self, event: &Event) -> bool {
        match self.target {
            Target::File => true,
            Target::Folder => event
                .paths
                .iter()
                .any(|p| p.file_name() == self.path.file_name()),
        }
    }

    /// Watches the file when it exists, else its folder (to see the file appear).
    fn arm(&mut self) -> Result<(), ConfigFileError> {
        let _ = self.watcher.unwatch(match self.target {
            Target::File => &self.path,
            Target::Folder => &self.folder,
        });
        if self
            .watcher
            .watch(&self.path, RecursiveMode::NonRecursive)
            .is_ok()
        {
            self.target = Target::File;
            return Ok(());
        }
        self.target = Target::Folder;
        self.watcher
            .watch(&self.folder, RecursiveMode::NonRecursive)
            .map_err(|e| ConfigFileError::Watch {
                path: self.path.clone(),
                message: e.to_string(),
            })
    }
}

/// True for events after which the watched file may be gone: removed, renamed, or replaced by a
/// rename over it (its link count changes first).
fn may_end_the_watch(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Name(_) | ModifyKind::Metadata(_) | ModifyKind::Any)
            | EventKind::Any
            | EventKind::Other
    )
}

/// True for events that can change what the file says. Opening or reading it (which every
/// reload does) is not one: reacting to those would make each reload trigger the next.
pub fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any => true,
        EventKind::Access(notify::event::AccessKind::Close(notify::event::AccessMode::Write)) => {
            true
        }
        EventKind::Access(_) | EventKind::Other => false,
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, RenameMode};

    use super::*;

    #[test]
    fn reading_the_file_is_not_a_change_but_writing_renaming_and_removing_are() {
        assert!(!changes_content(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!changes_content(&EventKind::Access(AccessKind::Read)));
        assert!(!changes_content(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(changes_content(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(changes_content(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(changes_content(&EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        ))));
        assert!(changes_content(&EventKind::Create(CreateKind::File)));
        assert!(changes_content(&EventKind::Remove(
            notify::event::RemoveKind::File
        )));
    }

    #[test]
    fn only_a_removal_rename_or_link_change_can_end_the_watch_on_the_file() {
        assert!(may_end_the_watch(&EventKind::Remove(
            notify::event::RemoveKind::File
        )));
        assert!(may_end_the_watch(&EventKind::Modify(ModifyKind::Name(
            RenameMode::From
        ))));
        assert!(!may_end_the_watch(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(!may_end_the_watch(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
    }
}
