//! Each client format: found in a fake home, pointed at the broker (comments and layout kept,
//! only the entries for the broker's servers changed), and undone from the backup.

use std::path::Path;

use serde_json::json;

use super::connect::{self, apply, digest, plan, undo, BrokerServer};
use super::discover::discover;
use super::edit::Target;
use super::parse::{read, Source};

const PORT: u16 = 47999;

fn write(home: &Path, rel: &str, text: &str) {
    let path = home.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn server(name: &str, upstream: &str) -> BrokerServer {
    BrokerServer {
        target: Target {
            name: name.into(),
            url: format!("http://127.0.0.1:{PORT}/{name}/mcp"),
            bridge: Some(vec!["/opt/broker".into(), "connect".into()]),
        },
        upstream: upstream.into(),
    }
}

const CLAUDE: &str = r#"{
  "numStartups": 3,
  "mcpServers": {
    "Linear": {"type": "http", "url": "https://mcp.linear.app/mcp"},
    "files": {"type": "stdio", "command": "npx", "args": ["-y", "server-files"]}
  }
}"#;

const CURSOR: &str = "{\n  // my servers\n  \"mcpServers\": {\n    \"linear\": { \"url\": \"https://mcp.linear.app/mcp\" }, // work\n    \"other\": { \"url\": \"https://other.test/mcp\" },\n  }\n}\n";

const VSCODE_SETTINGS: &str = "{\n  \"editor.fontSize\": 14,\n  /* MCP */\n  \"mcp\": {\n    \"servers\": {\n      \"linear\": { \"type\": \"http\", \"url\": \"https://mcp.linear.app/mcp\" }\n    }\n  }\n}\n";

const WINDSURF: &str = "{\n  \"mcpServers\": {\n    // remote\n    \"linear\": { \"serverUrl\": \"https://mcp.linear.app/mcp\" }\n  }\n}\n";

const DESKTOP: &str = r#"{
  "mcpServers": {
    "linear": {"command": "npx", "args": ["-y", "mcp-remote", "https://mcp.linear.app/mcp"]},
    "local": {"command": "node", "args": ["server.js"]}
  },
  "globalShortcut": "Ctrl+Space"
}"#;

#[test]
fn discover_finds_each_client_in_a_fake_home_with_its_remote_servers() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let project = h.join("app");
    let claude = CLAUDE.replacen(
        "\"numStartups\": 3,",
        &format!(
            "\"numStartups\": 3, \"projects\": {{\"{}\": {{}}}},",
            project.display()
        ),
        1,
    );
    write(h, ".claude.json", &claude);
    write(
        h,
        "app/.mcp.json",
        r#"{"mcpServers": {"notion": {"type": "http", "url": "https://mcp.notion.test/mcp"}}}"#,
    );
    write(h, ".cursor/mcp.json", CURSOR);
    write(h, ".config/Code/User/settings.json", VSCODE_SETTINGS);
    write(h, ".config/Claude/claude_desktop_config.json", DESKTOP);
    write(h, ".codeium/windsurf/mcp_config.json", WINDSURF);
    let found = discover(h, &h.join(".config"), PORT);
    let summary: Vec<(String, String, Vec<String>)> = found
        .iter()
        .map(|c| {
            let plan = c.servers.as_ref().unwrap();
            let urls = plan.found.iter().map(|f| f.entry.url.clone().unwrap());
            (c.id.clone(), c.label.clone(), urls.collect())
        })
        .collect();
    let linear = || vec!["https://mcp.linear.app/mcp".to_string()];
    assert_eq!(
        summary,
        vec![
            ("claude-code".into(), "Claude Code".into(), linear()),
            ("claude-desktop".into(), "Claude Desktop".into(), linear()),
            (
                "cursor".into(),
                "Cursor".into(),
                vec![linear()[0].clone(), "https://other.test/mcp".into()]
            ),
            (
                "vscode-settings".into(),
                "VS Code (settings.json)".into(),
                linear()
            ),
            ("windsurf".into(), "Windsurf".into(), linear()),
            (
                format!("claude-code:{}", project.display()),
                "Claude Code (project app)".into(),
                vec!["https://mcp.notion.test/mcp".into()]
            ),
        ]
    );
}

#[test]
fn discover_lists_nothing_in_an_empty_home_and_says_why_a_broken_file_cannot_be_read() {
    let home = tempfile::tempdir().unwrap();
    assert!(discover(home.path(), &home.path().join(".config"), PORT).is_empty());
    write(home.path(), ".cursor/mcp.json", "{\"mcpServers\": ");
    let found = discover(home.path(), &home.path().join(".config"), PORT);
    let why = found[0].servers.as_ref().unwrap_err();
    assert!(why.starts_with("not valid JSON"), "{why}");
}

/// Connects, checks the file on disk and the backup, then undoes.
fn connect_and_undo(source: Source, original: &str, expect: &[(&str, serde_json::Value)]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.json");
    std::fs::write(&path, original).unwrap();
    let servers = [server("linear", "https://mcp.linear.app/mcp")];
    let edit = plan(source, original, &servers, PORT, false).unwrap();
    let backup = apply(&path, original, &edit.text, 1_700_000_000).unwrap();
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), original);
    let now = std::fs::read_to_string(&path).unwrap();
    assert_eq!(now, edit.text);
    let doc = read(&now).unwrap();
    for (key, want) in expect {
        let at = key.split('.').fold(&doc, |at, k| &at[k]);
        assert_eq!(at, want, "{source:?} {key}: {now}");
        let change = edit.changes.iter().find(|c| c.key == *key).unwrap();
        assert_eq!(&change.after, want);
        assert!(change.before.is_some());
    }
    assert_eq!(edit.changes.len(), expect.len(), "{:?}", edit.changes);
    undo(&path, &backup, &digest(&now)).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
}

#[test]
fn connecting_each_client_format_replaces_only_its_imported_entries_and_undo_restores_the_file() {
    let url = format!("http://127.0.0.1:{PORT}/linear/mcp");
    let typed = json!({"type": "http", "url": url});
    connect_and_undo(
        Source::Claude,
        CLAUDE,
        &[("mcpServers.Linear", typed.clone())],
    );
    connect_and_undo(
        Source::Cursor,
        CURSOR,
        &[("mcpServers.linear", json!({"url": url}))],
    );
    let vscode = "{\n  // team servers\n  \"servers\": {\n    \"Linear\": { \"type\": \"http\", \"url\": \"https://mcp.linear.app/mcp\" },\n  },\n}\n";
    connect_and_undo(Source::Vscode, vscode, &[("servers.Linear", typed.clone())]);
    let project = r#"{"projects": {"/home/me/app": {"mcpServers": {"l": {"url": "https://mcp.linear.app/mcp"}}}}}"#;
    connect_and_undo(
        Source::Claude,
        project,
        &[("projects./home/me/app.mcpServers.l", typed.clone())],
    );
    connect_and_undo(
        Source::VscodeSettings,
        VSCODE_SETTINGS,
        &[("mcp.servers.linear", typed)],
    );
    connect_and_undo(
        Source::Windsurf,
        WINDSURF,
        &[("mcpServers.linear", json!({"serverUrl": url}))],
    );
    let bridge = json!({"command": "/opt/broker", "args": ["connect", "linear"]});
    connect_and_undo(
        Source::ClaudeDesktop,
        DESKTOP,
        &[("mcpServers.linear", bridge)],
    );
}

#[test]
fn a_connected_file_keeps_its_comments_key_order_and_other_entries_as_written() {
    let servers = [server("linear", "https://mcp.linear.app/mcp")];
    let edit = plan(Source::Cursor, CURSOR, &servers, PORT, false).unwrap();
    let (head, tail) = CURSOR
        .split_once("{ \"url\": \"https://mcp.linear.app/mcp\" }")
        .unwrap();
    assert!(
        edit.text.starts_with(head) && edit.text.ends_with(tail),
        "{}",
        edit.text
    );
    let entry = &edit.text[head.len()..edit.text.len() - tail.len()];
    assert_eq!(
        read(entry).unwrap(),
        json!({"url": format!("http://127.0.0.1:{PORT}/linear/mcp")})
    );
    let edit = plan(Source::Windsurf, WINDSURF, &servers, PORT, false).unwrap();
    assert!(edit.text.contains("    // remote\n"), "{}", edit.text);
    let edit = plan(Source::ClaudeDesktop, DESKTOP, &servers, PORT, false).unwrap();
    let doc = read(&edit.text).unwrap();
    assert_eq!(doc["mcpServers"]["local"]["command"], "node");
    let keys: Vec<_> = doc.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["mcpServers", "globalShortcut"]);
}

#[test]
fn connecting_a_server_the_client_lacks_adds_one_entry_where_that_client_lists_servers() {
    let url = format!("http://127.0.0.1:{PORT}/docs/mcp");
    let docs = [server("docs", "https://docs.test/mcp")];
    let cases = [
        (
            Source::Claude,
            "{\"numStartups\": 1}",
            "mcpServers.docs",
            json!({"type": "http", "url": url}),
        ),
        (
            Source::Cursor,
            CURSOR,
            "mcpServers.docs",
            json!({"url": url}),
        ),
        (
            Source::Vscode,
            "{\"servers\": {}}",
            "servers.docs",
            json!({"type": "http", "url": url}),
        ),
        (
            Source::VscodeSettings,
            "{\"editor.fontSize\": 14}",
            "mcp.servers.docs",
            json!({"type": "http", "url": url}),
        ),
        (
            Source::Windsurf,
            WINDSURF,
            "mcpServers.docs",
            json!({"serverUrl": url}),
        ),
    ];
    for (source, text, key, want) in cases {
        let edit = plan(source, text, &docs, PORT, true).unwrap();
        let doc = read(&edit.text).unwrap();
        assert_eq!(
            key.split('.').fold(&doc, |at, k| &at[k]),
            &want,
            "{source:?}"
        );
        assert_eq!(edit.changes.len(), 1);
        assert_eq!(edit.changes[0].before, None);
        // Connecting again changes nothing: the file already reaches the broker.
        let again = plan(source, &edit.text, &docs, PORT, true).unwrap();
        assert!(again.changes.is_empty(), "{source:?}: {:?}", again.changes);
        assert_eq!(again.text, edit.text);
    }
    let taken = r#"{"mcpServers": {"docs": {"url": "https://elsewhere.test/mcp"}}}"#;
    let err = plan(Source::Cursor, taken, &docs, PORT, true).unwrap_err();
    assert!(err.contains("already has an entry named \"docs\""), "{err}");
}

#[test]
fn undo_refuses_when_the_file_changed_after_the_broker_wrote_it_and_apply_when_it_changed_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mcp.json");
    std::fs::write(&path, CURSOR).unwrap();
    let servers = [server("linear", "https://mcp.linear.app/mcp")];
    let edit = plan(Source::Cursor, CURSOR, &servers, PORT, false).unwrap();
    let backup = apply(&path, CURSOR, &edit.text, 5).unwrap();
    assert!(backup.to_str().unwrap().ends_with("mcp.json.bak-5"));
    // A second change in the same second gets its own backup.
    let again = apply(&path, &edit.text, &edit.text, 5).unwrap();
    assert!(again.to_str().unwrap().ends_with("mcp.json.bak-5-2"));
    std::fs::write(&path, "{\"mcpServers\": {}}").unwrap();
    let err = undo(&path, &backup, &digest(&edit.text)).unwrap_err();
    assert!(matches!(err, connect::Error::ChangedAfter { .. }), "{err}");
    assert!(err.to_string().contains("bak-5"), "names the backup: {err}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\"mcpServers\": {}}"
    );
    let err = apply(&path, CURSOR, &edit.text, 6).unwrap_err();
    assert!(matches!(err, connect::Error::ChangedBefore { .. }), "{err}");
}

#[test]
fn the_change_log_finds_a_change_by_its_backup_until_it_is_undone() {
    use super::changes::{Log, Record};
    let dir = tempfile::tempdir().unwrap();
    let log = Log::in_dir(dir.path());
    assert!(log.list().is_empty());
    let record = Record {
        client: "Cursor".into(),
        path: "/h/.cursor/mcp.json".into(),
        backup: "/h/.cursor/mcp.json.bak-5".into(),
        written: digest("x"),
        at: 5,
        changes: vec![],
        undone: false,
    };
    log.push(record.clone()).unwrap();
    assert_eq!(log.find("/h/.cursor/mcp.json.bak-5"), Some(record.clone()));
    assert_eq!(log.find("/etc/passwd"), None);
    log.mark_undone(&record.backup).unwrap();
    assert_eq!(log.find("/h/.cursor/mcp.json.bak-5"), None);
    assert!(log.list()[0].undone);
}

#[test]
fn a_client_counts_as_connected_only_when_no_entry_still_goes_to_the_upstream_directly() {
    use super::parse::parse_installed;
    let linear = server("linear", "https://mcp.linear.app/mcp");
    let check = |source, text: &str| {
        let found = parse_installed(source, text, PORT).unwrap().found;
        connect::connected(source, &read(text).unwrap(), &found, &linear)
    };
    assert!(!check(Source::Cursor, CURSOR), "still direct");
    let edit = plan(
        Source::Cursor,
        CURSOR,
        std::slice::from_ref(&linear),
        PORT,
        false,
    )
    .unwrap();
    assert!(check(Source::Cursor, &edit.text));
    // A Claude Code project's entry counts, and then connecting adds nothing at the top level.
    let project =
        r#"{"projects": {"/p": {"mcpServers": {"l": {"url": "https://mcp.linear.app/mcp"}}}}}"#;
    let edit = plan(
        Source::Claude,
        project,
        std::slice::from_ref(&linear),
        PORT,
        true,
    )
    .unwrap();
    assert_eq!(edit.changes.len(), 1, "{:?}", edit.changes);
    assert!(check(Source::Claude, &edit.text));
    let again = plan(
        Source::Claude,
        &edit.text,
        std::slice::from_ref(&linear),
        PORT,
        true,
    )
    .unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    let desktop = plan(
        Source::ClaudeDesktop,
        DESKTOP,
        std::slice::from_ref(&linear),
        PORT,
        false,
    )
    .unwrap();
    assert!(
        check(Source::ClaudeDesktop, &desktop.text),
        "the bridge entry counts"
    );
}

#[test]
fn the_change_shown_and_recorded_never_holds_a_header_or_environment_value() {
    let text = r#"{"mcpServers": {
  "linear": {"url": "https://mcp.linear.app/mcp", "headers": {"Authorization": "Bearer sk-live-123"}},
  "sentry": {"command": "npx", "args": ["mcp-remote", "https://mcp.sentry.dev/mcp", "--header", "Authorization: Bearer sk-live-456"], "env": {"TOKEN": "sk-live-789"}}
}}"#;
    let servers = [
        server("linear", "https://mcp.linear.app/mcp"),
        server("sentry", "https://mcp.sentry.dev/mcp"),
    ];
    let cursor = plan(Source::Cursor, text, &servers, PORT, false).unwrap();
    let desktop = plan(Source::ClaudeDesktop, text, &servers, PORT, false).unwrap();
    let shown = serde_json::to_string(&[cursor.changes, desktop.changes]).unwrap();
    assert!(!shown.contains("sk-live"), "{shown}");
    assert!(
        shown.contains("\"Authorization\":\"(hidden)\"")
            && shown.contains("Authorization: (hidden)"),
        "{shown}"
    );
    assert!(shown.contains("\"TOKEN\":\"(hidden)\""), "{shown}");
}
