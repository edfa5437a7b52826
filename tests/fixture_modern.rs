//! The 2026-07-28 test upstream behaves as the spec says (so other tests can trust it): its
//! Modern and Dual eras over the wire, and the broker's own client finding each era.

mod support;

use mcp_auth_broker::protocol::client::Client;
use mcp_auth_broker::protocol::era::{self, Detected};
use mcp_auth_broker::protocol::{codes, headers, meta, Era, MODERN_VERSION};
use serde_json::{json, Value};
use support::modern::SUBSCRIPTION_ID;
use support::wire::*;
use support::*;

async fn modern() -> TestUpstream {
    TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await
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
    let resp = modern_post(
        &up.mcp_url,
        &modern_request(1, "server/discover", json!({}), false),
        &[],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("mcp-session-id").is_none());
    let r = read_message(resp).await["result"].clone();
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
    let resp = modern_post(
        &up.mcp_url,
        &modern_request(1, "tools/list", json!({}), false),
        &[],
    )
    .await;
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let r = read_message(resp).await["result"].clone();
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
    let call = modern_request(
        2,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hi"}}),
        false,
    );
    let r = read_message(modern_post(&up.mcp_url, &call, &[]).await).await["result"].clone();
    assert_eq!(
        (r["resultType"].clone(), r["content"][0]["text"].clone()),
        (json!("complete"), json!("hi"))
    );
}

#[tokio::test]
async fn headers_that_are_missing_or_disagree_with_the_body_are_refused_with_32020() {
    let up = modern().await;
    let call = modern_request(
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
        let (status, code, _) = refusal(modern_post(&up.mcp_url, &call, extra).await).await;
        assert_eq!((status, code), (400, codes::HEADER_MISMATCH), "{extra:?}");
    }
    // A version the server does not serve is -32022, even when the header disagrees with it.
    let mut other = call.clone();
    other["params"]["_meta"][meta::PROTOCOL_VERSION] = json!("2025-11-25");
    let (status, code, _) = refusal(modern_post(&up.mcp_url, &other, &[]).await).await;
    assert_eq!((status, code), (400, codes::UNSUPPORTED_PROTOCOL_VERSION));
    let sentinel = headers::encode_value("=?base64?echo?=");
    assert!(sentinel.starts_with("=?base64?"));
    let (status, code, _) =
        refusal(modern_post(&up.mcp_url, &call, &[("mcp-name", sentinel.as_ref())]).await).await;
    assert_eq!(
        (status, code),
        (400, codes::HEADER_MISMATCH),
        "a decoded name that differs"
    );
    let encoded = "=?base64?ZWNobw==?="; // "echo"
    let ok = modern_post(&up.mcp_url, &call, &[("mcp-name", encoded)]).await;
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
    let call = modern_request(
        1,
        "tools/call",
        json!({"name": "lookup", "arguments": {"region": "eu-west 1 ü", "key": "k"}}),
        false,
    );
    let (status, code, e) = refusal(modern_post(&up.mcp_url, &call, &[]).await).await;
    assert_eq!((status, code), (400, codes::HEADER_MISMATCH));
    assert!(
        e["message"].as_str().unwrap().contains("Mcp-Param-Region"),
        "{e}"
    );
    let (_, code, _) =
        refusal(modern_post(&up.mcp_url, &call, &[("mcp-param-region", "us-west1")]).await).await;
    assert_eq!(code, codes::HEADER_MISMATCH);
    let (_, code, _) =
        refusal(modern_post(&up.mcp_url, &call, &[("mcp-param-region", "=?base64?!!?=")]).await)
            .await;
    assert_eq!(code, codes::HEADER_MISMATCH, "malformed Base64");
    let value = headers::encode_value("eu-west 1 ü");
    let resp = modern_post(&up.mcp_url, &call, &[("Mcp-Param-Region", value.as_ref())]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        read_message(resp).await["result"]["content"][0]["text"],
        "k@eu-west 1 ü"
    );
    let recorded = up.recorder().to_path("/mcp");
    assert_eq!(
        recorded.last().unwrap().header("mcp-param-region"),
        Some(value.as_ref())
    );
    assert_eq!(recorded.last().unwrap().header("mcp-name"), Some("lookup"));
}

#[tokio::test]
async fn unsupported_versions_unknown_methods_and_initialize_get_their_own_refusals() {
    let up = modern().await;
    let mut old = modern_request(1, "tools/list", json!({}), false);
    old["params"]["_meta"][meta::PROTOCOL_VERSION] = json!("1900-01-01");
    let resp = modern_post(&up.mcp_url, &old, &[("mcp-protocol-version", "1900-01-01")]).await;
    let (status, code, e) = refusal(resp).await;
    assert_eq!((status, code), (400, codes::UNSUPPORTED_PROTOCOL_VERSION));
    assert_eq!(e["data"]["supported"], json!([MODERN_VERSION]));
    assert_eq!(e["data"]["requested"], "1900-01-01");
    for method in ["nope/nothing", "ping", "prompts/list"] {
        let (status, code, _) = refusal(
            modern_post(
                &up.mcp_url,
                &modern_request(2, method, json!({}), false),
                &[],
            )
            .await,
        )
        .await;
        assert_eq!((status, code), (404, codes::METHOD_NOT_FOUND), "{method}");
    }
    // A legacy client's initialize: 400, naming the versions, and not a modern error code (so
    // era detection would not call it modern).
    let init = json!({"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}});
    let resp = http_client()
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
    let body = modern_request(1, "tools/list", json!({}), false);
    let resp = modern_post(&up.mcp_url, &body, &[("mcp-session-id", "made-up")]).await;
    assert_eq!(resp.status(), 200, "a session id is ignored");
    assert!(resp.headers().get("mcp-session-id").is_none());
    let get = http_client()
        .get(&up.mcp_url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    let delete = http_client()
        .delete(&up.mcp_url)
        .header("mcp-session-id", "made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 405);
    // A notification is accepted with 202.
    let note =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}});
    assert_eq!(modern_post(&up.mcp_url, &note, &[]).await.status(), 202);
}

#[tokio::test]
async fn a_modern_upstream_demands_its_token_on_discover_exactly_like_a_legacy_one() {
    let up = TestUpstream::start(UpstreamOptions::oauth().with_era(UpstreamEra::Modern)).await;
    let legacy = TestUpstream::start(UpstreamOptions::oauth()).await;
    let body = modern_request(1, "server/discover", json!({}), false);
    let resp = modern_post(&up.mcp_url, &body, &[]).await;
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(challenge, format!("Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:read\"", up.url));
    let legacy_resp = modern_post(&legacy.mcp_url, &body, &[]).await;
    let legacy_challenge = legacy_resp.headers()["www-authenticate"].to_str().unwrap();
    assert_eq!(legacy_challenge.replace(&legacy.url, &up.url), challenge);
    let token = up.oauth().mint("m2m-client", None);
    let resp = modern_post(
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
        modern_post(
            &up.mcp_url,
            &modern_request(1, "tools/call", args.clone(), false),
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

    let first = read_message(
        modern_post(
            &up.mcp_url,
            &modern_request(2, "tools/call", args.clone(), true),
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
    let done = read_message(
        modern_post(
            &up.mcp_url,
            &modern_request(3, "tools/call", retry.clone(), true),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(done["result"]["resultType"], "complete");
    assert_eq!(done["result"]["content"][0]["text"], "accept: yes");

    retry["requestState"] = json!("forged");
    let forged = read_message(
        modern_post(
            &up.mcp_url,
            &modern_request(4, "tools/call", retry, true),
            &[],
        )
        .await,
    )
    .await;
    assert_eq!(forged["error"]["code"], codes::INVALID_PARAMS);
    assert_eq!(count(&up.counters().input_required), 1);
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
    let ack = next_message(&mut tools).await;
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
        next_message(&mut res).await["params"]["notifications"]["resourceSubscriptions"],
        json!(["test://c/readme"])
    );
    tokio::time::timeout(WAIT, up.wait_listening(2))
        .await
        .unwrap();

    up.notify_prompts_changed(); // nobody opted in: dropped
    up.notify_resource_updated("test://c/other"); // not subscribed: dropped
    up.notify_tools_changed();
    up.notify_resource_updated("test://c/readme");
    let note = next_message(&mut tools).await;
    assert_eq!(note["method"], "notifications/tools/list_changed");
    assert_eq!(note["params"]["_meta"][SUBSCRIPTION_ID], 7);
    let note = next_message(&mut res).await;
    assert_eq!(
        (note["method"].clone(), note["params"]["uri"].clone()),
        (
            json!("notifications/resources/updated"),
            json!("test://c/readme")
        )
    );
    assert_eq!(note["params"]["_meta"][SUBSCRIPTION_ID], 8);

    up.end_listens();
    let end = next_message(&mut tools).await;
    assert_eq!(
        (end["id"].clone(), end["result"]["resultType"].clone()),
        (json!(7), json!("complete"))
    );
    assert_eq!(end["result"]["_meta"][SUBSCRIPTION_ID], 7);
    assert_eq!(next_message(&mut res).await["id"], 8);
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
    let discover = modern_request(1, "server/discover", json!({}), false);
    let r = read_message(modern_post(&up.mcp_url, &discover, &[]).await).await;
    assert_eq!(
        r["result"]["supportedVersions"],
        json!(["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"])
    );
    let session = legacy_session(&up.mcp_url).await;
    assert_eq!(count(&up.counters().initialize), 1);

    // The session's GET stream and a modern listen stream both hear one change.
    let get = http_client()
        .get(&up.mcp_url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    let mut rx = listen(&up.mcp_url, 3, json!({"toolsListChanged": true})).await;
    next_message(&mut rx).await;
    up.notify_tools_changed();
    assert_eq!(
        next_message(&mut rx).await["method"],
        "notifications/tools/list_changed"
    );
    assert_eq!(
        first_on_get_stream(get).await["method"],
        "notifications/tools/list_changed"
    );

    // In the session, ask_user is a server→client elicitation request on the call's stream.
    let (asked, result) = legacy_ask_user(&up.mcp_url, &session, "legacy-yes").await;
    assert_eq!(asked["params"]["mode"], "form");
    assert_eq!(result["content"][0]["text"], "accept: legacy-yes");
    assert_eq!(count(&up.counters().asked), 1);
}

#[tokio::test]
async fn slow_stream_streams_its_progress_to_a_modern_client_before_the_result() {
    let up = modern().await;
    let call = modern_request(
        1,
        "tools/call",
        json!({"name": "slow_stream", "arguments": {"steps": 2}, "_meta": {"progressToken": "p"}}),
        false,
    );
    let resp = modern_post(&up.mcp_url, &call, &[]).await;
    assert_eq!(resp.status(), 200);
    let mut rx = stream_messages(resp);
    for step in 1..=2 {
        up.release_event();
        let progress = next_message(&mut rx).await;
        assert_eq!(progress["method"], "notifications/progress");
        assert_eq!(progress["params"]["progress"], step);
        assert_eq!(progress["params"]["progressToken"], "p");
    }
    let done = next_message(&mut rx).await;
    assert_eq!(done["result"]["resultType"], "complete");
    assert_eq!(done["result"]["content"][0]["text"], "streamed 2");
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
