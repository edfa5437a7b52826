//! `connect NAME` with the official TypeScript SDK v2 client (`@modelcontextprotocol/client`,
//! dual-era, modern first) launching the bridge over stdio: against a modern-only upstream it
//! speaks 2026-07-28 end to end (the bridge mirrors `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*`
//! from each request, which a stdio client cannot send), and against a 2025-only upstream the
//! broker translates; the 1.x SDK (2025 only) reaches a modern-only server through the
//! broker's translation. Needs Node >= 22, `tests/js` and the OS keychain (the bridge keeps
//! its API key there).

use crate::support;

use std::path::PathBuf;
use std::time::Duration;

use mcp_auth_broker::cli::connect::keychain_entry;
use mcp_auth_broker::vault::{KeyringStore, TokenStore};
use serde_json::{json, Value};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-auth-broker");

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

/// Runs a Node stdio client script (`script` and its leading arguments, then the bridge binary
/// and `args`) off the runtime and returns its JSON report.
async fn stdio_client(script: &[&str], args: Vec<String>) -> Value {
    let mut cmd = support::node::node_command();
    cmd.args(script).arg(BIN).args(args);
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::task::spawn_blocking(move || cmd.output().expect("node runs")),
    )
    .await
    .expect("the stdio client finished within 90 s")
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

/// The SDK v2 client (modern first), answering `ask_user`'s elicitation.
const V2: &[&str] = &["stdio_client_v2.mjs", "--elicit"];
/// The 1.x SDK client (2025 only).
const V1: &[&str] = &["stdio_client.mjs"];

async fn broker_for(up: &TestUpstream, server: &str) -> TestBroker {
    let b = TestBroker::start(json!({"mcp_servers": {server: {"url": up.mcp_url}}})).await;
    KeyringStore.delete(&keychain_entry(server)).unwrap();
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OS keychain (Secret Service); run by scripts/test.sh"]
async fn a_modern_stdio_client_speaks_2026_07_28_through_the_bridge_to_a_modern_only_server() {
    let up = TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await;
    let server = format!("modern{}", std::process::id());
    let b = broker_for(&up, &server).await;
    let report = stdio_client(V2, bridge_args(&b, &server)).await;
    assert_eq!(report["era"], "modern", "{report}");
    assert_eq!(report["version"], "2026-07-28", "{report}");
    assert_eq!(report["echo"]["content"][0]["text"], "hello over stdio");
    assert_eq!(
        report["lookup"]["content"][0]["text"], "k1@eu-west 1",
        "the bridge mirrored Mcp-Param-Region: {report}"
    );
    assert_eq!(report["elicited"], 1, "{report}");
    assert_eq!(report["asked"]["content"][0]["text"], "accept: yes");
    let calls = up.recorder().to_path("/mcp");
    let call = calls
        .iter()
        .find(|r| r.header("mcp-name") == Some("lookup"))
        .expect("lookup reached the upstream with Mcp-Name");
    assert_eq!(call.header("mcp-method"), Some("tools/call"));
    assert_eq!(call.header("mcp-param-region"), Some("eu-west 1"));
    assert!(
        calls.iter().all(|r| r.header("mcp-session-id").is_none()),
        "no session is invented for modern traffic"
    );
    assert_eq!(count(&up.counters().initialize), 0, "no initialize");
    KeyringStore.delete(&keychain_entry(&server)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OS keychain (Secret Service); run by scripts/test.sh"]
async fn a_modern_stdio_client_is_served_in_2026_07_28_through_the_bridge_to_a_legacy_server() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let server = format!("legacy{}", std::process::id());
    let b = broker_for(&up, &server).await;
    let report = stdio_client(V2, bridge_args(&b, &server)).await;
    // The broker cannot tell a modern-first client from a modern-only one by its first request,
    // so it translates: the client speaks 2026-07-28, the upstream its 2025 session.
    assert_eq!(report["era"], "modern", "{report}");
    assert_eq!(report["version"], "2026-07-28", "{report}");
    assert_eq!(report["echo"]["content"][0]["text"], "hello over stdio");
    assert_eq!(report["elicited"], 1, "{report}");
    assert_eq!(report["asked"]["content"][0]["text"], "accept: yes");
    assert!(
        count(&up.counters().initialize) >= 1,
        "a 2025 session upstream"
    );
    assert!(
        up.recorder()
            .to_path("/mcp")
            .iter()
            .any(|r| r.header("mcp-session-id").is_some()),
        "the calls reached the legacy upstream in a 2025 session"
    );
    KeyringStore.delete(&keychain_entry(&server)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OS keychain (Secret Service); run by scripts/test.sh"]
async fn a_2025_stdio_client_reaches_a_modern_only_server_through_the_bridge_translated() {
    let up = TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await;
    let server = format!("translated{}", std::process::id());
    let b = broker_for(&up, &server).await;
    let report = stdio_client(V1, bridge_args(&b, &server)).await;
    let tools: Vec<&str> = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        tools.contains(&"echo") && tools.contains(&"lookup"),
        "the server's own tool names, unprefixed: {report}"
    );
    assert_eq!(report["echo"]["content"][0]["text"], "hello over stdio");
    assert_eq!(
        count(&up.counters().initialize),
        0,
        "the upstream saw no initialize"
    );
    let calls = up.recorder().to_path("/mcp");
    assert!(
        calls
            .iter()
            .any(|r| r.header("mcp-method") == Some("tools/call")),
        "the call reached the upstream in 2026-07-28"
    );
    KeyringStore.delete(&keychain_entry(&server)).unwrap();
}
