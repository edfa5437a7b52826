//! Pure edits of a client's config text that point its entries at the broker: an existing entry
//! replaced in place, or a new one added to the client's server list. The text is edited as a
//! concrete syntax tree, so only those entries change: comments, key order and layout of
//! everything else stay as written.

use std::path::Path;

use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode};
use serde_json::{json, Value};

use super::jsonc::options as jsonc;
use super::parse::Source;

/// How a client reaches one broker server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The broker's name for the server.
    pub name: String,
    /// `http://127.0.0.1:PORT/{name}/mcp`.
    pub url: String,
    /// For a client that starts only local servers (Claude Desktop): the program and leading
    /// arguments of the broker's stdio bridge (`mcp-auth-broker … connect`); `name` follows.
    pub bridge: Option<Vec<String>>,
}

/// The broker's stdio bridge as a stdio-only client starts it (`Target::bridge`): this program
/// with the config, data dir and port the broker runs with, then `connect`.
pub fn bridge(exe: &Path, config: &Path, data_dir: &Path, port: u16) -> Vec<String> {
    let path = |p: &Path| p.display().to_string();
    vec![
        path(exe),
        "--config".into(),
        path(config),
        "--data-dir".into(),
        path(data_dir),
        "--port".into(),
        port.to_string(),
        "connect".into(),
    ]
}

impl Target {
    /// The entry a client of `source` keeps for this server.
    pub fn entry(&self, source: Source) -> Result<Value, String> {
        Ok(match source {
            Source::Claude | Source::Vscode | Source::VscodeSettings => {
                json!({ "type": "http", "url": self.url })
            }
            Source::Cursor => json!({ "url": self.url }),
            Source::Windsurf => json!({ "serverUrl": self.url }),
            Source::Litellm => json!({ "url": self.url, "transport": "http" }),
            Source::ClaudeDesktop => {
                let Some((program, args)) = self.bridge.as_ref().and_then(|b| b.split_first())
                else {
                    return Err("Claude Desktop starts only local programs: the broker's own `connect` bridge is needed, and its path is not known here".into());
                };
                let mut args = args.to_vec();
                args.push(self.name.clone());
                json!({ "command": program, "args": args })
            }
        })
    }
}

/// The keys under which `source` lists its servers: where a new entry goes.
pub fn block(source: Source) -> Vec<String> {
    let key = |k: &str| vec![k.to_string()];
    match source {
        Source::Claude | Source::Cursor | Source::Windsurf | Source::ClaudeDesktop => {
            key("mcpServers")
        }
        Source::Vscode => key("servers"),
        Source::VscodeSettings => vec!["mcp".into(), "servers".into()],
        Source::Litellm => key("mcp_servers"),
    }
}

/// The client's file with each imported entry pointed at the broker (`urls`: location → URL).
/// Only those entries change: comments, key order and layout of everything else stay as written.
pub fn rewrite(
    source: Source,
    text: &str,
    urls: &[(Vec<String>, String)],
) -> Result<String, String> {
    let entries = urls
        .iter()
        .map(|(location, url)| {
            let target = Target {
                name: location.last().cloned().unwrap_or_default(),
                url: url.clone(),
                bridge: None,
            };
            Ok((location.clone(), target.entry(source)?))
        })
        .collect::<Result<Vec<_>, String>>()?;
    replace(text, &entries)
}

/// The text with the entry at each location replaced by the given value.
pub fn replace(text: &str, entries: &[(Vec<String>, Value)]) -> Result<String, String> {
    let root = CstRootNode::parse(text, &jsonc()).map_err(|e| format!("not valid JSON: {e}"))?;
    for (location, value) in entries {
        let vanished = || format!("{} vanished from the file", location.join("."));
        let (last, parents) = location.split_last().ok_or_else(vanished)?;
        let mut at = root.object_value().ok_or_else(vanished)?;
        for key in parents {
            at = at.object_value(key).ok_or_else(vanished)?;
        }
        at.get(last).ok_or_else(vanished)?.set_value(input(value));
    }
    Ok(root.to_string())
}

/// The text with `name: value` added at the end of the object at `block` (created, with its
/// parents, when missing). A name already there is refused: that entry is the person's.
pub fn add(text: &str, block: &[String], name: &str, value: &Value) -> Result<String, String> {
    let root = CstRootNode::parse(text, &jsonc()).map_err(|e| format!("not valid JSON: {e}"))?;
    let not_object = |k: &str| format!("\"{k}\" is not an object; fix the file first");
    let mut at: CstObject = root
        .object_value_or_create()
        .ok_or("the file's top level is not an object; fix the file first")?;
    for key in block {
        at = at
            .object_value_or_create(key)
            .ok_or_else(|| not_object(key))?;
    }
    if at.get(name).is_some() {
        return Err(format!(
            "\"{}\" already has an entry named \"{name}\"; rename or remove it there first",
            block.join(".")
        ));
    }
    at.append(name, input(value));
    Ok(root.to_string())
}

fn input(value: &Value) -> CstInputValue {
    match value {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(a) => CstInputValue::Array(a.iter().map(input).collect()),
        Value::Object(o) => {
            CstInputValue::Object(o.iter().map(|(k, v)| (k.clone(), input(v))).collect())
        }
    }
}
