//! Tool allow/deny lists (`allowed_tools`, `disallowed_tools`) on `/{server}/mcp` over real
//! sockets: hidden tools are absent from `tools/list` answers (JSON, SSE, legacy HTTP+SSE) and
//! calls to them are refused without reaching the upstream; servers without lists are untouched.

use crate::gateway_common;
use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use gateway_common::*;
use mcp_auth_broker::gateway::toolfilter::MAX_LIST_ANSWER;
use serde_json::{json, Value};
use support::*;

fn list(id: i64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"})
}

fn call(id: i64, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {"text": "hi", "a": 1, "b": 2}}})
}

/// The tool names in a `tools/list` response.
fn names(answer: &Value) -> Vec<String> {
    answer["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {answer}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// The JSON-RPC message in the last `data:` line of an SSE body that carries a `result`.
fn sse_result(body: &str) -> Value {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|m| m.get("result").is_some())
        .unwrap_or_else(|| panic!("no result event in {body}"))
}

/// A broker with one server `demo` on a fixture upstream (`ResponseMode`), with `lists` merged
/// into its config; a session opened with an API key.
async fn filtered(mode: ResponseMode, lists: Value) -> (TestUpstream, TestBroker, String, String) {
    let up = TestUpstream::start(UpstreamOptions::default().with_response(mode)).await;
    let mut server = json!({"url": up.mcp_url});
    server
        .as_object_mut()
        .unwrap()
        .extend(lists.as_object().unwrap().clone());
    let b = TestBroker::start(config(json!({ "demo": server }))).await;
    let key = api_key(&b).await;
    let sid = open_session(&b.client_url("demo"), &key).await;
    (up, b, key, sid)
}

async fn list_names(b: &TestBroker, key: &str, sid: &str, mode: ResponseMode) -> Vec<String> {
    let r = post(&b.client_url("demo"), key, Some(sid), &list(2)).await;
    assert_eq!(r.status(), 200);
    let kind = r.headers()["content-type"].to_str().unwrap().to_string();
    let answer = match mode {
        ResponseMode::Json => {
            assert!(kind.starts_with("application/json"), "{kind}");
            r.json::<Value>().await.unwrap()
        }
        ResponseMode::Sse | ResponseMode::SsePrimed => {
            assert!(kind.starts_with("text/event-stream"), "{kind}");
            sse_result(&r.text().await.unwrap())
        }
    };
    assert_eq!(answer["id"], 2);
    names(&answer)
}

#[tokio::test]
async fn an_allow_list_leaves_only_its_tools_in_json_tools_list_answers() {
    let lists = json!({"allowed_tools": ["echo", "add"]});
    let (up, b, key, sid) = filtered(ResponseMode::Json, lists).await;
    assert_eq!(
        list_names(&b, &key, &sid, ResponseMode::Json).await,
        ["echo", "add"]
    );
    assert_eq!(
        count(&up.counters().tools_list),
        1,
        "the list was asked upstream"
    );
}

#[tokio::test]
async fn a_deny_list_hides_its_tools_from_sse_tools_list_answers() {
    let lists = json!({"disallowed_tools": ["add"]});
    let (_up, b, key, sid) = filtered(ResponseMode::Sse, lists).await;
    assert_eq!(
        list_names(&b, &key, &sid, ResponseMode::Sse).await,
        ["echo", "slow_stream"]
    );
}

#[tokio::test]
async fn deny_wins_when_a_tool_is_on_both_lists() {
    let lists = json!({"allowed_tools": ["echo", "add"], "disallowed_tools": ["add"]});
    let (up, b, key, sid) = filtered(ResponseMode::Json, lists).await;
    assert_eq!(
        list_names(&b, &key, &sid, ResponseMode::Json).await,
        ["echo"]
    );
    let refused: Value = post(&b.client_url("demo"), &key, Some(&sid), &call(3, "add"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert_eq!(count(&up.counters().tools_call), 0);
}

#[tokio::test]
async fn a_call_to_a_hidden_tool_gets_a_clear_error_and_never_reaches_the_upstream() {
    let lists = json!({"disallowed_tools": ["add"]});
    let (up, b, key, sid) = filtered(ResponseMode::Sse, lists).await;
    let r = post(&b.client_url("demo"), &key, Some(&sid), &call(9, "add")).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["id"], 9);
    assert_eq!(answer["error"]["code"], -32602);
    let message = answer["error"]["message"].as_str().unwrap();
    for word in [
        "\"add\"",
        "\"demo\"",
        "allowed_tools/disallowed_tools",
        "admin",
        "config",
    ] {
        assert!(message.contains(word), "{word} missing from: {message}");
    }
    assert_eq!(
        count(&up.counters().tools_call),
        0,
        "no tools/call went upstream"
    );
    let forwarded = up.recorder().to_path("/mcp").len();
    assert_eq!(forwarded, 2, "initialize and notifications/initialized");
}

#[tokio::test]
async fn a_call_to_a_permitted_tool_on_a_filtered_server_still_works() {
    let lists = json!({"allowed_tools": ["echo"]});
    let (up, b, key, sid) = filtered(ResponseMode::Json, lists).await;
    let answer: Value = post(&b.client_url("demo"), &key, Some(&sid), &call(4, "echo"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["result"]["content"][0]["text"], "hi", "{answer}");
    assert_eq!(count(&up.counters().tools_call), 1);
}

#[tokio::test]
async fn a_batch_with_a_hidden_call_is_refused_whole_without_forwarding_anything() {
    let lists = json!({"disallowed_tools": ["add"]});
    let (up, b, key, sid) = filtered(ResponseMode::Json, lists).await;
    let before = up.recorder().to_path("/mcp").len();
    let batch =
        json!([call(1, "echo"), call(2, "add"), {"jsonrpc": "2.0", "method": "notifications/x"}]);
    let answers: Value = post(&b.client_url("demo"), &key, Some(&sid), &batch)
        .await
        .json()
        .await
        .unwrap();
    let answers = answers.as_array().expect("a batch gets a batch");
    assert_eq!(
        answers.len(),
        2,
        "one error per request, none for the notification"
    );
    assert!(answers[0]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not sent"));
    assert!(answers[1]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("\"add\""));
    assert_eq!(up.recorder().to_path("/mcp").len(), before);
}

#[tokio::test]
async fn other_requests_to_a_filtered_server_still_stream_event_by_event() {
    let lists = json!({"disallowed_tools": ["add"]});
    let (up, b, key, sid) = filtered(ResponseMode::Sse, lists).await;
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "slow_stream", "arguments": {"steps": 2}, "_meta": {"progressToken": "p"}}});
    let mut r = post(&b.client_url("demo"), &key, Some(&sid), &body).await;
    let mut seen = String::new();
    up.release_event();
    while !seen.contains("\"progress\":1") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), r.chunk())
            .await
            .expect("the first event crosses the broker before the upstream finishes")
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!seen.contains("streamed"));
    up.release_event();
    seen.push_str(&r.text().await.unwrap());
    assert!(seen.contains("streamed 2"), "{seen}");
}

/// SSE `tools/list` answer with a comment, a `retry`, event ids, a progress notification and a
/// custom event before the result (which lists `echo` and `delete_repo`).
const SSE_LIST: &str = ": warming up\nretry: 2000\nid: ev-1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"p\",\"progress\":1}}\n\nevent: custom\ndata: keep me\n\nid: ev-2\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"tools\":[{\"name\":\"echo\",\"inputSchema\":{\"type\":\"object\"}},{\"name\":\"delete_repo\",\"inputSchema\":{\"type\":\"object\"}}]}}\n\n";
/// The same list as JSON, spaced oddly so a re-serialisation would show.
const JSON_LIST: &str = "{ \"jsonrpc\": \"2.0\",  \"id\": 5, \"result\": { \"tools\": [ {\"name\": \"echo\", \"inputSchema\": {\"type\": \"object\"}}, {\"name\": \"delete_repo\", \"inputSchema\": {\"type\": \"object\"}} ] } }\n";

/// An upstream answering every POST with fixed bytes: `/sse/mcp` [`SSE_LIST`], `/json/mcp`
/// [`JSON_LIST`], `/big/mcp` a JSON list larger than the broker's cap. Counts POSTs.
async fn fixed_upstream() -> (String, Arc<AtomicUsize>) {
    let posts = Arc::new(AtomicUsize::new(0));
    let answer = |kind: &'static str, body: String, posts: Arc<AtomicUsize>| {
        axum::routing::post(move || async move {
            posts.fetch_add(1, Ordering::SeqCst);
            ([("content-type", kind)], body).into_response()
        })
    };
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{{\"tools\":[{{\"name\":\"echo\",\"description\":\"{}\"}}]}}}}",
        "x".repeat(MAX_LIST_ANSWER)
    );
    let app = axum::Router::new()
        .route(
            "/sse/mcp",
            answer("text/event-stream", SSE_LIST.into(), posts.clone()),
        )
        .route(
            "/json/mcp",
            answer("application/json", JSON_LIST.into(), posts.clone()),
        )
        .route("/big/mcp", answer("application/json", big, posts.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, posts)
}

async fn fixed_broker() -> (TestBroker, String, Arc<AtomicUsize>) {
    let (base, posts) = fixed_upstream().await;
    let deny = json!(["delete_repo"]);
    let b = TestBroker::start(config(json!({
        "sse": {"url": format!("{base}/sse/mcp"), "disallowed_tools": deny},
        "json": {"url": format!("{base}/json/mcp"), "disallowed_tools": deny},
        "big": {"url": format!("{base}/big/mcp"), "disallowed_tools": deny},
        "raw-sse": {"url": format!("{base}/sse/mcp")},
        "raw-json": {"url": format!("{base}/json/mcp")},
    })))
    .await;
    let key = api_key(&b).await;
    (b, key, posts)
}

#[tokio::test]
async fn a_filtered_sse_answer_keeps_its_other_events_ids_and_retry_in_order() {
    let (b, key, _) = fixed_broker().await;
    let r = post(&b.client_url("sse"), &key, None, &list(5)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let body = r.text().await.unwrap();
    assert!(!body.contains("delete_repo"), "{body}");
    assert_eq!(names(&sse_result(&body)), ["echo"]);
    let at = |s: &str| {
        body.find(s)
            .unwrap_or_else(|| panic!("{s} missing from {body}"))
    };
    assert!(body.contains("retry: 2000"));
    assert!(at("id: ev-1") < at("\"progress\":1"));
    assert!(at("\"progress\":1") < at("event: custom"));
    assert!(at("data: keep me") < at("id: ev-2"));
    assert!(at("id: ev-2") < at("\"tools\""));
}

#[tokio::test]
async fn a_filtered_json_answer_lists_only_permitted_tools() {
    let (b, key, _) = fixed_broker().await;
    let r = post(&b.client_url("json"), &key, None, &list(5)).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(names(&answer), ["echo"]);
}

#[tokio::test]
async fn an_unfiltered_servers_answers_are_byte_identical_to_the_upstreams() {
    let (b, key, posts) = fixed_broker().await;
    for (server, expected) in [("raw-sse", SSE_LIST), ("raw-json", JSON_LIST)] {
        let r = post(&b.client_url(server), &key, None, &list(5)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), expected, "{server}");
    }
    assert_eq!(posts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_tools_list_answer_over_the_cap_is_a_json_rpc_error_not_a_500() {
    let (b, key, _) = fixed_broker().await;
    let r = post(&b.client_url("big"), &key, None, &list(5)).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["id"], 5);
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"big\"")
            && message.contains(&format!("larger than {MAX_LIST_ANSWER} bytes")),
        "{message}"
    );
}

#[tokio::test]
async fn a_legacy_sse_upstream_hides_filtered_tools_and_refuses_their_calls() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(config(json!({"old": {
        "url": up.sse_url, "transport": "sse", "allowed_tools": ["echo", "add"], "disallowed_tools": ["add"],
    }})))
    .await;
    let key = api_key(&b).await;
    let url = b.client_url("old");
    let init = post(&url, &key, None, &initialize()).await;
    assert_eq!(init.status(), 200);
    let sid = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let tools: Value = post(&url, &key, Some(&sid), &list(2))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&tools), ["echo"]);
    let refused: Value = post(&url, &key, Some(&sid), &call(3, "add"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refused["id"], 3);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"add\""),
        "{refused}"
    );
    assert_eq!(
        count(&up.counters().tools_call),
        0,
        "the hidden call never went upstream"
    );
    let echoed: Value = post(&url, &key, Some(&sid), &call(4, "echo"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(echoed["result"]["content"][0]["text"], "hi", "{echoed}");
    assert_eq!(count(&up.counters().tools_call), 1);
}

/// The official TypeScript SDK (`tests/js/sdk_client.mjs`: OAuth through the broker, then
/// `tools/list` and a call of `echo`) reads the re-written SSE answer. Needs Node >= 22.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_lists_only_permitted_tools_and_calls_one() {
    let up = TestUpstream::start(UpstreamOptions::default().with_response(ResponseMode::Sse)).await;
    let b = TestBroker::start(config(
        json!({"demo": {"url": up.mcp_url, "disallowed_tools": ["add"]}}),
    ))
    .await;
    let report = support::node::sdk_client(&b.client_url("demo")).await;
    assert_eq!(report["tools"], json!(["echo", "slow_stream"]), "{report}");
    assert_eq!(
        report["echo"]["content"][0]["text"],
        "hello through the broker"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_list_replayed_on_the_get_stream_loses_the_hidden_tools_and_other_events_pass() {
    let (up, b, key, sid) =
        filtered(ResponseMode::Json, json!({"disallowed_tools": ["add"]})).await;
    let mut stream = Messages::new(get_stream(&b.client_url("demo"), &key, &sid).await);
    assert_eq!(count(&up.counters().get_streams), 1);
    up.send_on_streams(
        json!({"jsonrpc": "2.0", "id": 9, "result": {"tools": mcp::default_tools()}}),
    );
    up.notify_tools_changed();
    let replayed = stream.next().await;
    assert_eq!(replayed["id"], 9);
    assert_eq!(names(&replayed), ["echo", "slow_stream"], "add is hidden");
    assert_eq!(
        stream.next().await["method"],
        "notifications/tools/list_changed"
    );
}
