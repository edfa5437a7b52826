//! `connect NAME`, the stdio bridge, as the real binary: the official TypeScript SDK's
//! `StdioClientTransport` launches it the way Claude Code launches a local server, and reaches
//! an OAuth-protected upstream through a running broker with an API key the bridge keeps in the
//! real OS keychain. Needs Node >= 22 and `tests/js` (scripts/setup-node.sh).

use crate::support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mcp_auth_broker::cli::connect::{key_name, keychain_entry};
use mcp_auth_broker::secret::Secret;
use mcp_auth_broker::vault::{KeyringStore, TokenStore};
use serde_json::{json, Value};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-auth-broker");

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The bridge's arguments for `server` behind `b`.
fn bridge_args(b: &TestBroker, server: &str) -> Vec<String> {
    let data: PathBuf = b.dir.path().join("data");
    vec![
        "connect".into(),
        server.into(),
        "--port".into(),
        b.port.to_string(),
        "--config".into(),
        b.config_path.display().to_string(),
        "--data-dir".into(),
        data.display().to_string(),
    ]
}

/// Runs `tests/js/stdio_client.mjs` (off the runtime, so the in-process broker keeps
/// answering) and returns its JSON report.
async fn stdio_client(args: Vec<String>) -> Value {
    let mut cmd = support::node::node_command();
    cmd.arg("stdio_client.mjs").arg(BIN).args(args);
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || cmd.output().expect("node runs")),
    )
    .await
    .expect("the stdio client finished within 60 s")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdio client failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("bad report {stdout}: {e}"))
}

fn assert_worked(report: &Value) {
    assert_eq!(
        report["tools"],
        json!(["echo", "add", "slow_stream"]),
        "{report}"
    );
    assert_eq!(
        report["echo"]["content"][0]["text"], "hello over stdio",
        "{report}"
    );
    assert_eq!(
        report["serverInfo"]["name"], "test-upstream",
        "initialize reached the upstream: {report}"
    );
}

fn bridge_keys(b: &TestBroker, server: &str) -> Vec<String> {
    b.broker
        .issuer()
        .list_api_keys()
        .into_iter()
        .filter(|k| k.name == key_name(server) && k.server.as_deref() == Some(server))
        .map(|k| k.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OS keychain (Secret Service); run by scripts/test.sh"]
async fn a_typescript_stdio_client_reaches_an_oauth_upstream_through_the_bridge_with_a_kept_key() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    // A name unique to this run, so keychain entries of other runs never interfere.
    let server = format!("demo{}", std::process::id());
    let b = TestBroker::start(json!({"mcp_servers": {server.clone(): {"url": up.mcp_url}}})).await;
    let config = b.broker.server(&server).unwrap();
    let attempt = b
        .broker
        .upstream()
        .sign_in(&config, &b.browser.opener())
        .await
        .unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(30), attempt.done)
            .await
            .unwrap()
            .unwrap(),
        Ok(())
    );
    let keychain = KeyringStore;
    let entry = keychain_entry(&server);
    keychain.delete(&entry).unwrap();

    // First run: the bridge creates a key scoped to the server and keeps it in the keychain.
    assert_worked(&stdio_client(bridge_args(&b, &server)).await);
    let first = bridge_keys(&b, &server);
    assert_eq!(first.len(), 1, "one key for the bridge");
    let kept = keychain
        .get(&entry)
        .unwrap()
        .expect("the key is in the keychain");

    // Second run: the kept key is reused; no new key appears.
    assert_worked(&stdio_client(bridge_args(&b, &server)).await);
    assert_eq!(bridge_keys(&b, &server), first, "the kept key was reused");

    // A key the broker no longer knows is replaced by a new one.
    b.broker.issuer().revoke_api_key(&first[0]).unwrap();
    assert_worked(&stdio_client(bridge_args(&b, &server)).await);
    let second = bridge_keys(&b, &server);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second, first, "a new key replaced the revoked one");
    let replaced = keychain
        .get(&entry)
        .unwrap()
        .expect("still in the keychain");
    assert!(replaced != kept, "the keychain holds the new key");
    assert!(replaced != Secret::new(""));

    let calls = up.recorder().to_path("/mcp");
    assert!(
        calls.iter().filter_map(|r| r.authorization()).all(|a| up
            .oauth()
            .validate(a.trim_start_matches("Bearer "))
            .is_some()),
        "only upstream tokens reach the upstream, never the bridge's key"
    );
    keychain.delete(&entry).unwrap();
}

#[tokio::test]
async fn connect_with_no_broker_running_exits_1_and_says_to_start_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        json!({"mcp_servers": {"demo": {"url": "https://mcp.example.com/mcp"}}}).to_string(),
    )
    .unwrap();
    let data = dir.path().join("data");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["connect", "demo", "--port", &port.to_string()])
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("start the broker first (`mcp-auth-broker serve` or the app)"),
        "{}",
        text(&out)
    );
    assert!(out.stdout.is_empty(), "nothing but MCP on stdout");
}

#[tokio::test]
async fn connect_to_an_unknown_server_exits_2_and_names_it() {
    let b =
        TestBroker::start(json!({"mcp_servers": {"demo": {"url": "https://mcp.example.com/mcp"}}}))
            .await;
    let args = bridge_args(&b, "nope");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no server named \"nope\""),
        "{}",
        text(&out)
    );
}

/// Lines the bridge writes on stdout, read on a thread of their own.
fn stdout_lines(stdout: std::process::ChildStdout) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let v = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            if tx.send(v).is_err() {
                return;
            }
        }
    });
    rx
}

async fn next_line(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the bridge wrote a line within 30 s")
        .expect("the bridge's stdout is open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OS keychain (Secret Service); run by scripts/test.sh"]
async fn the_bridge_forwards_server_notifications_from_the_get_stream_and_closes_the_session_on_eof(
) {
    use std::io::Write;
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let server = format!("open{}", std::process::id());
    let b = TestBroker::start(json!({"mcp_servers": {server.clone(): {"url": up.mcp_url}}})).await;
    let mut child = Command::new(BIN)
        .args(bridge_args(&b, &server))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = stdout_lines(child.stdout.take().unwrap());
    let send = |stdin: &mut std::process::ChildStdin, v: Value| {
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    };

    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "pipe", "version": "1"}}}),
    );
    let init = next_line(&mut lines).await;
    assert_eq!(init["id"], 1, "{init}");
    let version = init["result"]["protocolVersion"]
        .as_str()
        .unwrap()
        .to_string();
    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );

    // The upstream counts a GET stream once it is subscribed to its changes; no event says so.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while count(&up.state.counters.get_streams) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bridge opened the GET stream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await; // polling interval, not synchronisation
    }
    up.notify_tools_changed();
    let note = next_line(&mut lines).await;
    assert_eq!(note["method"], "notifications/tools/list_changed", "{note}");

    send(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    );
    let list = next_line(&mut lines).await;
    assert_eq!(list["id"], 2, "{list}");
    assert_eq!(
        count(&up.state.counters.notifications),
        1,
        "the client's notification went upstream before tools/list"
    );

    drop(stdin);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let calls = up.recorder().to_path("/mcp");
    assert!(
        calls.iter().any(|r| r.method == "DELETE"),
        "EOF closed the session upstream: {calls:?}"
    );
    let list_call = calls
        .iter()
        .rfind(|r| r.method == "POST")
        .expect("tools/list reached the upstream");
    assert_eq!(
        list_call.header("mcp-protocol-version"),
        Some(version.as_str())
    );
    KeyringStore.delete(&keychain_entry(&server)).unwrap();
}
