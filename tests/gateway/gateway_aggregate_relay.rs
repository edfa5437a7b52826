//! Requests an upstream sends to its client (sampling, elicitation, roots) reach the client of
//! `/mcp` when it declared the capability, under the broker's own ids, and the client's answers
//! go back to that upstream under the upstream's ids. Real broker, upstream and sockets; one test
//! uses the official TypeScript SDK as the client.

use crate::gateway_common;
use crate::support;

use std::time::Duration;

use gateway_common::*;
use serde_json::{json, Value};
use support::*;

/// The messages the upstream received with this id and no method: answers to its requests.
fn answers_to(up: &TestUpstream, id: &Value) -> Vec<Value> {
    up.state
        .messages
        .lock()
        .unwrap()
        .iter()
        .filter(|m| &m["id"] == id && m.get("method").is_none())
        .cloned()
        .collect()
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let wait = async {
        while !done() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("{what} within 20 s"));
}

/// The next message on `stream` with this method (list changes and notices are skipped).
async fn next_with(stream: &mut Messages, method: &str) -> Value {
    loop {
        let m = stream.next().await;
        if m["method"] == method {
            return m;
        }
    }
}

/// A `/mcp` session declaring `capabilities`, its GET stream, and its link to the upstream
/// `a` open and listening to the upstream's GET stream.
async fn listening_session(
    up: &TestUpstream,
    b: &TestBroker,
    key: &str,
    capabilities: Value,
) -> (String, Messages) {
    let endpoint = format!("{}/mcp", b.base_url);
    let sid = open_declaring(&endpoint, key, capabilities).await;
    let stream = Messages::new(get_stream(&endpoint, key, &sid).await);
    aggregate_rpc(b, key, Some(&sid), TOOLS_LIST(2)).await;
    until("the broker listens to the upstream's GET stream", || {
        count(&up.counters().get_streams) > 0
    })
    .await;
    (sid, stream)
}

async fn post_status(b: &TestBroker, key: &str, sid: &str, body: Value) -> u16 {
    post(&format!("{}/mcp", b.base_url), key, Some(sid), &body)
        .await
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstreams_sampling_request_reaches_the_declaring_client_and_its_answer_goes_back() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"a": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let declared = json!({"sampling": {}, "roots": {"listChanged": true}});
    let mut capabilities = declared.clone();
    capabilities["experimental"] = json!({"x": {}});
    let (sid, mut stream) = listening_session(&up, &b, &key, capabilities).await;
    let told: Vec<Value> = (up.state.messages.lock().unwrap().iter())
        .filter(|m| m["method"] == "initialize")
        .map(|m| m["params"]["capabilities"].clone())
        .collect();
    assert!(
        told.contains(&declared),
        "the upstream is told what the client can do: {told:?}"
    );
    assert!(
        told.iter().all(|c| c == &declared || c == &json!({})),
        "and nothing else (health probes declare nothing): {told:?}"
    );

    let params = json!({"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}], "maxTokens": 5});
    up.send_on_streams(
        json!({"jsonrpc": "2.0", "id": 41, "method": "sampling/createMessage", "params": params}),
    );
    let asked = next_with(&mut stream, "sampling/createMessage").await;
    assert_eq!(asked["params"], params, "passed on as it was sent");
    let ours = asked["id"].clone();
    assert!(
        ours.as_str().is_some_and(|id| id.starts_with("a#")),
        "{asked}"
    );
    let sampled =
        json!({"role": "assistant", "model": "m", "content": {"type": "text", "text": "hello"}});
    let answer = json!({"jsonrpc": "2.0", "id": ours, "result": sampled});
    assert_eq!(post_status(&b, &key, &sid, answer.clone()).await, 202);
    let back = answers_to(&up, &json!(41));
    assert_eq!(
        back,
        [json!({"jsonrpc": "2.0", "id": 41, "result": sampled})],
        "delivered before the client's POST was answered"
    );
    assert_eq!(
        post_status(&b, &key, &sid, answer).await,
        202,
        "a second answer is accepted"
    );
    assert_eq!(answers_to(&up, &json!(41)).len(), 1, "and not sent on");

    // The client's roots changed: every upstream of the session hears it.
    let roots_changed = json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"});
    assert_eq!(
        post_status(&b, &key, &sid, roots_changed.clone()).await,
        202
    );
    assert!(
        up.state.messages.lock().unwrap().contains(&roots_changed),
        "forwarded before the client's POST was answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_answers_ping_itself_and_refuses_what_the_client_did_not_declare() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"a": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let (_sid, _stream) = listening_session(&up, &b, &key, json!({"sampling": {}})).await;
    up.send_on_streams(json!({"jsonrpc": "2.0", "id": "p1", "method": "ping"}));
    up.send_on_streams(
        json!({"jsonrpc": "2.0", "id": 42, "method": "elicitation/create",
        "params": {"message": "name?", "requestedSchema": {"type": "object", "properties": {}}}}),
    );
    until("both answers", || {
        !answers_to(&up, &json!("p1")).is_empty() && !answers_to(&up, &json!(42)).is_empty()
    })
    .await;
    assert_eq!(answers_to(&up, &json!("p1"))[0]["result"], json!({}));
    let refused = &answers_to(&up, &json!(42))[0];
    assert_eq!(refused["error"]["code"], -32601, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("connect to /a/mcp"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_cancelling_its_request_is_told_to_the_client_and_a_late_answer_is_dropped() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"a": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let (sid, mut stream) = listening_session(&up, &b, &key, json!({"roots": {}})).await;
    up.send_on_streams(json!({"jsonrpc": "2.0", "id": "r1", "method": "roots/list"}));
    let asked = next_with(&mut stream, "roots/list").await;
    up.send_on_streams(
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": "r1", "reason": "took too long"}}),
    );
    let cancelled = next_with(&mut stream, "notifications/cancelled").await;
    assert_eq!(
        cancelled["params"],
        json!({"requestId": asked["id"], "reason": "took too long"}),
        "re-keyed to the id the client knows"
    );
    let late = json!({"jsonrpc": "2.0", "id": asked["id"], "result": {"roots": []}});
    assert_eq!(post_status(&b, &key, &sid, late).await, 202);
    assert!(
        answers_to(&up, &json!("r1")).is_empty(),
        "a cancelled request gets no answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_answers_sampling_elicitation_and_roots_during_a_tool_call() {
    let mut tools = mcp::default_tools();
    tools.push(streams::ask_client_tool());
    let up = TestUpstream::start(UpstreamOptions {
        tools,
        ..Default::default()
    })
    .await;
    let b = TestBroker::start(json!({"mcp_servers": {"a": {"url": up.mcp_url}}})).await;
    let report = node::run_script(
        "relay_client.mjs",
        &[&format!("{}/mcp", b.base_url), "a__ask_client"],
    )
    .await;
    let text = report["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{report}"));
    let answers: Vec<Value> = serde_json::from_str(text).unwrap();
    assert_eq!(answers.len(), 3, "{report}");
    assert_eq!(
        answers[0]["result"]["content"]["text"], "sampled: hello",
        "{report}"
    );
    assert_eq!(
        answers[1]["result"],
        json!({"action": "accept", "content": {"name": "Ada"}}),
        "{report}"
    );
    assert_eq!(
        answers[2]["result"]["roots"][0]["uri"], "file:///home/ada/project",
        "{report}"
    );
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a["id"], format!("ask-{i}"), "the upstream's own ids: {a}");
    }
    assert_eq!(
        report["asked"][1]["message"], "[a] What is your name?",
        "the person sees which server asks: {report}"
    );
    let told = json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"});
    until("the upstream hears the roots changed", || {
        up.state.messages.lock().unwrap().contains(&told)
    })
    .await;
}
