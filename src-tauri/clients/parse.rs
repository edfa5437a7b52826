//! Pure parsing of a client's MCP config (for `import` and the desktop's first run): the text in,
//! the broker entries to add (and what was skipped, with reasons) out. No I/O here, so every
//! case is unit-testable. LiteLLM's entries and its YAML are read by [`super::litellm`]; the
//! edits that point a client at the broker are [`super::edit`].

use std::collections::BTreeMap;

use serde_json::{Map, Value};

pub use super::jsonc::read;
use super::{litellm, mcp_remote};
use crate::config::raw::RawServer;
use crate::config::ServerName;
use crate::secret::SecretRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Claude,
    Cursor,
    Vscode,
    Litellm,
    /// VS Code's user `settings.json`: the same entries as `mcp.json`, under `mcp.servers`.
    VscodeSettings,
    /// Windsurf's `mcp_config.json`: `mcpServers` entries with `serverUrl`.
    Windsurf,
    /// Claude Desktop's `claude_desktop_config.json`: stdio entries only, so a remote server is
    /// an `npx mcp-remote URL` entry, and the broker is reached through `connect NAME`.
    ClaudeDesktop,
}

impl Source {
    pub fn parse(text: &str) -> Result<Source, String> {
        match text {
            "claude" => Ok(Source::Claude),
            "cursor" => Ok(Source::Cursor),
            "vscode" => Ok(Source::Vscode),
            "litellm" => Ok(Source::Litellm),
            other => Err(format!(
                "--from {other} is not known; use claude, cursor, vscode or litellm"
            )),
        }
    }

    /// Guesses the client from the file name and its top-level keys.
    pub fn detect(file_name: &str, doc: &Value) -> Option<Source> {
        if file_name.ends_with(".claude.json") || file_name.ends_with(".mcp.json") {
            return Some(Source::Claude);
        }
        match file_name {
            "claude_desktop_config.json" => return Some(Source::ClaudeDesktop),
            "mcp_config.json" => return Some(Source::Windsurf),
            "settings.json" if doc.get("mcp").is_some() => return Some(Source::VscodeSettings),
            _ => {}
        }
        if doc.get("mcp_servers").is_some() {
            Some(Source::Litellm)
        } else if doc.get("servers").is_some() {
            Some(Source::Vscode)
        } else if doc.get("mcpServers").is_some() {
            Some(Source::Cursor)
        } else {
            None
        }
    }
}

/// Why an entry that already points at the broker is skipped.
pub const THROUGH_BROKER: &str = "already goes through the broker";

/// One entry to add to the broker's config.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The name in the client's file.
    pub source_name: String,
    /// The broker's (URL-safe) name.
    pub name: String,
    pub entry: RawServer,
    /// Keys leading to the entry in the client's file (for `--rewrite`).
    pub location: Vec<String>,
    /// What was left out of the entry (fields the broker ignores) and other remarks. What keeps
    /// the entry from working is its `entry.needs_setup`.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub found: Vec<Found>,
    pub skipped: Vec<Skipped>,
}

/// Parses a client's config file. `port` is the broker's, to recognise entries already
/// pointing at it.
pub fn parse(source: Source, text: &str, port: u16) -> Result<Plan, String> {
    parse_in(source, text, port, true)
}

/// Like [`parse`], but a file without a server list has no servers instead of being the wrong
/// file: the client is installed and has nothing configured yet.
pub fn parse_installed(source: Source, text: &str, port: u16) -> Result<Plan, String> {
    parse_in(source, text, port, false)
}

fn parse_in(source: Source, text: &str, port: u16, listed: bool) -> Result<Plan, String> {
    let doc = read_any(source, text)?;
    if !doc.is_object() {
        return Err("expected an object (mapping) at the top level".into());
    }
    let mut plan = Plan::default();
    let blocks = server_blocks(source, &doc);
    if blocks.is_empty() && !listed {
        return Ok(plan);
    }
    if blocks.is_empty() {
        let key = match source {
            Source::Claude | Source::Cursor | Source::Windsurf | Source::ClaudeDesktop => {
                "\"mcpServers\""
            }
            Source::Vscode => "\"servers\"",
            Source::VscodeSettings => "\"mcp.servers\"",
            Source::Litellm => "\"mcp_servers\"",
        };
        return Err(format!(
            "no {key} object found; is this the right file for --from?"
        ));
    }
    for (location, block) in blocks {
        let Some(entries) = block.as_object() else {
            return Err(format!("\"{}\" must be an object", location.join(".")));
        };
        for (name, raw) in entries {
            let mut loc = location.clone();
            loc.push(name.clone());
            match entry(source, raw, port) {
                Ok(taken) => add(&mut plan, name, taken, loc),
                Err(reason) => plan.skipped.push(Skipped {
                    name: name.clone(),
                    reason,
                }),
            }
        }
    }
    Ok(plan)
}

/// Where the client's file lists servers, each with its path in the file (Claude Code also
/// keeps a list per project).
fn server_blocks(source: Source, doc: &Value) -> Vec<(Vec<String>, &Value)> {
    match source {
        Source::Claude => {
            let mut b = vec![];
            if let Some(v) = doc.get("mcpServers") {
                b.push((vec!["mcpServers".to_string()], v));
            }
            for (project, p) in doc["projects"].as_object().into_iter().flatten() {
                if let Some(v) = p.get("mcpServers") {
                    b.push((
                        vec!["projects".into(), project.clone(), "mcpServers".into()],
                        v,
                    ));
                }
            }
            b
        }
        Source::Cursor | Source::Windsurf | Source::ClaudeDesktop => key_block(doc, "mcpServers"),
        Source::Vscode => key_block(doc, "servers"),
        Source::VscodeSettings => doc
            .get("mcp")
            .and_then(|m| m.get("servers"))
            .map(|v| vec![(vec!["mcp".into(), "servers".into()], v)])
            .unwrap_or_default(),
        Source::Litellm => key_block(doc, "mcp_servers"),
    }
}

fn key_block<'a>(doc: &'a Value, key: &str) -> Vec<(Vec<String>, &'a Value)> {
    doc.get(key)
        .map(|v| vec![(vec![key.to_string()], v)])
        .unwrap_or_default()
}

/// The file as a JSON value: JSONC, or YAML for a LiteLLM config that is not JSON.
pub fn read_any(source: Source, text: &str) -> Result<Value, String> {
    if source == Source::Litellm && litellm::is_yaml(text) {
        litellm::read_yaml(text)
    } else {
        read(text)
    }
}

/// Adds a found entry under a sanitised, unique name; the same URL twice is one entry. An entry
/// that does not validate on its own is added all the same, marked as needing setup.
fn add(plan: &mut Plan, source_name: &str, taken: litellm::Taken, loc: Vec<String>) {
    let litellm::Taken {
        mut entry,
        notes,
        mut setup,
    } = taken;
    let base = match sanitize(source_name) {
        Ok(n) => n,
        Err(reason) => {
            plan.skipped.push(Skipped {
                name: source_name.into(),
                reason,
            });
            return;
        }
    };
    if let Some(same) = plan.found.iter().find(|f| f.entry.url == entry.url) {
        let reason = format!("same URL as \"{}\", imported once", same.source_name);
        plan.skipped.push(Skipped {
            name: source_name.into(),
            reason,
        });
        return;
    }
    let mut name = base.clone();
    let mut n = 2;
    while plan.found.iter().any(|f| f.name == name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    setup.extend(litellm::problems(&name, &entry));
    entry.needs_setup = (!setup.is_empty()).then(|| setup.join("; "));
    plan.found.push(Found {
        source_name: source_name.into(),
        name,
        entry,
        location: loc,
        notes,
    });
}

/// The URL-safe broker name for a client's server name (`config::ServerName` rules).
pub fn sanitize(name: &str) -> Result<String, String> {
    let mut out = String::new();
    for c in name.trim().chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out = out.trim_matches(['-', '_']).to_string();
    out.truncate(ServerName::MAX_LEN);
    match ServerName::parse(&out) {
        Ok(n) => Ok(n.as_str().to_string()),
        Err(_) if !out.is_empty() => ServerName::parse(&format!("{out}-server"))
            .map(|n| n.as_str().to_string())
            .map_err(|e| format!("no usable name (\"{out}\" {e})")),
        Err(e) => Err(format!(
            "no usable name: the name {e}; rename it in the client's file"
        )),
    }
}

/// One client entry → a broker entry with notes and setup reasons, or why it was skipped.
fn entry(source: Source, raw: &Value, port: u16) -> Result<litellm::Taken, String> {
    let Some(obj) = raw.as_object() else {
        return Err("the entry is not an object".into());
    };
    let kind = obj
        .get("type")
        .or(obj.get("transport"))
        .and_then(Value::as_str);
    let remote = (source == Source::ClaudeDesktop)
        .then(|| mcp_remote::url(obj))
        .flatten();
    let url = remote_url(obj, kind, remote, port)?;
    let transport = match kind.filter(|_| remote.is_none()) {
        None | Some("http" | "streamable-http" | "streamable_http" | "streamableHttp") => None,
        Some("sse") => Some("sse".to_string()),
        Some(other) => {
            return Err(format!(
                "transport \"{other}\" is not supported (only http and sse)"
            ))
        }
    };
    let mut taken = if source == Source::Litellm {
        litellm::take(raw)?
    } else {
        litellm::Taken::default()
    };
    let server = &mut taken.entry;
    server.url = Some(url.to_string());
    server.transport = transport;
    let headers = headers_of(obj, remote.is_some());
    server.headers = None;
    server.static_headers = None;
    headers_into(&headers, &mut taken);
    Ok(taken)
}

/// The entry's remote URL (for Claude Desktop possibly `remote`, the one `mcp-remote` is run
/// with), or why it cannot go through the broker: a stdio server, no URL, the broker itself, or
/// an address the broker does not reach upstreams at.
fn remote_url<'a>(
    obj: &'a Map<String, Value>,
    kind: Option<&str>,
    remote: Option<&'a str>,
    port: u16,
) -> Result<&'a str, String> {
    if let (Some(cmd), None) = (obj.get("command").and_then(Value::as_str), &remote) {
        return Err(format!("a stdio server (runs `{cmd}`): only remote (http/sse url) servers can go through the broker"));
    }
    if kind == Some("stdio") && remote.is_none() {
        return Err(
            "a stdio server: only remote (http/sse url) servers can go through the broker".into(),
        );
    }
    let Some(url) = obj
        .get("url")
        .or(obj.get("serverUrl"))
        .and_then(Value::as_str)
        .or(remote)
    else {
        return Err("no \"url\": nothing to import".into());
    };
    if points_at_broker(url, port) {
        return Err(THROUGH_BROKER.into());
    }
    crate::urlcheck::check_remote_url(url)
        .map_err(|problem| format!("its url \"{url}\" {problem}; the broker reaches upstreams over https (http only on 127.0.0.1 or localhost)"))?;
    Ok(url)
}

/// The entry's headers (`headers` and LiteLLM's `static_headers`, and for `mcp-remote` its
/// `--header` arguments).
fn headers_of(obj: &Map<String, Value>, remote: bool) -> Map<String, Value> {
    let mut headers = Map::new();
    for key in ["headers", "static_headers"] {
        if let Some(h) = obj.get(key).and_then(Value::as_object) {
            headers.extend(h.clone());
        }
    }
    if remote {
        headers.extend(mcp_remote::headers(obj));
    }
    headers
}

fn points_at_broker(url: &str, port: u16) -> bool {
    url::Url::parse(url).is_ok_and(|u| {
        matches!(u.host_str(), Some("127.0.0.1" | "localhost")) && u.port() == Some(port)
    })
}

/// `${VAR}`, `${env:VAR}` or `os.environ/VAR` → `os.environ/VAR`.
fn env_ref(value: &str) -> Option<String> {
    if SecretRef::parse(value).is_some() {
        return Some(value.to_string());
    }
    let inner = value.strip_prefix("${")?.strip_suffix('}')?;
    let var = inner.strip_prefix("env:").unwrap_or(inner);
    let ok = !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then(|| format!("{}{var}", SecretRef::ENV_PREFIX))
}

/// Copies headers: environment references become `os.environ/VAR`, `Authorization: Bearer
/// ${VAR}` becomes a bearer-token credential, literal secrets are left out and make the entry
/// need setup.
fn headers_into(headers: &Map<String, Value>, taken: &mut litellm::Taken) {
    let server: &mut RawServer = &mut taken.entry;
    let notes = &mut taken.notes;
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        let Some(value) = value.as_str() else {
            notes.push(format!("header {name} is not a string and was not copied"));
            continue;
        };
        let lower = name.to_ascii_lowercase();
        if lower == "authorization" {
            let token = value.strip_prefix("Bearer ").unwrap_or(value);
            if let (Some(r), true) = (env_ref(token), value.starts_with("Bearer ")) {
                server.auth_type = Some("bearer_token".into());
                server.auth_value = Some(r);
                continue;
            }
        }
        if let Some(r) = env_ref(value) {
            out.insert(name.clone(), r);
            continue;
        }
        let sensitive = crate::config::is_sensitive_header(name);
        if sensitive || value.contains("${") {
            taken.setup.push(format!("header {name} held a literal secret (or a variable the broker cannot read) and was not copied: add it to the broker's config as \"os.environ/VAR\""));
        } else {
            out.insert(name.clone(), value.to_string());
        }
    }
    server.headers = (!out.is_empty()).then_some(out);
}
