//! The official TypeScript SDK v2 client (2.4.0), trying 2026-07-28 first as its hosts do,
//! through the per-server proxy `/{server}/mcp`: in front of a modern-only test upstream, a
//! modern-only server built on the SDK v2 itself, and a 2025-only upstream (where the client's
//! era detection falls back to `initialize` through the broker). Each run: discovery or
//! initialize, tools/list, tools/call, one elicitation round trip, and (modern test upstream) one
//! `list_changed` delivered on the client's own `subscriptions/listen`.

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

/// `tests/js/proxy_modern_client.mjs` running against one `/{server}/mcp`.
struct Sdk {
    child: Child,
    stdin: ChildStdin,
    out: Lines<BufReader<ChildStdout>>,
}

impl Sdk {
    fn start(url: &str, key: &str, mode: &str) -> Sdk {
        let mut child = tokio::process::Command::from(node::node_command())
            .args(["proxy_modern_client.mjs", url, key, mode])
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

    /// The next phase report (panics with the client's stderr when it stopped).
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

    /// Asks the client to wait until its tool list includes `tool`; returns that list.
    async fn wait_for_tool(&mut self, tool: &str) -> Value {
        self.stdin
            .write_all(format!("{tool}\n").as_bytes())
            .await
            .unwrap();
        let changed = self.next().await;
        assert_eq!(changed["phase"], "changed", "{changed}");
        changed["tools"].clone()
    }
}

async fn ready(b: &TestBroker, server: &str) -> (Sdk, Value) {
    let key = api_key(b).await;
    let mut sdk = Sdk::start(&b.client_url(server), &key, "auto");
    let ready = sdk.next().await;
    assert_eq!(ready["phase"], "ready", "{ready}");
    assert_eq!(ready["calls"]["echo"], "hi", "{ready}");
    assert_eq!(
        ready["calls"]["ask_user"], "accept: yes",
        "one elicitation round trip: {ready}"
    );
    assert_eq!(ready["asked"], json!(["Go on?"]), "{ready}");
    (sdk, ready)
}

fn with_fresh_tool() -> Vec<Value> {
    let mut tools = modern::default_tools();
    tools.push(json!({"name": "fresh", "inputSchema": {"type": "object"}}));
    tools
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v2_sdk_client_uses_a_modern_only_upstream_through_the_proxy_without_a_session() {
    let up = TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await;
    let b = TestBroker::start(config(json!({"m": {"url": up.mcp_url}}))).await;
    let (mut sdk, ready) = ready(&b, "m").await;
    assert_eq!(
        (ready["era"].as_str(), ready["version"].as_str()),
        (Some("modern"), Some("2026-07-28")),
        "{ready}"
    );
    assert!(ready["sessionId"].is_null(), "{ready}");
    assert_eq!(
        ready["calls"]["lookup"], "k@Zürich",
        "the SDK's Mcp-Param-Region (Base64) reached the upstream intact: {ready}"
    );
    assert_eq!(count(&up.counters().header_mismatch), 0);
    assert_eq!(
        count(&up.counters().input_required),
        1,
        "MRTR, not a session"
    );
    assert_eq!(count(&up.counters().initialize), 0);

    tokio::time::timeout(WAIT, up.wait_listening(1))
        .await
        .expect("the client's subscriptions/listen reaches the upstream through the proxy");
    up.set_tools(with_fresh_tool());
    up.notify_tools_changed();
    let tools = sdk.wait_for_tool("fresh").await;
    assert!(tools.as_array().unwrap().contains(&json!("fresh")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v2_sdk_client_uses_a_modern_only_sdk_server_through_the_proxy() {
    let server = JsServer::modern_only().await;
    let b = TestBroker::start(config(json!({"sdk": {"url": server.url}}))).await;
    let (_sdk, ready) = ready(&b, "sdk").await;
    assert_eq!(ready["era"], "modern", "{ready}");
    assert!(ready["sessionId"].is_null(), "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v2_sdk_client_gets_2026_07_28_translated_in_front_of_a_legacy_upstream_through_the_proxy(
) {
    let mut tools = support::mcp::default_tools();
    tools.push(modern::ask_user_tool());
    let up = TestUpstream::start(UpstreamOptions {
        tools,
        ..Default::default()
    })
    .await;
    let b = TestBroker::start(config(json!({"old": {"url": up.mcp_url}}))).await;
    let (_sdk, ready) = ready(&b, "old").await;
    // Its server/discover is refused the legacy way, and the server speaks only 2025: the
    // broker translates (the aggregate scoped to "old"), so the client stays in 2026-07-28.
    assert_eq!(
        (ready["era"].as_str(), ready["version"].as_str()),
        (Some("modern"), Some("2026-07-28")),
        "{ready}"
    );
    assert!(ready["sessionId"].is_null(), "{ready}");
    assert_eq!(count(&up.counters().asked), 1, "an elicitation request");
    assert_eq!(
        count(&up.counters().initialize),
        2,
        "the broker's links: one to learn the era, one with the client's capabilities"
    );
}
