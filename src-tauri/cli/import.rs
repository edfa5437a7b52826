//! `import`: adds the remote MCP servers of Claude Code, Cursor, VS Code or a LiteLLM config to
//! the broker's config, and (`--rewrite`) points that client at the broker, after a backup.
//! The rules (parsing, the careful rewrite, the backup) live in [`crate::clients`], shared with
//! the dashboard's first run; this file does the reading, writing and reporting.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::servers::fail;
use super::{exit, Paths};
use crate::clients::parse::{self, Found, Plan, Source};
use crate::clients::{against_config, connect, edit, litellm};
use crate::config::file;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The client that wrote the file: claude, cursor, vscode or litellm (guessed if omitted).
    #[arg(long = "from", value_name = "CLIENT")]
    pub from: Option<String>,
    /// The client's config file (default: the client's usual place; required for litellm).
    pub path: Option<PathBuf>,
    /// Show what would be imported; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Point the client's file at the broker afterwards (a backup `<file>.bak-<time>` is kept).
    #[arg(long)]
    pub rewrite: bool,
}

fn default_path(source: Source) -> Result<PathBuf, String> {
    let home =
        || dirs::home_dir().ok_or_else(|| "no home directory; pass the file's path".to_string());
    match source {
        Source::Claude => Ok(home()?.join(".claude.json")),
        Source::Cursor => Ok(home()?.join(".cursor/mcp.json")),
        Source::Vscode => Ok(PathBuf::from(".vscode/mcp.json")),
        Source::Litellm => Err("pass the path of the LiteLLM config, e.g. `mcp-auth-broker import --from litellm config.yaml`".into()),
        // Not offered by `--from` (the dashboard finds them); a path can still be imported.
        Source::Windsurf | Source::ClaudeDesktop | Source::VscodeSettings => Err("pass the file's path".into()),
    }
}

pub fn import(paths: &Paths, args: ImportArgs) -> ExitCode {
    match run(paths, &args) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => fail(exit::USAGE, format!("{e}; nothing was written")),
    }
}

fn run(paths: &Paths, args: &ImportArgs) -> Result<(), String> {
    let Input {
        path,
        text,
        source,
        yaml,
    } = read_input(args)?;
    let shown = path.display().to_string();
    if args.rewrite && yaml {
        return Err(format!("--rewrite edits JSON files only and {shown} is YAML; import without --rewrite, then point each client at the broker with `mcp-auth-broker client-config NAME --for claude|cursor|vscode`"));
    }
    let loaded = file::read(&paths.config).map_err(|e| e.to_string())?;
    let port = paths.port(loaded.validated.config.port);
    let plan = parse::parse(source, &text, port).map_err(|e| format!("{shown}: {e}"))?;
    let mut raw = loaded.raw;
    let (mut plan, already) = against_config(plan, &raw.mcp_servers);
    report(&plan, &shown);
    if args.dry_run {
        println!("Dry run: nothing was written.");
        return Ok(());
    }
    if !plan.found.is_empty() {
        for f in &plan.found {
            raw.mcp_servers.insert(f.name.clone(), f.entry.clone());
        }
        file::write(&paths.config, &raw).map_err(|e| e.to_string())?;
        wrote(&plan.found, &paths.config);
    }
    if args.rewrite {
        plan.found.extend(already);
        rewrite(paths, source, &path, &text, &plan.found, port)?;
    } else if !plan.found.is_empty() {
        println!("Next: sign in with `mcp-auth-broker login NAME` where needed, and point the client at the broker (`--rewrite`, or `mcp-auth-broker client-config NAME --for claude`).");
    }
    Ok(())
}

/// The file to import, read, and which client wrote it (named, or told from its name and
/// content); `yaml` when it is a LiteLLM YAML config.
struct Input {
    path: PathBuf,
    text: String,
    source: Source,
    yaml: bool,
}

fn read_input(args: &ImportArgs) -> Result<Input, String> {
    let from = args.from.as_deref().map(Source::parse).transpose()?;
    let path = match (&args.path, from) {
        (Some(p), _) => p.clone(),
        (None, Some(source)) => default_path(source)?,
        (None, None) => return Err("say what to import: `mcp-auth-broker import --from claude|cursor|vscode|litellm [PATH]`".into()),
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let yaml = litellm::is_yaml(&text)
        && (from == Some(Source::Litellm)
            || matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ));
    let source = match from {
        Some(s) => s,
        None => {
            let doc = if yaml {
                litellm::read_yaml(&text).unwrap_or(serde_json::Value::Null)
            } else {
                parse::read(&text).unwrap_or(serde_json::Value::Null)
            };
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            Source::detect(name, &doc)
                .ok_or_else(|| format!("cannot tell which client wrote {shown}; pass --from claude|cursor|vscode|litellm"))?
        }
    };
    Ok(Input {
        path,
        text,
        source,
        yaml,
    })
}

/// Says what was written to the config, and how many entries still need setup.
fn wrote(found: &[Found], config: &Path) {
    let unfinished = found
        .iter()
        .filter(|f| f.entry.needs_setup.is_some())
        .count();
    println!(
        "Wrote {} server(s) to {}{}.",
        found.len(),
        config.display(),
        match unfinished {
            0 => String::new(),
            n => format!(
                "; {n} need setup (see above; remove an entry's \"needs_setup\" line once done, or save it from the dashboard)"
            ),
        }
    );
}

fn report(plan: &Plan, shown: &str) {
    println!("From {shown}:");
    if plan.found.is_empty() {
        println!("  nothing to import");
    }
    for f in &plan.found {
        println!(
            "  import  {} <- \"{}\" ({})",
            f.name,
            f.source_name,
            f.entry.url.as_deref().unwrap_or("")
        );
        for note in &f.notes {
            println!("          note: {note}");
        }
        if let Some(why) = &f.entry.needs_setup {
            println!("          needs setup (imported, kept out of service until done): {why}");
        }
    }
    for s in &plan.skipped {
        println!("  skip    \"{}\": {}", s.name, s.reason);
    }
}

fn rewrite(
    paths: &Paths,
    source: Source,
    path: &Path,
    text: &str,
    found: &[Found],
    port: u16,
) -> Result<(), String> {
    if found.is_empty() {
        println!("Nothing to rewrite in {}.", path.display());
        return Ok(());
    }
    let bridge = std::env::current_exe()
        .ok()
        .map(|exe| edit::bridge(&exe, &paths.config, &paths.data_dir, port));
    let entries = found
        .iter()
        .map(|f| {
            let target = edit::Target {
                name: f.name.clone(),
                url: format!("http://127.0.0.1:{port}/{}/mcp", f.name),
                bridge: bridge.clone(),
            };
            Ok((f.location.clone(), target.entry(source)?))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let new_text = edit::replace(text, &entries)?;
    let backup = connect::apply(path, text, &new_text, crate::clock::unix_now())
        .map_err(|e| e.to_string())?;
    println!(
        "Rewrote {} to use the broker ({} server(s)); backup: {}",
        path.display(),
        entries.len(),
        backup.display()
    );
    Ok(())
}
