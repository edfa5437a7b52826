//! A 2025 session's calls on `/mcp` pass through on the upstream link the session already uses
//! (under the link's own id, the plain answer written back under the client's), and a session
//! the upstream forgot is opened again as the link's own route opens it. Real broker, real
//! upstream, real sockets.

use crate::gateway_common;
use crate::support;

use gateway_common::*;
use serde_json::{json, Value};
use support::*;

/// `tools/call` of `name` in session `sid`: the answer, which must carry `id`.
async fn called(b: &TestBroker, key: &str, sid: &str, id: u64, name: &str) -> Value {
    let url = format!("{}/mcp", b.base_url);
    let r = post(&url, key, Some(sid), &tool_call(id, name, json!({}))).await;
    assert_eq!(r.status(), 200);
    let answer = read_answer(r).await;
    assert_eq!(answer["id"], id, "the client's own id comes back: {answer}");
    answer
}

/// The JSON-RPC answer of a response in JSON or as an event stream.
async fn read_answer(r: reqwest::Response) -> Value {
    let text = r.text().await.unwrap();
    let data = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .find(|d| d.contains("\"id\""))
        .unwrap_or(&text);
    serde_json::from_str(data).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessions_calls_go_through_its_link_and_a_forgotten_upstream_session_is_opened_again() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"a": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let sid = aggregate_open(&b, &key).await;
    let url = format!("{}/mcp", b.base_url);
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    assert_eq!(post(&url, &key, Some(&sid), &list).await.status(), 200);
    let opened = count(&up.counters().initialize);

    let mut seen = Vec::new();
    for id in [2, 3] {
        let answer = called(&b, &key, &sid, id, "a__request_id").await;
        let text = answer["result"]["content"][0]["text"].as_str().unwrap();
        seen.push(text.parse::<u64>().unwrap());
    }
    assert!(
        seen.iter().all(|id| *id >= 1 << 32) && seen[0] != seen[1],
        "the upstream sees the link's own ids, never the client's: {seen:?}"
    );
    assert_eq!(
        count(&up.counters().initialize),
        opened,
        "the same upstream session"
    );

    up.forget_sessions();
    let answer = called(&b, &key, &sid, 4, "a__echo").await;
    assert_eq!(answer["result"]["content"][0]["text"], "", "{answer}");
    assert_eq!(
        count(&up.counters().initialize),
        opened + 1,
        "the forgotten session was opened again, once"
    );
    let answer = called(&b, &key, &sid, 5, "a__request_id").await;
    assert!(
        answer["result"]["content"][0]["text"].is_string(),
        "{answer}"
    );
}
