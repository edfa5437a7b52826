//! The first run in the real window: a fake home with Claude Code and Cursor configs; the panel
//! lists both with their remote servers; import; connect (each file checked on disk, comments
//! kept, backup written); "Connect to Cursor" on a server row adds an entry; Undo restores.

use std::panic::AssertUnwindSafe;
use std::path::Path;

use fantoccini::Client;
use futures_util::FutureExt as _;
use serde_json::{json, Value};

use super::driver::{
    click, connect, find, free_port, screenshot, start_driver_with, wait_text, Shots,
};
use super::support::{TestUpstream, UpstreamOptions};
use super::{app_args, ONE_APP};

fn claude_json(acme: &str) -> String {
    format!(
        "{{\n  \"numStartups\": 4,\n  \"mcpServers\": {{\n    \"Acme Tools\": {{\"type\": \"http\", \"url\": \"{acme}\"}},\n    \"files\": {{\"type\": \"stdio\", \"command\": \"npx\", \"args\": [\"server-files\"]}}\n  }},\n  \"tipsHistory\": {{\"x\": 1}}\n}}\n"
    )
}

fn cursor_json(docs: &str) -> String {
    format!("{{\n  // work servers\n  \"mcpServers\": {{\n    \"docs\": {{ \"url\": \"{docs}\" }}, // the wiki\n  }}\n}}\n")
}

fn json_of(path: &Path) -> Value {
    mcp_auth_broker::clients::parse::read(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Xvfb + tauri-driver; run by scripts/test.sh"]
async fn first_run_finds_claude_code_and_cursor_imports_connects_and_undoes() {
    let _one_app = ONE_APP.lock().await;
    let acme = TestUpstream::start(UpstreamOptions::default()).await;
    let docs = TestUpstream::start(UpstreamOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".cursor")).unwrap();
    std::fs::write(home.join(".claude.json"), claude_json(&acme.mcp_url)).unwrap();
    std::fs::write(home.join(".cursor/mcp.json"), cursor_json(&docs.mcp_url)).unwrap();
    let port = free_port();
    // No config file: the broker starts with no servers, which is a first run.
    let args = app_args(&dir.path().join("config.json"), dir.path(), port);
    let driver = start_driver_with(dir.path(), &[("HOME", &home)]);
    let c = connect(&driver, &args).await;
    let result = AssertUnwindSafe(scenario(&c, dir.path(), &home, port, (&acme, &docs)))
        .catch_unwind()
        .await;
    if result.is_err() {
        screenshot(&c, dir.path(), "failure").await;
        eprintln!("screenshot and files kept in {}", dir.keep().display());
    }
    let _ = c
        .execute("document.getElementById('quit').click()", vec![])
        .await;
    let _ = c.close().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

async fn scenario(
    c: &Client,
    dir: &Path,
    home: &Path,
    port: u16,
    ups: (&TestUpstream, &TestUpstream),
) {
    let (acme, docs) = ups;
    let claude = home.join(".claude.json");
    let cursor = home.join(".cursor/mcp.json");
    let claude_before = std::fs::read_to_string(&claude).unwrap();
    let cursor_before = std::fs::read_to_string(&cursor).unwrap();
    find(c, "body[data-ready='true']").await;
    let shots = Shots::from_env();
    if shots.0.is_some() {
        // Without a tray host the hint is shown; it is not the subject of these pictures.
        let shown = c
            .execute(
                "return !document.getElementById('tray-hint-box').hidden",
                vec![],
            )
            .await
            .unwrap();
        if shown == json!(true) {
            click(c, "#tray-hint-dismiss").await;
        }
    }

    // The panel opens by itself and lists both clients with their remote servers.
    let claude_card = "#firstrun [data-client='claude-code']";
    let cursor_card = "#firstrun [data-client='cursor']";
    wait_text(c, claude_card, "Claude Code and its server", |t| {
        t.contains("Claude Code")
            && t.contains("Acme Tools")
            && t.contains(&acme.mcp_url)
            && t.contains("new: imports as acme-tools")
            && t.contains("1 not importable")
    })
    .await;
    wait_text(c, cursor_card, "Cursor and its server", |t| {
        t.contains("Cursor") && t.contains(&docs.mcp_url) && t.contains(".cursor/mcp.json")
    })
    .await;

    // Nothing to connect before the servers are in the broker.
    let connect_disabled = c
        .execute(
            "return document.querySelector(arguments[0]).disabled",
            vec![json!(format!("{claude_card} [data-action='connect']"))],
        )
        .await
        .unwrap();
    assert_eq!(
        connect_disabled,
        json!(true),
        "connect waits for the import"
    );
    shots.window(c, "first-run").await;

    // Import both: the broker's config gets each server.
    click(c, &format!("{claude_card} [data-action='import']")).await;
    wait_text(c, "#action-status", "the import", |t| {
        t == "Imported 1 server(s) from Claude Code: acme-tools."
    })
    .await;
    click(c, &format!("{cursor_card} [data-action='import']")).await;
    wait_text(c, "tr[data-server='docs'] .url", "the docs row", |t| {
        t == docs.mcp_url
    })
    .await;
    let config = json_of(&dir.join("config.json"));
    assert_eq!(
        config["mcp_servers"]["acme-tools"]["url"],
        acme.mcp_url.as_str()
    );
    assert_eq!(config["mcp_servers"]["docs"]["url"], docs.mcp_url.as_str());
    assert_eq!(
        std::fs::read_to_string(&claude).unwrap(),
        claude_before,
        "import alone changes no client file"
    );

    // Connect Claude Code: its entry now goes through the broker, everything else as it was.
    click(c, &format!("{claude_card} [data-action='connect']")).await;
    let change = "#client-changes .fr-change";
    let shown = wait_text(c, change, "the change and its backup", |t| {
        t.contains("Claude Code")
            && t.contains("mcpServers.Acme Tools")
            && t.contains(".claude.json.bak-")
    })
    .await;
    let broker_url = |name: &str| format!("http://127.0.0.1:{port}/{name}/mcp");
    assert!(
        shown.contains(&broker_url("acme-tools")) && shown.contains(&acme.mcp_url),
        "before and after: {shown}"
    );
    let now = json_of(&claude);
    assert_eq!(
        now["mcpServers"]["Acme Tools"],
        json!({"type": "http", "url": broker_url("acme-tools")})
    );
    assert_eq!(now["mcpServers"]["files"]["command"], "npx");
    assert_eq!(now["numStartups"], 4);
    let backup = find(c, &format!("{change} .fr-backup"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&backup).unwrap(),
        claude_before,
        "the backup is the old file"
    );

    wait_text(
        c,
        claude_card,
        "the entry now going through the broker",
        |t| {
            t.contains("Acme Tools — goes through the broker")
                && t.contains("1 not importable")
                && t.contains("Connected ✓")
        },
    )
    .await;

    // Connect Cursor: its comments stay.
    click(c, &format!("{cursor_card} [data-action='connect']")).await;
    wait_text(c, change, "Cursor's change, newest first", |t| {
        t.contains("Cursor")
    })
    .await;
    let text = std::fs::read_to_string(&cursor).unwrap();
    assert!(
        text.contains("// work servers") && text.contains("// the wiki"),
        "{text}"
    );
    assert_eq!(
        json_of(&cursor)["mcpServers"]["docs"]["url"],
        broker_url("docs")
    );

    // Every row offers its clients; Cursor has no entry for acme-tools: the row's button adds one.
    let row = "tr[data-server='acme-tools']";
    wait_text(
        c,
        &format!("{row} .fr-connect[data-client='claude-code']"),
        "connected",
        |t| t == "Connected to Claude Code",
    )
    .await;
    click(c, &format!("{row} .fr-connect[data-client='cursor']")).await;
    wait_text(
        c,
        &format!("{row} .fr-connect[data-client='cursor']"),
        "connected",
        |t| t == "Connected to Cursor",
    )
    .await;
    let now = json_of(&cursor);
    if shots.0.is_some() {
        c.execute(
            "document.getElementById('client-changes').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
        shots.window(c, "client-changes").await;
    }
    assert_eq!(
        now["mcpServers"]["acme-tools"]["url"],
        broker_url("acme-tools")
    );
    assert_eq!(now["mcpServers"]["docs"]["url"], broker_url("docs"));

    // Undo everything, newest first: both files are as they were.
    for _ in 0..3 {
        let first = find(c, &format!("{change} .fr-backup"))
            .await
            .text()
            .await
            .unwrap();
        click(c, &format!("{change} [data-action='undo']")).await;
        wait_text(c, "#action-status", "the restore", |t| {
            t.starts_with("Restored ") && t.ends_with(&format!(" from {first}."))
        })
        .await;
        wait_text(
            c,
            "#client-changes",
            "that change gone from the list",
            |t| !t.contains(&first),
        )
        .await;
    }
    let hidden = c
        .execute(
            "return document.getElementById('client-changes').hidden",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(hidden, json!(true), "no change left to undo");
    assert_eq!(std::fs::read_to_string(&claude).unwrap(), claude_before);
    assert_eq!(std::fs::read_to_string(&cursor).unwrap(), cursor_before);
    wait_text(
        c,
        &format!("{row} .fr-connect[data-client='claude-code']"),
        "connectable again",
        |t| t == "Connect to Claude Code",
    )
    .await;
}
