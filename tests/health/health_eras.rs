//! Health in both MCP eras, against real upstreams on 127.0.0.1: a 2026-07-28-only server reads
//! healthy (probed with `server/discover`, never `initialize`), a 2025 server is probed with
//! `initialize` after the era detection, and `/api/status` and `status` show each server's era
//! and version. Synchronised on the status channel.

use crate::support;

use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use mcp_auth_broker::health::HealthState;
use mcp_auth_broker::protocol::Era;
use mcp_auth_broker::secret::Secret;
use mcp_auth_broker::vault::{MemoryStore, TokenStore};
use serde_json::{json, Value};
use support::health::{wait_settled, wait_status};
use support::*;

async fn monitored(config: Value, store: Arc<MemoryStore>) -> TestBroker {
    TestBroker::start_with(
        config,
        BrokerOptions {
            background: true,
            store,
        },
    )
    .await
}

fn modern() -> UpstreamOptions {
    UpstreamOptions::default().with_era(UpstreamEra::Modern)
}

/// The era, version and tool count of a healthy state (panics otherwise).
fn speaking(state: &HealthState) -> (Era, String, usize) {
    match state {
        HealthState::Healthy {
            era,
            protocol_version,
            tools,
            ..
        } => (*era, protocol_version.clone(), *tools),
        other => panic!("expected healthy, got {other:?}"),
    }
}

fn methods(up: &TestUpstream) -> Vec<String> {
    (up.state.messages.lock().unwrap().iter())
        .filter_map(|m| m["method"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_modern_only_server_is_healthy_with_era_modern_and_its_version() {
    let up = TestUpstream::start(modern()).await;
    let config = json!({"mcp_servers": {"new": {"url": up.mcp_url}}});
    let broker = monitored(config, Arc::default()).await;
    let s = wait_settled(&mut broker.broker.status(), "new").await;
    let (era, version, tools) = speaking(&s.state);
    assert_eq!((era, version.as_str()), (Era::Modern, "2026-07-28"));
    assert_eq!(tools, support::modern::default_tools().len());
    assert_eq!(
        s.state.protocol().as_deref(),
        Some("MCP 2026-07-28 (modern)")
    );
    let sent = methods(&up);
    assert!(sent.contains(&"server/discover".to_string()), "{sent:?}");
    assert!(sent.contains(&"tools/list".to_string()), "{sent:?}");
    assert!(
        !sent.iter().any(|m| m == "initialize"),
        "a modern server is never sent initialize: {sent:?}"
    );
    assert_eq!(
        count(&up.counters().header_mismatch),
        0,
        "every request had its headers"
    );
    assert_eq!(
        up.recorder().count("DELETE", "/mcp"),
        0,
        "no session to end"
    );
}

#[tokio::test]
async fn a_legacy_server_reports_era_legacy_and_its_negotiated_version() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let config = json!({"mcp_servers": {"old": {"url": up.mcp_url}}});
    let broker = monitored(config, Arc::default()).await;
    let s = wait_settled(&mut broker.broker.status(), "old").await;
    let (era, version, tools) = speaking(&s.state);
    assert_eq!(
        (era, version.as_str(), tools),
        (Era::Legacy, "2025-11-25", 3)
    );
    assert_eq!(s.state.protocol().as_deref(), Some("MCP 2025-11-25"));
    let sent = methods(&up);
    let discover = sent.iter().position(|m| m == "server/discover");
    let initialize = sent.iter().rposition(|m| m == "initialize");
    assert!(
        discover.is_some() && initialize > discover,
        "the modern request first, initialize after it: {sent:?}"
    );
}

#[tokio::test]
async fn a_dual_era_server_is_probed_in_the_modern_era() {
    let up = TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Dual)).await;
    let config = json!({"mcp_servers": {"both": {"url": up.mcp_url}}});
    let broker = monitored(config, Arc::default()).await;
    let s = wait_settled(&mut broker.broker.status(), "both").await;
    assert_eq!(speaking(&s.state).0, Era::Modern);
    assert_eq!(count(&up.counters().initialize), 0, "{:?}", methods(&up));
}

#[tokio::test]
async fn the_official_sdk_v2_server_reads_healthy_and_modern_both_modern_only_and_dual() {
    let only = support::jsserver::JsServer::modern_only().await;
    let dual = support::jsserver::JsServer::dual().await;
    let config = json!({"mcp_servers": {"only": {"url": only.url}, "dual": {"url": dual.url}}});
    let broker = monitored(config, Arc::default()).await;
    let mut rx = broker.broker.status();
    for name in ["only", "dual"] {
        let s = wait_settled(&mut rx, name).await;
        let (era, version, tools) = speaking(&s.state);
        assert_eq!(
            (era, version.as_str(), tools),
            (Era::Modern, "2026-07-28", 3),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_modern_server_behind_oauth_is_healthy_with_a_machine_token_and_refuses_a_wrong_one() {
    let up = TestUpstream::start(UpstreamOptions {
        auth: Requires::OAuth,
        ..modern()
    })
    .await;
    let store = Arc::new(MemoryStore::default());
    store
        .set("config/robot/client_secret", &Secret::new("m2m-secret"))
        .unwrap();
    store
        .set("config/wrong/auth_value", &Secret::new("not-a-token-1234"))
        .unwrap();
    let config = json!({"mcp_servers": {
        "robot": {"url": up.mcp_url, "auth_type": "oauth2", "oauth_flow": "client_credentials",
            "client_id": "m2m-client", "client_secret": "keychain:config/robot/client_secret",
            "token_url": up.auth_server.token_url()},
        "wrong": {"url": up.mcp_url, "auth_type": "bearer_token",
            "auth_value": "keychain:config/wrong/auth_value"}}});
    let broker = monitored(config, store).await;
    let mut rx = broker.broker.status();
    let robot = wait_settled(&mut rx, "robot").await;
    assert_eq!(speaking(&robot.state).0, Era::Modern);
    let wrong = wait_settled(&mut rx, "wrong").await;
    let HealthState::AuthRejected { detail } = &wrong.state else {
        panic!("expected auth rejected, got {:?}", wrong.state)
    };
    assert!(detail.contains("401"), "{detail}");
    assert!(!detail.contains("not-a-token-1234"), "{detail}");
}

#[tokio::test]
async fn a_modern_server_asking_for_sign_in_is_signed_in_through_discovery_and_reads_healthy() {
    let up = TestUpstream::start(UpstreamOptions {
        auth: Requires::OAuth,
        ..modern()
    })
    .await;
    let config = json!({"mcp_servers": {"gh": {"url": up.mcp_url, "auth_type": "oauth2"}}});
    let broker = monitored(config, Arc::default()).await;
    let mut rx = broker.broker.status();
    let s = wait_settled(&mut rx, "gh").await;
    assert!(
        matches!(s.state, HealthState::NeedsSignIn { .. }),
        "{:?}",
        s.state
    );
    // Discovery's anonymous server/discover got the 401 that leads to the PRM and the AS.
    broker.sign_in("gh").await;
    let s = wait_status(&mut rx, "gh", |s| {
        matches!(s.state, HealthState::Healthy { .. })
    })
    .await;
    assert_eq!(speaking(&s.state).0, Era::Modern);
    assert_eq!(count(&up.oauth().counters.token), 1, "one code exchange");
    assert!(!methods(&up).iter().any(|m| m == "initialize"));
}

/// Runs `mcp-auth-broker ARGS` against the running test broker, off the runtime.
async fn cli(b: &TestBroker, args: &[&str]) -> Output {
    let (cfg, data, port) = (b.config_path.clone(), b.dir.path().join("data"), b.port);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_mcp-auth-broker"))
            .args(&args)
            .arg("--config")
            .arg(cfg)
            .arg("--data-dir")
            .arg(data)
            .arg("--port")
            .arg(port.to_string())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn api_status_and_the_status_command_show_each_servers_era_and_version() {
    let new = TestUpstream::start(modern()).await;
    let old = TestUpstream::start(UpstreamOptions::default()).await;
    let config = json!({"mcp_servers": {"new": {"url": new.mcp_url}, "old": {"url": old.mcp_url}}});
    let broker = monitored(config, Arc::default()).await;
    let mut rx = broker.broker.status();
    wait_settled(&mut rx, "new").await;
    wait_settled(&mut rx, "old").await;

    let api: Value = reqwest::get(format!("{}/api/status", broker.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let server = |name: &str| api["servers"][name].clone();
    assert_eq!(server("new")["state"]["era"], "modern");
    assert_eq!(server("new")["state"]["protocol_version"], "2026-07-28");
    assert_eq!(server("new")["protocol"], "MCP 2026-07-28 (modern)");
    assert_eq!(server("old")["state"]["era"], "legacy");
    assert_eq!(server("old")["protocol"], "MCP 2025-11-25");

    let out = cli(&broker, &["status"]).await;
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{table}");
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}: {table}"))
            .to_string()
    };
    assert!(row("new").ends_with("MCP 2026-07-28 (modern)"), "{table}");
    assert!(row("old").ends_with("MCP 2025-11-25"), "{table}");

    let out = cli(&broker, &["status", "new"]).await;
    let details = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        details.contains("\nprotocol: MCP 2026-07-28 (modern)\n"),
        "{details}"
    );
    let out = cli(&broker, &["status", "old", "--json"]).await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["old"]["state"]["era"], "legacy", "{v}");
}
