//! Which MCP clients this person has, and the remote servers in their configs: Claude Code
//! (`~/.claude.json` and the `.mcp.json` of the projects it knows), Claude Desktop, Cursor,
//! VS Code (`mcp.json`, or `settings.json`'s `mcp`) and Windsurf. A client counts as found when
//! its config file exists. The home and config folders are parameters, so tests use a fake home.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::parse::{parse_installed, read, Plan, Source};

/// One client config file that exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Installed {
    /// Stable for this file: `cursor`, `claude-code`, `claude-code:/home/me/app`, …
    pub id: String,
    /// What a person calls it: "Cursor", "Claude Code (project app)".
    pub label: String,
    pub source: Source,
    pub path: PathBuf,
    /// Its remote servers, or why the file cannot be read (said, never fatal).
    pub servers: Result<Plan, String>,
}

/// Where each client keeps its user-wide config (`config_dir`: `~/.config` on Linux).
pub fn places(
    home: &Path,
    config_dir: &Path,
) -> Vec<(&'static str, &'static str, Source, PathBuf)> {
    let vscode = config_dir.join("Code/User");
    vec![
        (
            "claude-code",
            "Claude Code",
            Source::Claude,
            home.join(".claude.json"),
        ),
        (
            "claude-desktop",
            "Claude Desktop",
            Source::ClaudeDesktop,
            config_dir.join("Claude/claude_desktop_config.json"),
        ),
        (
            "cursor",
            "Cursor",
            Source::Cursor,
            home.join(".cursor/mcp.json"),
        ),
        ("vscode", "VS Code", Source::Vscode, vscode.join("mcp.json")),
        (
            "vscode-settings",
            "VS Code",
            Source::VscodeSettings,
            vscode.join("settings.json"),
        ),
        (
            "windsurf",
            "Windsurf",
            Source::Windsurf,
            home.join(".codeium/windsurf/mcp_config.json"),
        ),
    ]
}

/// The clients found under `home` and `config_dir`, with their servers (`port`: the broker's,
/// so entries already pointing at it are recognised).
pub fn discover(home: &Path, config_dir: &Path, port: u16) -> Vec<Installed> {
    let mut out = Vec::new();
    let mut vscode_mcp_json = false;
    for (id, label, source, path) in places(home, config_dir) {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if id == "vscode" {
            vscode_mcp_json = true;
        }
        // VS Code's settings.json counts only for MCP servers kept there, or when it has no
        // mcp.json (a new entry then goes under `mcp`).
        let doc = read(&text).unwrap_or(Value::Null);
        if id == "vscode-settings" && vscode_mcp_json && doc.get("mcp").is_none() {
            continue;
        }
        if id == "claude-code" {
            out.extend(projects(&doc, port));
        }
        let label = match id {
            "vscode-settings" => "VS Code (settings.json)".to_string(),
            _ => label.to_string(),
        };
        out.push(Installed {
            id: id.to_string(),
            label,
            source,
            servers: parse_installed(source, &text, port),
            path,
        });
    }
    // The user-wide Claude Code file first, then its projects.
    out.sort_by_key(|c| c.id.starts_with("claude-code:"));
    out
}

/// The `.mcp.json` files of the projects Claude Code lists in `~/.claude.json`.
fn projects(claude: &Value, port: u16) -> Vec<Installed> {
    let dirs = claude["projects"].as_object().into_iter().flatten();
    dirs.filter(|(dir, _)| Path::new(dir).is_absolute())
        .filter_map(|(dir, _)| {
            let path = Path::new(dir).join(".mcp.json");
            let text = std::fs::read_to_string(&path).ok()?;
            let short = Path::new(dir)
                .file_name()
                .map_or(dir.clone(), |n| n.to_string_lossy().into_owned());
            Some(Installed {
                id: format!("claude-code:{dir}"),
                label: format!("Claude Code (project {short})"),
                source: Source::Claude,
                servers: parse_installed(Source::Claude, &text, port),
                path,
            })
        })
        .collect()
}
