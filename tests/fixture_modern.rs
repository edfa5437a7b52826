//! The 2026-07-28 fixtures themselves behave as the spec says (so other tests can trust them):
//! the Rust test upstream in its Modern and Dual eras, and the official-SDK JS server.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use mcp_auth_broker::protocol::client::Client;
use mcp_auth_broker::protocol::era::{self, Detected};
use mcp_auth_broker::protocol::sse::SseParser;
use mcp_auth_broker::protocol::{codes, headers, meta, Era, MODERN_VERSION};
use serde_json::{json, Value};
use support::modern::SUBSCRIPTION_ID;
use support::*;

const WAIT: Duration = Duration::from_secs(10);

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// A modern request body with `_meta` (and elicitation declared when `elicit`).
fn request(id: u64, method: &str, params: Value, elicit: bool) -> Value {
    let caps = if elicit {
        json!({"elicitation": {}})
    } else {
        json!({})
    };
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": meta::with_modern_meta(params, &caps)})
}

/// POSTs `body` with the headers a conforming modern client sends, then `extra` (which may
/// override them; an empty value removes the header).
async fn post(url: &str, body: &Value, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        "accept",
        "application/json, text/event-stream".parse().unwrap(),
    );
    h.insert(headers::PROTOCOL_VERSION, MODERN_VERSION.parse().unwrap());
    for (name, value) in headers::standard(body) {
        h.insert(name, value.parse().unwrap());
    }
    for (name, value) in extra {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap();
        if value.is_empty() {
            h.remove(&name);
        } else {
            h.insert(name, value.parse().unwrap());
        }
    }
    http().post(url).headers(h).json(body).send().await.unwrap()
}

/// The JSON-RPC message of a JSON or single-event SSE response.
async fn message(resp: reqwest::Response) -> Value {
    let sse = resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream");
    let text = resp.text().await.unwrap();
    if sse {
        let data = text
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .expect("an SSE data line");
        serde_json::from_str(data).unwrap()
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

async fn modern() -> TestUpstream {
    TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await
}

/// Status and JSON-RPC error code of a refused request.
async fn refusal(resp: reqwest::Response) -> (u16, i64, Value) {
    let status = resp.status().as_u16();
    let m: Value = resp.json().await.unwrap();
    (
        status,
        m["error"]["code"].as_i64().unwrap(),
        m["error"].clone(),
    )
}

#[tokio::test]
async fn a_modern_upstream_answers_discover_with_versions_capabilities_and_cache_hints() {
    let up = TestUpstream::start(
        UpstreamOptions::default()
            .with_era(UpstreamEra::Modern)
            .with_catalog("m")
            .with_cache(5000, "private"),
    )
    .await;
    let resp = post(
        &up.mcp_url,
        &request(1, "server/discover", json!({}), false),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("mcp-session-id").is_none());
    let r = message(resp).await["result"].clone();
    assert_eq!(r["resultType"], "complete");
    assert_eq!(r["supportedVersions"], json!([MODERN_VERSION]));
    assert_eq!(r["capabilities"]["tools"]["listChanged"], true);
    assert_eq!(r["capabilities"]["resources"]["subscribe"], true);
    assert!(r["capabilities"]["prompts"].is_object());
    assert_eq!(r["_meta"][meta::SERVER_INFO]["name"], "test-upstream");
    assert_eq!(
        (r["ttlMs"].clone(), r["cacheScope"].clone()),
        (json!(5000), json!("private"))
    );
    assert_eq!(count(&up.counters().discover), 1);
}

#[tokio::test]
async fn modern_results_carry_result_type_and_cache_hints_and_answer_as_sse_when_set() {
    let up = modern().await;
    up.set_response(ResponseMode::Sse);
    let resp = post(
        &up.mcp_url,
        &request(1, "tools/list", json!({}), false),
        &[],
    )
    .await;
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let r = message(resp).await["result"].clone();
    assert_eq!(
        (
            r["resultType"].clone(),
            r["ttlMs"].clone(),
            r["cacheScope"].clone()
        ),
        (json!("complete"), json!(60000), json!("public"))
    );
    let names: Vec<&str> = r["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "add", "slow_stream", "lookup", "ask_user"]);
    let call = request(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}}),
        false,
    );
    let r = message(post(&up.mcp_url, &call, &[]).await).await["result"].clone();
    assert_eq!(
        (r["resultType"].clone(), r["content"][0]["text"].clone()),
        (json!("complete"), json!("hi"))
    );
}

#[tokio::test]
async fn headers_that_are_missing_or_disagree_with_the_body_are_refused_with_32020() {
    let up = modern().await;
    let call = request(
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "x"}}),
        false,
    );
    let cases: [&[(&str, &str)]; 5] = [
        &[("mcp-method", "")],
        &[("mcp-method", "tools/list")],
        &[("mcp-name", "add")],
        &[("mcp-name", "")],
        &[("mcp-protocol-version", "")],
    ];
    for extra in cases {
        let (status, code, _) = refusal(post(&up.mcp_url, &call, extra).await).await;
        assert_eq!((status, code), (400, codes::HEADER_MISMATCH), "{extra:?}");
    }
    // A version the server does not serve is -32022, even when the header disagrees with it.
    let mut other = call.clone();
    other["params"]["_meta"][meta::PROTOCOL_VERSION] = json!("2025-11-25");
    let (status, code, _) = refusal(post(&up.mcp_url, &other, &[]).await).await;
    assert_eq!((status, code), (400, codes::UNSUPPORTED_PROTOCOL_VERSION));
    let sentinel = headers::encode_value("=?base64?echo?=");
    assert!(sentinel.starts_with("=?base64?"));
    let (status, code, _) =
        refusal(post(&up.mcp_url, &call, &[("mcp-name", &sentinel)]).await).await;
    assert_eq!(
        (status, code),
        (400, codes::HEADER_MISMATCH),
        "a decoded name that differs"
    );
    let encoded = "=?base64?ZWNobw==?="; // "echo"
    let ok = post(&up.mcp_url, &call, &[("mcp-name", encoded)]).await;
    assert_eq!(
        ok.status(),
        200,
        "a Base64 sentinel Mcp-Name is decoded before comparing"
    );
    assert_eq!(count(&up.counters().header_mismatch), 6);
}

#[tokio::test]
async fn lookup_needs_its_region_mirrored_into_mcp_param_region() {
    let up = modern().await;
    let call = request(
        1,
        "tools/call",
        json!({"name": "lookup", "arguments": {"region": "eu-west 1 ü", "key": "k"}}),
        false,
    );
    let (status, code, e) = refusal(post(&up.mcp_url, &call, &[]).await).await;
    assert_eq!((status, code), (400, codes::HEADER_MISMATCH));
    assert!(
        e["message"].as_str().unwrap().contains("Mcp-Param-Region"),
        "{e}"
    );
    let (_, code, _) =
        refusal(post(&up.mcp_url, &call, &[("mcp-param-region", "us-west1")]).await).await;
    assert_eq!(code, codes::HEADER_MISMATCH);
    let (_, code, _) =
        refusal(post(&up.mcp_url, &call, &[("mcp-param-region", "=?base64?!!?=")]).await).await;
    assert_eq!(code, codes::HEADER_MISMATCH, "malformed Base64");
    let value = headers::encode_value("eu-west 1 ü");
    let resp = post(&up.mcp_url, &call, &[("Mcp-Param-Region", &value)]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        message(resp).await["result"]["content"][0]["text"],
        "k@eu-west 1 ü"
    );
    let recorded = up.recorder().to_path("/mcp");
    assert_eq!(
        recorded.last().unwrap().header("mcp-param-region"),
        Some(value.as_str())
    );
    assert_eq!(recorded.last().unwrap().header("mcp-name"), Some("lookup"));
}

#[tokio::test]
async fn unsupported_versions_unknown_methods_and_initialize_get_their_own_refusals() {
    let up = modern().await;
    let mut old = request(1, "tools/list", json!({}), false);
    old["params"]["_meta"][meta::PROTOCOL_VERSION] = json!("1900-01-01");
    let resp = post(&up.mcp_url, &old, &[("mcp-protocol-version", "1900-01-01")]).await;
    let (status, code, e) = refusal(resp).await;
    assert_eq!((status, code), (400, codes::UNSUPPORTED_PROTOCOL_VERSION));
    assert_eq!(e["data"]["supported"], json!([MODERN_VERSION]));
    assert_eq!(e["data"]["requested"], "1900-01-01");
    for method in ["nope/nothing", "ping", "prompts/list"] {
        let (status, code, _) =
            refusal(post(&up.mcp_url, &request(2, method, json!({}), false), &[]).await).await;
        assert_eq!((status, code), (404, codes::METHOD_NOT_FOUND), "{method}");
    }
    // A legacy client's initialize: 400, naming the versions, and not a modern error code (so
    // era detection would not call it modern).
    let init = json!({"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}});
    let resp = http()
        .post(&up.mcp_url)
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("mcp-session-id").is_none());
    let body = resp.bytes().await.unwrap();
    let e: Value = serde_json::from_slice(&body).unwrap();
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains(MODERN_VERSION));
    assert_eq!(e["error"]["data"]["supported"], json!([MODERN_VERSION]));
    assert_eq!(era::detect(400, &body), Detected::Legacy);
    assert_eq!(count(&up.counters().initialize), 0);
}

#[tokio::test]
async fn a_modern_upstream_keeps_no_sessions_and_answers_get_and_delete_405() {
    let up = modern().await;
    let body = request(1, "tools/list", json!({}), false);
    let resp = post(&up.mcp_url, &body, &[("mcp-session-id", "made-up")]).await;
    assert_eq!(resp.status(), 200, "a session id is ignored");
    assert!(resp.headers().get("mcp-session-id").is_none());
    let get = http()
        .get(&up.mcp_url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    let delete = http()
        .delete(&up.mcp_url)
        .header("mcp-session-id", "made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 405);
    // A notification is accepted with 202.
    let note =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}});
    assert_eq!(post(&up.mcp_url, &note, &[]).await.status(), 202);
}

#[tokio::test]
async fn a_modern_upstream_demands_its_token_on_discover_exactly_like_a_legacy_one() {
    let up = TestUpstream::start(UpstreamOptions::oauth().with_era(UpstreamEra::Modern)).await;
    let legacy = TestUpstream::start(UpstreamOptions::oauth()).await;
    let body = request(1, "server/discover", json!({}), false);
    let resp = post(&up.mcp_url, &body, &[]).await;
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(challenge, format!("Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:read\"", up.url));
    let legacy_resp = post(&legacy.mcp_url, &body, &[]).await;
    let legacy_challenge = legacy_resp.headers()["www-authenticate"].to_str().unwrap();
    assert_eq!(legacy_challenge.replace(&legacy.url, &up.url), challenge);
    let token = up.oauth().mint("m2m-client", None);
    let resp = post(
        &up.mcp_url,
        &body,
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn ask_user_asks_for_input_and_completes_when_retried_with_the_answer() {
    let up = modern().await;
    let args = json!({"name": "ask_user", "arguments": {"question": "Deploy?"}});
    let (status, code, e) = refusal(
        post(
            &up.mcp_url,
            &request(1, "tools/call", args.clone(), false),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, code),
        (400, codes::MISSING_REQUIRED_CLIENT_CAPABILITY)
    );
    assert_eq!(
        e["data"]["requiredCapabilities"],
        json!({"elicitation": {}})
    );

    let first = message(
        post(
            &up.mcp_url,
            &request(2, "tools/call", args.clone(), true),
            &[],
        )
        .await,
    )
    .await;
    let r = &first["result"];
    assert_eq!(r["resultType"], "input_required");
    let ask = &r["inputRequests"][support::modern::ASK_KEY];
    assert_eq!(
        (
            ask["method"].clone(),
            ask["params"]["mode"].clone(),
            ask["params"]["message"].clone()
        ),
        (json!("elicitation/create"), json!("form"), json!("Deploy?"))
    );
    let state = r["requestState"].as_str().unwrap().to_string();
    assert!(
        r.get("ttlMs").is_none(),
        "input_required results carry no cache hints"
    );

    let mut retry = args.clone();
    retry["inputResponses"] =
        json!({"confirm": {"action": "accept", "content": {"answer": "yes"}}});
    retry["requestState"] = json!(state);
    let done = message(
        post(
            &up.mcp_url,
            &request(3, "tools/call", retry.clone(), true),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(done["result"]["resultType"], "complete");
    assert_eq!(done["result"]["content"][0]["text"], "accept: yes");

    retry["requestState"] = json!("forged");
    let forged =
        message(post(&up.mcp_url, &request(4, "tools/call", retry, true), &[]).await).await;
    assert_eq!(forged["error"]["code"], codes::INVALID_PARAMS);
    assert_eq!(count(&up.counters().input_required), 1);
}

/// Opens `subscriptions/listen` and returns the event stream's messages as they arrive.
async fn listen(url: &str, id: u64, filter: Value) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
    let body = request(
        id,
        "subscriptions/listen",
        json!({"notifications": filter}),
        false,
    );
    let resp = post(url, &body, &[]).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut parser = SseParser::default();
        let mut stream = resp.bytes_stream();
        while let Some(Ok(chunk)) = stream.next().await {
            for event in parser.push(&chunk) {
                let _ = tx.send(serde_json::from_str::<Value>(&event.data).unwrap());
            }
        }
    });
    rx
}

async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a message in time")
        .expect("stream open")
}

#[tokio::test]
async fn listen_acknowledges_then_delivers_opted_in_changes_until_ended() {
    let up = TestUpstream::start(
        UpstreamOptions::default()
            .with_era(UpstreamEra::Modern)
            .with_catalog("c"),
    )
    .await;
    let mut tools = listen(
        &up.mcp_url,
        7,
        json!({"toolsListChanged": true, "promptsListChanged": false}),
    )
    .await;
    let ack = next(&mut tools).await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["_meta"][SUBSCRIPTION_ID], 7);
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true})
    );
    let mut res = listen(
        &up.mcp_url,
        8,
        json!({"resourceSubscriptions": ["test://c/readme"]}),
    )
    .await;
    assert_eq!(
        next(&mut res).await["params"]["notifications"]["resourceSubscriptions"],
        json!(["test://c/readme"])
    );
    tokio::time::timeout(WAIT, up.wait_listening(2))
        .await
        .unwrap();

    up.notify_prompts_changed(); // nobody opted in: dropped
    up.notify_resource_updated("test://c/other"); // not subscribed: dropped
    up.notify_tools_changed();
    up.notify_resource_updated("test://c/readme");
    let note = next(&mut tools).await;
    assert_eq!(note["method"], "notifications/tools/list_changed");
    assert_eq!(note["params"]["_meta"][SUBSCRIPTION_ID], 7);
    let note = next(&mut res).await;
    assert_eq!(
        (note["method"].clone(), note["params"]["uri"].clone()),
        (
            json!("notifications/resources/updated"),
            json!("test://c/readme")
        )
    );
    assert_eq!(note["params"]["_meta"][SUBSCRIPTION_ID], 8);

    up.end_listens();
    let end = next(&mut tools).await;
    assert_eq!(
        (end["id"].clone(), end["result"]["resultType"].clone()),
        (json!(7), json!("complete"))
    );
    assert_eq!(end["result"]["_meta"][SUBSCRIPTION_ID], 7);
    assert_eq!(next(&mut res).await["id"], 8);
    assert!(
        tokio::time::timeout(WAIT, tools.recv())
            .await
            .unwrap()
            .is_none(),
        "the stream closed"
    );
    assert_eq!(count(&up.counters().listens), 2);
    assert_eq!(up.listening(), 0);
}

#[tokio::test]
async fn a_dual_upstream_serves_meta_requests_statelessly_and_initialize_as_a_legacy_session() {
    let up = TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Dual)).await;
    let r = message(
        post(
            &up.mcp_url,
            &request(1, "server/discover", json!({}), false),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(
        r["result"]["supportedVersions"],
        json!(["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"])
    );

    let init = json!({"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {"elicitation": {}}, "clientInfo": {"name": "c", "version": "1"}}});
    let resp = http()
        .post(&up.mcp_url)
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    let session = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        message(resp).await["result"]["protocolVersion"],
        "2025-06-18"
    );

    // The session's GET stream and a modern listen stream both hear one change.
    let get = http()
        .get(&up.mcp_url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let mut listen_rx = listen(&up.mcp_url, 3, json!({"toolsListChanged": true})).await;
    next(&mut listen_rx).await;
    up.notify_tools_changed();
    assert_eq!(
        next(&mut listen_rx).await["method"],
        "notifications/tools/list_changed"
    );
    let mut get_stream = get.bytes_stream();
    let mut parser = SseParser::default();
    let got = tokio::time::timeout(WAIT, async {
        loop {
            let chunk = get_stream.next().await.unwrap().unwrap();
            if let Some(e) = parser.push(&chunk).into_iter().next() {
                return serde_json::from_str::<Value>(&e.data).unwrap();
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(got["method"], "notifications/tools/list_changed");

    // In the session, ask_user is a server→client elicitation request on the call's stream.
    let call = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "ask_user", "arguments": {}}});
    let resp = http()
        .post(&up.mcp_url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&call)
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    while events.len() < 2 {
        let chunk = tokio::time::timeout(WAIT, stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        for e in parser.push(&chunk) {
            let m: Value = serde_json::from_str(&e.data).unwrap();
            if m["method"] == "elicitation/create" {
                let answer = json!({"jsonrpc": "2.0", "id": m["id"], "result": {"action": "accept", "content": {"answer": "legacy-yes"}}});
                let posted = http()
                    .post(&up.mcp_url)
                    .header("mcp-session-id", &session)
                    .json(&answer)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(posted.status(), 202);
            }
            events.push(m);
        }
    }
    assert_eq!(events[0]["params"]["mode"], "form");
    assert_eq!(
        events[1]["result"]["content"][0]["text"],
        "accept: legacy-yes"
    );
}

#[tokio::test]
async fn the_broker_client_finds_each_fixture_era() {
    let modern_up = modern().await;
    let legacy_up = TestUpstream::start(UpstreamOptions::default()).await;
    let dual_up = TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Dual)).await;
    let caps = json!({"elicitation": {}});
    let connect = |url: &str| Client::connect(HttpTransport::new(url), caps.clone(), WAIT);

    let legacy = connect(&legacy_up.mcp_url).await.unwrap();
    assert_eq!(
        (legacy.era(), legacy.version()),
        (Era::Legacy, "2025-11-25")
    );
    let dual = connect(&dual_up.mcp_url).await.unwrap();
    assert_eq!(dual.era(), Era::Modern);

    let c = connect(&modern_up.mcp_url).await.unwrap();
    assert_eq!((c.era(), c.version()), (Era::Modern, MODERN_VERSION));
    assert_eq!(c.server_info()["name"], "test-upstream");
    let list = c
        .request("tools/list", json!({}), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(list["result"]["resultType"], "complete");
    let args = json!({"name": "lookup", "arguments": {"region": "us-west1", "key": "k"}});
    let call = c.request("tools/call", args, &mut |_| {}).await.unwrap();
    assert_eq!(call["result"]["content"][0]["text"], "k@us-west1");
    let sent = modern_up.recorder().to_path("/mcp");
    assert_eq!(
        sent.last().unwrap().header("mcp-param-region"),
        Some("us-west1")
    );
    assert_eq!(count(&modern_up.counters().initialize), 0);
}
