//! The dashboard's first run and its "Connect to <client>" buttons: the MCP clients found in the
//! person's home (`clients::discover`), their remote servers imported into the broker's config,
//! and each client's file pointed at the broker (`clients::connect`: backup first, only those
//! entries change), every change listed with its backup and an Undo. The rules are the CLI's
//! (`import --rewrite`); this file only turns them into commands and DTOs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use tauri::{AppHandle, State};

use super::Shell;
use crate::broker::Broker;
use crate::clients::changes::{Log, Record};
use crate::clients::connect::{self, BrokerServer, EntryChange};
use crate::clients::discover::{discover, Installed};
use crate::clients::edit::{self, Target};
use crate::clients::{against_config, parse};
use crate::config::{file, RawServer};

type CmdResult<T> = Result<T, String>;

/// One server found in a client's file.
#[derive(Debug, Clone, Serialize)]
pub struct FoundServerDto {
    /// Its name in the client's file.
    pub source_name: String,
    pub url: String,
    /// The broker's name for it once imported (or already).
    pub name: String,
    /// `true` when the broker's config already has it.
    pub imported: bool,
    /// Why it would be kept out of service once imported.
    pub needs_setup: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientDto {
    pub id: String,
    pub label: String,
    pub path: String,
    /// Why its file cannot be read; nothing else is offered then.
    pub error: Option<String>,
    pub servers: Vec<FoundServerDto>,
    /// Its entries that already reach the broker (by their names in the file).
    pub through_broker: Vec<String>,
    /// What was left out, with the reason ("a stdio server …").
    pub skipped: Vec<String>,
    /// The broker servers this client already reaches through the broker.
    pub connected: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryDto {
    pub key: String,
    pub before: Option<String>,
    pub after: String,
}

/// One change to a client's file, with what undoes it.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeDto {
    pub client: String,
    pub path: String,
    pub backup: String,
    pub at: u64,
    pub entries: Vec<EntryDto>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FirstRunDto {
    /// Open the panel by itself: no servers yet and the first run not finished.
    pub show: bool,
    pub clients: Vec<ClientDto>,
    /// Changes not undone, newest first.
    pub changes: Vec<ChangeDto>,
}

fn broker(shell: &Shell) -> CmdResult<Broker> {
    shell.broker.clone().ok_or_else(|| {
        "the broker is not running (see the message at the top of the window)".to_string()
    })
}

/// The person's home and config folders (`$HOME`, `$XDG_CONFIG_HOME` on Linux).
fn homes() -> CmdResult<(PathBuf, PathBuf)> {
    let home = dirs::home_dir().ok_or("no home directory: the clients' files cannot be found")?;
    let config = dirs::config_dir().unwrap_or_else(|| home.join(".config"));
    Ok((home, config))
}

fn done_flag(broker: &Broker) -> PathBuf {
    broker.settings().data_dir.join("first-run-done")
}

/// The broker's servers (from the file, so entries that need setup count too) as targets.
fn broker_servers(broker: &Broker) -> CmdResult<Vec<BrokerServer>> {
    let settings = broker.settings();
    let raw = file::read(&settings.config_path)
        .map_err(|e| e.to_string())?
        .raw;
    let bridge = std::env::current_exe().ok().map(|exe| {
        edit::bridge(
            &exe,
            &settings.config_path,
            &settings.data_dir,
            settings.port,
        )
    });
    Ok(raw
        .mcp_servers
        .iter()
        .filter_map(|(name, s)| {
            Some(BrokerServer {
                target: Target {
                    name: name.clone(),
                    url: settings.client_url(name),
                    bridge: bridge.clone(),
                },
                upstream: s.url.clone()?,
            })
        })
        .collect())
}

fn client_dto(
    c: &Installed,
    raw: &BTreeMap<String, RawServer>,
    servers: &[BrokerServer],
) -> ClientDto {
    let mut dto = ClientDto {
        id: c.id.clone(),
        label: c.label.clone(),
        path: c.path.display().to_string(),
        error: None,
        servers: vec![],
        through_broker: vec![],
        skipped: vec![],
        connected: vec![],
    };
    let plan = match &c.servers {
        Ok(plan) => plan.clone(),
        Err(e) => {
            dto.error = Some(e.clone());
            return dto;
        }
    };
    let text = std::fs::read_to_string(&c.path).unwrap_or_default();
    let doc = parse::read(&text).unwrap_or_default();
    dto.connected = servers
        .iter()
        .filter(|s| connect::connected(c.source, &doc, &plan.found, s))
        .map(|s| s.target.name.clone())
        .collect();
    let (through, skipped): (Vec<_>, Vec<_>) =
        (plan.skipped.iter()).partition(|s| s.reason == parse::THROUGH_BROKER);
    dto.through_broker = through.into_iter().map(|s| s.name.clone()).collect();
    dto.skipped = (skipped.into_iter())
        .map(|s| format!("{}: {}", s.name, s.reason))
        .collect();
    for f in plan.found {
        let known = raw.iter().find(|(_, s)| s.url == f.entry.url);
        dto.servers.push(FoundServerDto {
            source_name: f.source_name.clone(),
            url: f.entry.url.clone().unwrap_or_default(),
            name: known.map_or(f.name.clone(), |(n, _)| n.clone()),
            imported: known.is_some(),
            needs_setup: f.entry.needs_setup.clone(),
        });
    }
    dto
}

fn change_dto(r: Record) -> ChangeDto {
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    ChangeDto {
        client: r.client,
        path: r.path.display().to_string(),
        backup: r.backup.display().to_string(),
        at: r.at,
        entries: (r.changes.iter())
            .map(|c: &EntryChange| EntryDto {
                key: c.key.clone(),
                before: c.before.as_ref().map(pretty),
                after: pretty(&c.after),
            })
            .collect(),
    }
}

/// The clients found, their servers, and the changes made to their files.
#[tauri::command]
pub async fn first_run(shell: State<'_, Shell>) -> CmdResult<FirstRunDto> {
    let broker = broker(&shell)?;
    let (home, config) = homes()?;
    let servers = broker_servers(&broker)?;
    let found = discover(&home, &config, broker.settings().port);
    let raw = file::read(&broker.settings().config_path)
        .map_err(|e| e.to_string())?
        .raw
        .mcp_servers;
    let log = Log::in_dir(&broker.settings().data_dir);
    let mut changes: Vec<ChangeDto> = (log.list().into_iter())
        .filter(|r| !r.undone)
        .map(change_dto)
        .collect();
    changes.reverse();
    Ok(FirstRunDto {
        show: servers.is_empty() && !done_flag(&broker).exists(),
        clients: found
            .iter()
            .map(|c| client_dto(c, &raw, &servers))
            .collect(),
        changes,
    })
}

fn find_client(broker: &Broker, id: &str) -> CmdResult<Installed> {
    let (home, config) = homes()?;
    discover(&home, &config, broker.settings().port)
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| format!("no client \"{id}\" found any more; look again"))
}

/// Adds the client's remote servers the broker does not have yet; says what it did.
#[tauri::command]
pub async fn import_client_servers(
    app: AppHandle,
    shell: State<'_, Shell>,
    client: String,
) -> CmdResult<String> {
    let broker = broker(&shell)?;
    let found = find_client(&broker, &client)?;
    let plan = found.servers.clone()?;
    let mut added: Vec<(String, bool)> = Vec::new();
    broker
        .edit_config(|raw| {
            let (plan, _already) = against_config(plan, &raw.mcp_servers);
            for f in plan.found {
                added.push((f.name.clone(), f.entry.needs_setup.is_some()));
                raw.mcp_servers.insert(f.name, f.entry);
            }
        })
        .await
        .map_err(|e| e.to_string())?;
    super::refresh_ui(&app);
    let setup = added.iter().filter(|(_, s)| *s).count();
    let names: Vec<&str> = added.iter().map(|(n, _)| n.as_str()).collect();
    Ok(match (names.len(), setup) {
        (0, _) => format!("Nothing new to import from {}.", found.label),
        (n, 0) => format!(
            "Imported {n} server(s) from {}: {}.",
            found.label,
            names.join(", ")
        ),
        (n, s) => format!(
            "Imported {n} server(s) from {}: {}; {s} need setup (open Edit on that row).",
            found.label,
            names.join(", ")
        ),
    })
}

/// Points the client at the broker: for `server`, that one server (adding an entry when the
/// client has none for it); without, every entry of the client the broker has imported.
#[tauri::command]
pub async fn connect_client(
    app: AppHandle,
    shell: State<'_, Shell>,
    client: String,
    server: Option<String>,
) -> CmdResult<ChangeDto> {
    let broker = broker(&shell)?;
    let found = find_client(&broker, &client)?;
    let mut servers = broker_servers(&broker)?;
    if let Some(name) = &server {
        servers.retain(|s| &s.target.name == name);
        if servers.is_empty() {
            return Err(format!("no server named \"{name}\" in the broker's config"));
        }
    }
    let text = std::fs::read_to_string(&found.path)
        .map_err(|e| format!("cannot read {}: {e}", found.path.display()))?;
    let edit = connect::plan(
        found.source,
        &text,
        &servers,
        broker.settings().port,
        server.is_some(),
    )
    .map_err(|e| format!("{}: {e}", found.path.display()))?;
    if edit.changes.is_empty() {
        return Err(format!(
            "{} already reaches {} through the broker; nothing to change",
            found.label,
            server.as_deref().unwrap_or("every imported server")
        ));
    }
    let now = crate::clock::unix_now();
    let backup = connect::apply(&found.path, &text, &edit.text, now).map_err(|e| e.to_string())?;
    let record = Record {
        client: found.label.clone(),
        path: found.path.clone(),
        backup,
        written: connect::digest(&edit.text),
        at: now,
        changes: edit.changes,
        undone: false,
    };
    if let Err(e) = Log::in_dir(&broker.settings().data_dir).push(record.clone()) {
        tracing::warn!("cannot record the change to {}: {e}", found.path.display());
    }
    super::refresh_ui(&app);
    Ok(change_dto(record))
}

/// Puts a client's file back from the backup of a change this app made.
#[tauri::command]
pub async fn undo_client_change(
    app: AppHandle,
    shell: State<'_, Shell>,
    backup: String,
) -> CmdResult<String> {
    let broker = broker(&shell)?;
    let log = Log::in_dir(&broker.settings().data_dir);
    let record = log
        .find(&backup)
        .ok_or("this change is not one the app made, or it was already undone")?;
    connect::undo(&record.path, &record.backup, &record.written).map_err(|e| e.to_string())?;
    log.mark_undone(&record.backup)
        .map_err(|e| format!("undone, but the list of changes could not be saved: {e}"))?;
    super::refresh_ui(&app);
    Ok(format!(
        "Restored {} from {}.",
        record.path.display(),
        record.backup.display()
    ))
}

/// The person closed the first-run panel: it no longer opens by itself.
#[tauri::command]
pub fn finish_first_run(shell: State<'_, Shell>) -> CmdResult<()> {
    let broker = broker(&shell)?;
    crate::fsutil::write_private(&done_flag(&broker), b"")
        .map_err(|e| format!("cannot save that the first run is done: {e}"))
}
