//! Pointing a client at the broker: which entries of its file change and how ([`plan`], pure),
//! then the change made safely ([`apply`]: the file must still be as it was read, a backup is
//! written first) and taken back ([`undo`]: only while the file is still as the broker left it).
//! `import --rewrite` and the dashboard's "Connect" both go through here.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::edit::{self, Target};
use super::parse::{parse_installed, read, Found, Source};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} changed since it was read; nothing was written: try again")]
    ChangedBefore { path: String },
    #[error("cannot back up {path} to {backup}: {source}")]
    Backup {
        path: String,
        backup: String,
        source: std::io::Error,
    },
    #[error("cannot rewrite {path} (the backup is {backup}): {source}")]
    Write {
        path: String,
        backup: String,
        source: std::io::Error,
    },
    #[error("{path} changed after the broker edited it, so undoing would lose those changes; its backup is {backup}: copy it back by hand if you want the old file")]
    ChangedAfter { path: String, backup: String },
}

/// One broker server a client may be pointed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerServer {
    /// Where the client reaches it through the broker.
    pub target: Target,
    /// The upstream URL it stands for (client entries with this URL are replaced).
    pub upstream: String,
}

/// An entry as shown and recorded: header and environment values hidden (a client's file may
/// hold a literal token there; the broker never shows or keeps one), and so are the values of
/// `mcp-remote`'s `--header` arguments. The backup keeps the file as it was.
pub fn hide_secrets(entry: &Value) -> Value {
    const HIDDEN: &str = "(hidden)";
    let mut out = entry.clone();
    if let Some(obj) = out.as_object_mut() {
        for key in ["headers", "static_headers", "env"] {
            for (_, v) in obj
                .get_mut(key)
                .and_then(Value::as_object_mut)
                .into_iter()
                .flatten()
            {
                *v = Value::from(HIDDEN);
            }
        }
        if let Some(args) = obj.get_mut("args").and_then(Value::as_array_mut) {
            let mut after_flag = false;
            for arg in args.iter_mut() {
                if let (true, Some((name, _))) =
                    (after_flag, arg.as_str().and_then(|a| a.split_once(':')))
                {
                    *arg = Value::from(format!("{name}: {HIDDEN}"));
                }
                after_flag = arg.as_str() == Some("--header");
            }
        }
    }
    out
}

/// One entry of a client's file, before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryChange {
    /// The keys leading to it in the client's file, joined with ".".
    pub key: String,
    /// `None` for an entry the broker added.
    pub before: Option<Value>,
    pub after: Value,
}

/// The new text of a client's file and what changed in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    pub text: String,
    pub changes: Vec<EntryChange>,
}

/// The edit pointing the client's file `text` at the broker for `servers`: every imported entry
/// whose URL is a server's upstream is replaced (what `import --rewrite` does). With `add`, a
/// server the file has no entry for gets one under the broker's name, unless the file already
/// reaches it through the broker. `port` is the broker's.
pub fn plan(
    source: Source,
    text: &str,
    servers: &[BrokerServer],
    port: u16,
    add: bool,
) -> Result<Edit, String> {
    let found = parse_installed(source, text, port)?.found;
    let doc = read(text)?;
    let mut replaced = Vec::new();
    let mut changes = Vec::new();
    let mut missing = Vec::new();
    for server in servers {
        let same: Vec<&Found> = found
            .iter()
            .filter(|f| f.entry.url.as_deref() == Some(server.upstream.as_str()))
            .collect();
        if same.is_empty() && add && !reaches(&doc, source, &server.target)? {
            missing.push(server);
        }
        for f in same {
            let after = server.target.entry(source)?;
            let before = f.location.iter().fold(&doc, |at, k| &at[k.as_str()]);
            changes.push(EntryChange {
                key: f.location.join("."),
                before: Some(hide_secrets(before)),
                after: after.clone(),
            });
            replaced.push((f.location.clone(), after));
        }
    }
    let mut text = edit::replace(text, &replaced)?;
    let block = edit::block(source);
    for server in missing {
        let after = server.target.entry(source)?;
        text = edit::add(&text, &block, &server.target.name, &after)?;
        let mut key = block.clone();
        key.push(server.target.name.clone());
        changes.push(EntryChange {
            key: key.join("."),
            before: None,
            after,
        });
    }
    Ok(Edit { text, changes })
}

/// True when the client reaches `server` through the broker and nowhere directly: no imported
/// entry has its upstream URL, and some entry points at the broker for it. `doc` is the file,
/// `found` what [`parse_installed`] found in it.
pub fn connected(source: Source, doc: &Value, found: &[Found], server: &BrokerServer) -> bool {
    let direct = (found.iter()).any(|f| f.entry.url.as_deref() == Some(server.upstream.as_str()));
    !direct && reaches(doc, source, &server.target).unwrap_or(false)
}

/// True when some entry of the file already reaches `target` (its URL, or the same bridge),
/// wherever the client lists servers (Claude Code's projects included).
fn reaches(doc: &Value, source: Source, target: &Target) -> Result<bool, String> {
    let want = target.entry(source)?;
    let mut lists = vec![edit::block(source)
        .iter()
        .try_fold(doc, |at, k| at.get(k.as_str()))];
    if source == Source::Claude {
        let projects = doc["projects"].as_object().into_iter().flatten();
        lists.extend(projects.map(|(_, p)| p.get("mcpServers")));
    }
    let mut entries = lists
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|o| o.values());
    Ok(entries.any(|entry| {
        *entry == want
            || ["url", "serverUrl"]
                .iter()
                .any(|k| entry.get(*k).and_then(Value::as_str) == Some(target.url.as_str()))
    }))
}

/// The hex SHA-256 of a file's text: how [`undo`] knows the file is still as it was written.
pub fn digest(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// Writes `new_text` to `path` after copying the file to `<path>.bak-<now>`, provided the file
/// still holds `original` (what the edit was planned on). Returns the backup's path.
pub fn apply(path: &Path, original: &str, new_text: &str, now: u64) -> Result<PathBuf, Error> {
    let shown = path.display().to_string();
    let current = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: shown.clone(),
        source,
    })?;
    if current != original {
        return Err(Error::ChangedBefore { path: shown });
    }
    let backup = backup_path(path, now);
    let backup_shown = backup.display().to_string();
    std::fs::copy(path, &backup).map_err(|source| Error::Backup {
        path: shown.clone(),
        backup: backup_shown.clone(),
        source,
    })?;
    crate::fsutil::write_private(path, new_text.as_bytes()).map_err(|source| Error::Write {
        path: shown,
        backup: backup_shown,
        source,
    })?;
    Ok(backup)
}

/// `<path>.bak-<now>`, or with `-2`, `-3`… when that exists (two changes in one second).
fn backup_path(path: &Path, now: u64) -> PathBuf {
    let with = |suffix: String| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let mut candidate = with(format!(".bak-{now}"));
    let mut n = 2;
    while candidate.exists() {
        candidate = with(format!(".bak-{now}-{n}"));
        n += 1;
    }
    candidate
}

/// Puts the backup back over `path`, provided the file is still what the broker wrote (its
/// digest is `written`); the backup is kept.
pub fn undo(path: &Path, backup: &Path, written: &str) -> Result<(), Error> {
    let shown = path.display().to_string();
    let backup_shown = backup.display().to_string();
    let current = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: shown.clone(),
        source,
    })?;
    if digest(&current) != written {
        return Err(Error::ChangedAfter {
            path: shown,
            backup: backup_shown,
        });
    }
    let old = std::fs::read(backup).map_err(|source| Error::Read {
        path: backup_shown.clone(),
        source,
    })?;
    crate::fsutil::write_private(path, &old).map_err(|source| Error::Write {
        path: shown,
        backup: backup_shown,
        source,
    })
}
