//! `/{server}/mcp` when the client and the upstream share no era: the official 1.x SDK client
//! (2025 only) in front of a 2026-07-28-only server, and the SDK v2 client pinned to 2026-07-28
//! in front of a 2025-only server. The broker serves such traffic through the aggregate scoped
//! to that one server (names as the server gives them). Each run: initialize or discovery,
//! tools/list, tools/call, one elicitation round trip, one `list_changed` delivered.

use crate::gateway_common;
use crate::support;

use std::process::Stdio;
use std::time::Duration;

use gateway_common::*;
use serde_json::{json, Value};
use support::jsserver::JsServer;
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

const WAIT: Duration = Duration::from_secs(60);

/// One of the SDK client scripts running against one `/{server}/mcp`.
struct Sdk {
    child: Child,
    stdin: ChildStdin,
    out: Lines<BufReader<ChildStdout>>,
}

impl Sdk {
    fn start(args: &[&str]) -> Sdk {
        let mut child = tokio::process::Command::from(node::node_command())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap()).lines();
        Sdk { child, stdin, out }
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.out.next_line())
            .await
            .expect("the SDK client reports within 60 s")
            .unwrap();
        match line {
            Some(l) => serde_json::from_str(&l).unwrap_or_else(|e| panic!("bad report {l}: {e}")),
            None => {
                let mut err = String::new();
                let stderr = self.child.stderr.as_mut().unwrap();
                tokio::io::AsyncReadExt::read_to_string(stderr, &mut err)
                    .await
                    .unwrap();
                panic!("the SDK client stopped early: {err}")
            }
        }
    }

    async fn ready(&mut self) -> Value {
        let ready = self.next().await;
        assert_eq!(ready["phase"], "ready", "{ready}");
        assert_eq!(ready["calls"]["echo"], "hi", "{ready}");
        assert_eq!(
            ready["calls"]["ask_user"], "accept: yes",
            "one elicitation round trip: {ready}"
        );
        assert_eq!(ready["asked"], json!(["Go on?"]), "{ready}");
        assert!(
            ready["tools"].as_array().unwrap().contains(&json!("echo")),
            "the server's own names, not SERVER__NAME: {ready}"
        );
        ready
    }

    async fn wait_for_tool(&mut self, tool: &str) -> Value {
        let line = format!("{tool}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        let changed = self.next().await;
        assert_eq!(changed["phase"], "changed", "{changed}");
        changed["tools"].clone()
    }
}

fn legacy_client(b: &TestBroker, server: &str, key: &str) -> Sdk {
    Sdk::start(&["proxy_legacy_client.mjs", &b.client_url(server), key])
}

fn pinned_client(b: &TestBroker, server: &str, key: &str) -> Sdk {
    Sdk::start(&["proxy_modern_client.mjs", &b.client_url(server), key, "pin"])
}

fn fresh(mut tools: Vec<Value>) -> Vec<Value> {
    tools.push(json!({"name": "fresh", "inputSchema": {"type": "object"}}));
    tools
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_1x_sdk_client_uses_a_modern_only_upstream_through_a_translating_proxy() {
    let up = TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await;
    let b = TestBroker::start(config(json!({"m": {"url": up.mcp_url}}))).await;
    let key = api_key(&b).await;
    let mut sdk = legacy_client(&b, "m", &key);
    let ready = sdk.ready().await;
    let sid = ready["sessionId"].as_str().expect("a broker session");
    assert!(
        sid.starts_with(mcp_auth_broker::aggregate::SCOPED_SESSION),
        "{ready}"
    );
    assert_eq!(count(&up.counters().input_required), 1, "MRTR upstream");

    tokio::time::timeout(WAIT, up.wait_listening(1))
        .await
        .expect("the broker's link listens upstream");
    up.set_tools(fresh(modern::default_tools()));
    up.notify_tools_changed();
    let tools = sdk.wait_for_tool("fresh").await;
    assert!(tools.as_array().unwrap().contains(&json!("fresh")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_1x_sdk_client_uses_a_modern_only_sdk_v2_server_through_a_translating_proxy() {
    let server = JsServer::modern_only().await;
    let b = TestBroker::start(config(json!({"sdk": {"url": server.url}}))).await;
    let key = api_key(&b).await;
    let mut sdk = legacy_client(&b, "sdk", &key);
    let ready = sdk.ready().await;
    assert!(ready["sessionId"].is_string(), "{ready}");
}

/// Waits until the upstream has seen a GET on `/mcp` (the broker's link's event stream).
async fn wait_get_stream(up: &TestUpstream) {
    let recorder = up.recorder();
    while recorder.count("GET", "/mcp") == 0 {
        let seen = recorder.all().len();
        recorder.wait_for(seen + 1).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_modern_sdk_client_uses_a_legacy_only_upstream_through_a_translating_proxy() {
    let mut tools = support::mcp::default_tools();
    tools.push(modern::ask_user_tool());
    let up = TestUpstream::start(UpstreamOptions {
        tools: tools.clone(),
        ..Default::default()
    })
    .await;
    let b = TestBroker::start(config(json!({"old": {"url": up.mcp_url}}))).await;
    let key = api_key(&b).await;
    let mut sdk = pinned_client(&b, "old", &key);
    let ready = sdk.ready().await;
    assert_eq!(
        (ready["era"].as_str(), ready["version"].as_str()),
        (Some("modern"), Some("2026-07-28")),
        "{ready}"
    );
    assert!(ready["sessionId"].is_null(), "{ready}");
    assert_eq!(
        count(&up.counters().asked),
        1,
        "an elicitation request upstream"
    );

    tokio::time::timeout(WAIT, wait_get_stream(&up))
        .await
        .expect("the broker's link opens the upstream's event stream");
    up.set_tools(fresh(tools));
    up.notify_tools_changed();
    let tools = sdk.wait_for_tool("fresh").await;
    assert!(tools.as_array().unwrap().contains(&json!("fresh")));
}
