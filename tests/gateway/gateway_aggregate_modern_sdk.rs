//! The official TypeScript SDK v2 client (2.4.0) through `/mcp` in front of a modern-only and a
//! legacy-only upstream (and a modern-only server built on the SDK v2 itself), in both of its
//! eras: modern first (`server/discover`, no session, `input_required`, `subscriptions/listen`)
//! and 2025-11-25 (`initialize`, a session, server→client requests, the GET stream). Each run:
//! discovery, tools/list, tools/call, one elicitation round trip per upstream, and
//! `list_changed` from each upstream era delivered.

use crate::gateway_common;
use crate::support;

use std::process::Stdio;
use std::time::Duration;

use gateway_common::*;
use serde_json::{json, Value};
use support::jsserver::JsServer;
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v2_sdk_client_in_the_modern_era_uses_upstreams_of_both_eras_through_the_aggregate() {
    run("auto", "modern", "2026-07-28").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v2_sdk_client_in_the_2025_era_uses_upstreams_of_both_eras_through_the_aggregate() {
    run("legacy", "legacy", "2025-11-25").await;
}

async fn run(mode: &str, era: &str, version: &str) {
    let new = TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await;
    let old = TestUpstream::start(UpstreamOptions {
        tools: modern::default_tools(),
        ..Default::default()
    })
    .await;
    let sdk = JsServer::modern_only().await;
    let b = TestBroker::start(json!({"mcp_servers": {
        "m": {"url": new.mcp_url}, "old": {"url": old.mcp_url}, "sdk": {"url": sdk.url}}}))
    .await;
    let key = api_key(&b).await;
    let mut child = tokio::process::Command::from(node::node_command())
        .args([
            "aggregate_modern_client.mjs",
            &format!("{}/mcp", b.base_url),
            &key,
            mode,
            "m",
            "old",
            "sdk",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(WAIT, out.next_line())
            .await
            .expect("the SDK client reports within 60 s")
            .unwrap();
        match line {
            Some(l) => serde_json::from_str(&l).unwrap_or_else(|e| panic!("bad report {l}: {e}")),
            None => {
                let mut err = String::new();
                tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut err)
                    .await
                    .unwrap();
                panic!("the SDK client stopped early: {err}")
            }
        }
    };

    let ready = next().await;
    assert_eq!(ready["phase"], "ready", "{ready}");
    assert_eq!(
        (ready["era"].as_str(), ready["version"].as_str()),
        (Some(era), Some(version)),
        "{ready}"
    );
    assert_eq!(
        ready["sessionId"].is_null(),
        era == "modern",
        "a session in the 2025 era only: {ready}"
    );
    let tools: Vec<&str> = ready["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for t in ["m__lookup", "old__ask_user", "sdk__echo", "sdk__ask_user"] {
        assert!(tools.contains(&t), "{t}: {ready}");
    }
    let calls = &ready["calls"];
    for server in ["m", "old", "sdk"] {
        assert_eq!(
            calls[format!("{server}__echo")],
            format!("hi {server}"),
            "{ready}"
        );
        assert_eq!(
            calls[format!("{server}__ask_user")],
            "accept: yes",
            "one elicitation round trip with the {server} upstream: {ready}"
        );
    }
    assert_eq!(
        ready["asked"],
        json!(["[m] Go on, m?", "[old] Go on, old?", "[sdk] Go on, sdk?"]),
        "every question reached the client's handler, naming its server: {ready}"
    );
    assert_eq!(
        count(&new.counters().input_required),
        1,
        "MRTR with the modern upstream"
    );
    assert_eq!(
        count(&old.counters().asked),
        1,
        "a request of the legacy session's"
    );

    // list_changed from each era reaches the client's subscriptions/listen stream.
    tokio::time::timeout(WAIT, new.wait_listening(1))
        .await
        .expect("the broker listens to the modern upstream");
    let mut tools = modern::default_tools();
    tools.push(json!({"name": "fresh", "inputSchema": {"type": "object"}}));
    new.set_tools(tools.clone());
    new.notify_tools_changed();
    stdin.write_all(b"m__fresh\n").await.unwrap();
    let changed = next().await;
    assert_eq!(changed["phase"], "changed", "{changed}");
    let listening = async {
        while count(&old.counters().get_streams) == 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, listening)
        .await
        .expect("the broker follows the legacy upstream's GET stream");
    old.set_tools(tools);
    old.notify_tools_changed();
    stdin.write_all(b"old__fresh\n").await.unwrap();
    let changed = next().await;
    assert!(
        changed["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("old__fresh")),
        "{changed}"
    );
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the SDK client exits");
    assert!(status.unwrap().success());
}
