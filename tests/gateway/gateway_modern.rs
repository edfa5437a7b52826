//! The per-server proxy `/{server}/mcp` in front of a 2026-07-28-only upstream, over real
//! sockets: modern traffic passes untouched (every MCP request header, no session, MRTR rounds,
//! `subscriptions/listen` streamed, GET/DELETE answered by the upstream), tool lists filter
//! modern answers, and the answers the broker writes itself are in the modern era.

use crate::gateway_common;
use crate::support;

use gateway_common::*;
use mcp_auth_broker::protocol::era::{self, Detected};
use mcp_auth_broker::protocol::{codes, headers, SUPPORTED_VERSIONS};
use serde_json::{json, Value};
use support::modern::ASK_KEY;
use support::wire::*;
use support::*;

async fn modern_broker(servers: Value) -> (TestUpstream, TestBroker, String) {
    let up = TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await;
    let mut servers = servers;
    for (_, s) in servers.as_object_mut().unwrap() {
        s["url"] = json!(up.mcp_url);
    }
    let b = TestBroker::start(config(servers)).await;
    let key = api_key(&b).await;
    (up, b, key)
}

/// The last request the upstream's `/mcp` saw.
fn last_seen(up: &TestUpstream) -> support::Recorded {
    up.recorder().to_path("/mcp").pop().expect("a request")
}

#[tokio::test]
async fn modern_request_headers_reach_the_upstream_unchanged_and_no_session_is_minted() {
    let (up, b, key) = modern_broker(json!({"demo": {}})).await;
    let url = b.client_url("demo");
    let list = modern_request(1, "tools/list", json!({}), false);
    let r = modern_post(&url, &list, &[("x-api-key", &key)]).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("mcp-session-id").is_none());
    read_message(r).await;

    let region = "Hello, 世界";
    let call = modern_request(
        2,
        "tools/call",
        json!({"name": "lookup", "arguments": {"region": region, "key": "k"}}),
        false,
    );
    let name = "=?base64?bG9va3Vw?="; // "lookup", sent in its Base64 form
    let param = headers::encode_value(region);
    assert!(param.starts_with("=?base64?"));
    let extra = [
        ("x-api-key", key.as_str()),
        ("mcp-name", name),
        ("mcp-param-region", param.as_ref()),
    ];
    let r = modern_post(&url, &call, &extra).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("mcp-session-id").is_none());
    let answer = read_message(r).await;
    assert_eq!(answer["result"]["content"][0]["text"], "k@Hello, 世界");
    assert_eq!(answer["result"]["resultType"], "complete");

    let seen = last_seen(&up);
    assert_eq!(seen.header("mcp-method"), Some("tools/call"));
    assert_eq!(seen.header("mcp-name"), Some(name));
    assert_eq!(seen.header("mcp-param-region"), Some(param.as_ref()));
    assert_eq!(seen.header("mcp-protocol-version"), Some("2026-07-28"));
    assert_eq!(seen.header("mcp-session-id"), None);
    assert_eq!(
        seen.header("x-api-key"),
        None,
        "the client's key stays here"
    );
    assert_eq!(count(&up.counters().header_mismatch), 0);
}

#[tokio::test]
async fn discovery_lists_and_calls_of_a_modern_upstream_work_through_the_proxy() {
    let (up, b, key) = modern_broker(json!({"demo": {}})).await;
    let url = b.client_url("demo");
    let auth = [("x-api-key", key.as_str())];
    let discover = modern_request(1, "server/discover", json!({}), false);
    let d = read_message(modern_post(&url, &discover, &auth).await).await;
    assert_eq!(d["result"]["supportedVersions"], json!(["2026-07-28"]));
    assert_eq!(d["result"]["capabilities"]["tools"]["listChanged"], true);
    assert_eq!(count(&up.counters().discover), 1);

    for mode in [ResponseMode::Json, ResponseMode::Sse] {
        up.set_response(mode);
        let list = modern_request(2, "tools/list", json!({}), false);
        let l = read_message(modern_post(&url, &list, &auth).await).await;
        assert_eq!(l["result"]["ttlMs"], 60000, "{mode:?}: {l}");
        assert_eq!(l["result"]["cacheScope"], "public", "{mode:?}");
        assert!(tool_names(&l).contains(&"lookup".to_string()), "{mode:?}");
        let echo = modern_request(
            3,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "hi"}}),
            false,
        );
        let c = read_message(modern_post(&url, &echo, &auth).await).await;
        assert_eq!(c["result"]["content"][0]["text"], "hi", "{mode:?}: {c}");
    }
}

#[tokio::test]
async fn an_input_required_round_trip_passes_through_untouched() {
    let (up, b, key) = modern_broker(json!({"demo": {}})).await;
    let url = b.client_url("demo");
    let auth = [("x-api-key", key.as_str())];
    let params = json!({"name": "ask_user", "arguments": {"question": "Deploy?"}});
    let first = modern_request(1, "tools/call", params.clone(), true);
    let r = read_message(modern_post(&url, &first, &auth).await).await;
    let result = &r["result"];
    assert_eq!(result["resultType"], "input_required", "{r}");
    assert_eq!(
        result["inputRequests"][ASK_KEY]["params"]["message"],
        "Deploy?"
    );
    let state = result["requestState"].clone();
    assert!(state.is_string(), "{r}");

    let mut retry_params = params;
    retry_params["inputResponses"] =
        json!({ASK_KEY: {"action": "accept", "content": {"answer": "yes"}}});
    retry_params["requestState"] = state.clone();
    let retry = modern_request(2, "tools/call", retry_params, true);
    let done = read_message(modern_post(&url, &retry, &auth).await).await;
    assert_eq!(
        done["result"]["content"][0]["text"], "accept: yes",
        "{done}"
    );
    let messages = up.state.messages.lock().unwrap().clone();
    let arrived = messages.last().unwrap();
    assert_eq!(arrived["params"]["requestState"], state);
    assert_eq!(
        arrived["params"]["inputResponses"][ASK_KEY]["content"]["answer"],
        "yes"
    );
}

#[tokio::test]
async fn subscriptions_listen_streams_each_event_before_the_stream_ends() {
    let (up, b, key) = modern_broker(json!({"demo": {}})).await;
    let listen = modern_request(
        9,
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true}}),
        false,
    );
    let r = modern_post(&b.client_url("demo"), &listen, &[("x-api-key", &key)]).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(r.headers()["x-accel-buffering"], "no");
    let mut events = stream_messages(r);
    let ack = next_message(&mut events).await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    up.wait_listening(1).await;
    up.notify_tools_changed();
    let note = next_message(&mut events).await;
    assert_eq!(note["method"], "notifications/tools/list_changed");
    assert_eq!(up.listening(), 1, "the stream is still open upstream");
    up.end_listens();
    let end = next_message(&mut events).await;
    assert_eq!(
        (end["id"].clone(), end["result"]["resultType"].clone()),
        (json!(9), json!("complete"))
    );
    let closed = tokio::time::timeout(WAIT, events.recv()).await.unwrap();
    assert!(closed.is_none(), "the stream ends after its result");
}

#[tokio::test]
async fn get_and_delete_get_the_modern_upstreams_own_405() {
    let (up, b, key) = modern_broker(json!({"demo": {}})).await;
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = http()
            .request(method.clone(), b.client_url("demo"))
            .header("accept", "text/event-stream")
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method}");
        assert_eq!(r.headers()["allow"], "POST", "{method}");
        assert_eq!(last_seen(&up).method.as_str(), method.as_str());
    }
}

#[tokio::test]
async fn a_hidden_tool_is_refused_in_a_modern_call_and_modern_lists_keep_their_cache_fields() {
    let (up, b, key) = modern_broker(json!({"demo": {"disallowed_tools": ["add"]}})).await;
    let url = b.client_url("demo");
    let auth = [("x-api-key", key.as_str())];
    for mode in [ResponseMode::Json, ResponseMode::Sse] {
        up.set_response(mode);
        let list = modern_request(1, "tools/list", json!({}), false);
        let l = read_message(modern_post(&url, &list, &auth).await).await;
        let names = tool_names(&l);
        assert!(!names.contains(&"add".to_string()), "{mode:?}: {names:?}");
        assert!(names.contains(&"echo".to_string()), "{mode:?}");
        let result = &l["result"];
        assert_eq!(
            (
                &result["resultType"],
                &result["ttlMs"],
                &result["cacheScope"]
            ),
            (&json!("complete"), &json!(60000), &json!("public")),
            "{mode:?}"
        );
    }
    let call = modern_request(
        2,
        "tools/call",
        json!({"name": "add", "arguments": {"a": 1, "b": 2}}),
        false,
    );
    let refused = read_message(modern_post(&url, &call, &auth).await).await;
    assert_eq!(refused["id"], 2);
    assert_eq!(refused["error"]["code"], codes::INVALID_PARAMS, "{refused}");
    assert_eq!(refused["error"]["data"]["tool"], "add");
    assert_eq!(count(&up.counters().tools_call), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_client_that_needs_sign_in_gets_an_input_required_url_elicitation() {
    let up = TestUpstream::start(UpstreamOptions::oauth().with_era(UpstreamEra::Modern)).await;
    let b = TestBroker::start(config(json!({"human": {
        "url": up.mcp_url, "auth_type": "oauth2", "oauth_flow": "authorization_code"}})))
    .await;
    let key = api_key(&b).await;
    let url = b.client_url("human");
    let auth = [("x-api-key", key.as_str())];
    let declaring = |id: u64, method: &str, params: Value| {
        let mut m = modern_request(id, method, params, false);
        m["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] =
            json!({"elicitation": {"url": {}}});
        m
    };
    let echo = json!({"name": "echo", "arguments": {"text": "after sign-in"}});
    let r = read_message(modern_post(&url, &declaring(1, "tools/call", echo.clone()), &auth).await)
        .await;
    assert_eq!(r["id"], 1);
    let result = &r["result"];
    assert_eq!(result["resultType"], "input_required", "{r}");
    let request = &result["inputRequests"]["signin-human"];
    assert_eq!(request["method"], "elicitation/create", "{r}");
    assert_eq!(request["params"]["mode"], "url");
    let link = request["params"]["url"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{}/signin/", b.base_url)),
        "{link}"
    );
    assert_eq!(count(&up.oauth().counters.authorize), 0);

    // A list cannot carry an input request: a script's key gets the broker's sign-in challenge,
    // with the JSON-RPC error naming the server as its body.
    let r = modern_post(&url, &declaring(2, "tools/list", json!({})), &auth).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let l: Value = r.json().await.unwrap();
    assert_eq!(
        (l["id"].clone(), l["error"]["data"]["reason"].clone()),
        (json!(2), json!("needs_sign_in")),
        "{l}"
    );

    let page = reqwest::Client::new().get(link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("signed in"));
    let mut retry = declaring(3, "tools/call", echo);
    retry["params"]["inputResponses"] = json!({"signin-human": {"action": "accept"}});
    let done = read_message(modern_post(&url, &retry, &auth).await).await;
    assert_eq!(
        done["result"]["content"][0]["text"], "after sign-in",
        "{done}"
    );
}

#[tokio::test]
async fn a_modern_client_without_url_elicitation_gets_a_complete_error_result() {
    let up = TestUpstream::start(UpstreamOptions::oauth().with_era(UpstreamEra::Modern)).await;
    let b = TestBroker::start(config(json!({"human": {
        "url": up.mcp_url, "auth_type": "oauth2", "oauth_flow": "authorization_code"}})))
    .await;
    let token = oauth_token(&b, "human");
    let bearer = format!("Bearer {token}");
    let call = modern_request(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {}}),
        true,
    );
    let r = read_message(
        modern_post(&b.client_url("human"), &call, &[("authorization", &bearer)]).await,
    )
    .await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert_eq!(r["result"]["resultType"], "complete", "{r}");
    assert!(!r.to_string().contains("/signin/"), "{r}");
}

#[tokio::test]
async fn unknown_servers_methods_and_versions_get_answers_a_modern_client_can_read() {
    let (up, b, key) = modern_broker(json!({"demo": {}})).await;
    let auth = [("x-api-key", key.as_str())];
    let discover = modern_request(4, "server/discover", json!({}), false);

    let r = modern_post(&b.client_url("nope"), &discover, &auth).await;
    assert_eq!(r.status(), 404);
    let body = r.bytes().await.unwrap();
    let m: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (m["id"].clone(), m["error"]["code"].clone()),
        (json!(4), json!(-32601))
    );
    assert!(
        m["error"]["message"].as_str().unwrap().contains("\"nope\""),
        "{m}"
    );
    assert!(
        matches!(era::detect(404, &body), Detected::ModernRefused(..)),
        "a modern client reads it as the broker's answer, not as a legacy server"
    );

    let unknown = modern_request(5, "tools/teleport", json!({}), false);
    let r = modern_post(&b.client_url("demo"), &unknown, &auth).await;
    let (status, code, _) = refusal(r).await;
    assert_eq!(
        (status, code),
        (404, codes::METHOD_NOT_FOUND),
        "the upstream's own answer"
    );

    let before = up.recorder().to_path("/mcp").len();
    let mut odd = discover.clone();
    odd["params"]["_meta"][mcp_auth_broker::protocol::meta::PROTOCOL_VERSION] = json!("2099-01-01");
    let r = modern_post(
        &b.client_url("demo"),
        &odd,
        &[("x-api-key", &key), ("mcp-protocol-version", "2099-01-01")],
    )
    .await;
    let (status, code, error) = refusal(r).await;
    assert_eq!((status, code), (400, codes::UNSUPPORTED_PROTOCOL_VERSION));
    assert_eq!(
        error["data"]["supported"],
        json!([mcp_auth_broker::protocol::MODERN_VERSION]),
        "the upstream's own answer: what it supports, not every version the broker speaks"
    );
    assert_eq!(
        up.recorder().to_path("/mcp").len(),
        before + 1,
        "forwarded untouched"
    );

    let r = modern_post(
        &b.client_url("nope"),
        &discover,
        &[("x-api-key", &key), ("mcp-protocol-version", "2099-01-01")],
    )
    .await;
    let (status, code, error) = refusal(r).await;
    assert_eq!((status, code), (400, codes::UNSUPPORTED_PROTOCOL_VERSION));
    assert_eq!(
        error["data"]["supported"],
        json!(SUPPORTED_VERSIONS),
        "no upstream to ask: the broker's own list"
    );

    let r = modern_post(&b.client_url("demo"), &discover, &[]).await;
    assert_eq!(
        r.status(),
        401,
        "an unauthenticated modern client still discovers auth"
    );
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("resource_metadata="));
}
