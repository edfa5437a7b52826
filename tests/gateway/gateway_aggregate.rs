//! The aggregate endpoint `/mcp`: one MCP server over every configured server, names prefixed
//! `SERVER__NAME`, its own protected resource. Real broker, real upstreams, real sockets.

use crate::gateway_common;
use crate::support;

use gateway_common::*;
use serde_json::{json, Value};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_lists_omit_filtered_tools_and_calls_to_them_never_reach_the_upstream() {
    let a = TestUpstream::start(UpstreamOptions::default().with_response(ResponseMode::Sse)).await;
    let open_up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {
        "a": {"url": a.mcp_url, "allowed_tools": ["echo", "add"], "disallowed_tools": ["add"]},
        "b": {"url": open_up.mcp_url}}}))
    .await;
    let key = api_key(&b).await;
    let sid = aggregate_open(&b, &key).await;
    let (_, list) = aggregate_rpc(&b, &key, Some(&sid), TOOLS_LIST(2)).await;
    assert_eq!(
        tool_names(&list),
        ["a__echo", "b__add", "b__echo", "b__slow_stream"]
    );
    for (id, hidden) in [(3, "a__add"), (4, "a__slow_stream")] {
        let (_, r) = aggregate_rpc(
            &b,
            &key,
            Some(&sid),
            tool_call(id, hidden, json!({"a": 1, "b": 2})),
        )
        .await;
        assert_eq!(r["error"]["code"], -32602, "{r}");
        let text = r["error"]["message"].as_str().unwrap();
        assert!(
            text.contains("allowed_tools") && text.contains("\"a\""),
            "{text}"
        );
    }
    assert_eq!(
        count(&a.counters().tools_call),
        0,
        "a filtered call is never forwarded"
    );
    let (_, ok) = aggregate_rpc(
        &b,
        &key,
        Some(&sid),
        tool_call(5, "a__echo", json!({"text": "hi"})),
    )
    .await;
    assert_eq!(ok["result"]["content"][0]["text"], "hi", "{ok}");
    assert_eq!(count(&a.counters().tools_call), 1);
    assert_eq!(
        count(&a.counters().initialize),
        1,
        "one upstream session per server per client session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_the_endpoint_does_not_offer_get_clear_errors() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {
        "a": {"url": up.mcp_url},
        "deleg": {"url": up.mcp_url, "delegate_auth_to_upstream": true},
        "old": {"url": up.sse_url, "transport": "sse"}}}))
    .await;
    let key = api_key(&b).await;
    let sid = aggregate_open(&b, &key).await;
    let (notes, list) = aggregate_rpc(&b, &key, Some(&sid), TOOLS_LIST(2)).await;
    assert_eq!(
        tool_names(&list),
        ["a__add", "a__echo", "a__slow_stream"],
        "delegating and legacy-transport servers are not aggregated"
    );
    let told: Vec<&str> = notes
        .iter()
        .map(|n| n["params"]["data"]["server"].as_str().unwrap())
        .collect();
    assert_eq!(
        told,
        ["deleg", "old"],
        "servers left out are named, not dropped silently: {notes:?}"
    );
    assert!(
        notes.iter().all(|n| n["params"]["level"] == "info"),
        "{notes:?}"
    );
    for (name, says) in [
        ("nope__echo", "no server named \"nope\""),
        ("plain", "SERVER__NAME"),
        ("deleg__echo", "/deleg/mcp"),
        ("old__echo", "older HTTP+SSE transport"),
    ] {
        let (_, r) = aggregate_rpc(&b, &key, Some(&sid), tool_call(3, name, json!({}))).await;
        assert_eq!(r["error"]["code"], -32602, "{r}");
        assert!(
            r["error"]["message"].as_str().unwrap().contains(says),
            "{name}: {r}"
        );
    }
    let (_, r) = aggregate_rpc(
        &b,
        &key,
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 9, "method": "sampling/createMessage"}),
    )
    .await;
    assert_eq!(r["error"]["code"], -32601, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_named_in_a_notice_and_the_others_still_answer() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let gone = TestUpstream::start(UpstreamOptions::default()).await;
    let gone_url = gone.mcp_url.clone();
    gone.stop();
    let b = TestBroker::start(
        json!({"mcp_servers": {"a": {"url": up.mcp_url}, "gone": {"url": gone_url}}}),
    )
    .await;
    let key = api_key(&b).await;
    let sid = aggregate_open(&b, &key).await;
    let (notes, list) = aggregate_rpc(&b, &key, Some(&sid), TOOLS_LIST(2)).await;
    assert_eq!(tool_names(&list), ["a__add", "a__echo", "a__slow_stream"]);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["method"], "notifications/message");
    assert_eq!(notes[0]["params"]["data"]["server"], "gone");
    assert!(
        notes[0]["params"]["data"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{notes:?}"
    );
    let (notes, r) = aggregate_rpc(
        &b,
        &key,
        Some(&sid),
        tool_call(3, "gone__echo", json!({"text": "x"})),
    )
    .await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("\"gone\" is unreachable"),
        "{r}"
    );
    assert_eq!(notes[0]["params"]["level"], "error", "{notes:?}");
    // A request that is not a tool call gets the broker's code for the reason, as on
    // `/{server}/mcp`, never a bare internal error.
    let prompt = json!({"jsonrpc": "2.0", "id": 4, "method": "prompts/get", "params": {"name": "gone__greet"}});
    let (_, r) = aggregate_rpc(&b, &key, Some(&sid), prompt).await;
    assert_eq!(r["error"]["code"], -32032, "{r}");
    assert_eq!(
        r["error"]["data"],
        json!({"server": "gone", "reason": "unreachable"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_belong_to_the_client_that_opened_them_and_end_upstream_too() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"a": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let other = api_key(&b).await;
    let sid = aggregate_open(&b, &key).await;
    aggregate_rpc(&b, &key, Some(&sid), TOOLS_LIST(2)).await;
    assert_eq!(
        up.state.sessions.lock().unwrap().len(),
        1,
        "one upstream session opened lazily"
    );
    let url = format!("{}/mcp", b.base_url);
    let stolen = gateway_common::post(&url, &other, Some(&sid), &TOOLS_LIST(3)).await;
    assert_eq!(
        stolen.status(),
        404,
        "another client cannot use the session"
    );
    let missing = gateway_common::post(&url, &key, None, &TOOLS_LIST(4)).await;
    assert_eq!(missing.status(), 400);
    assert!(missing.text().await.unwrap().contains("Mcp-Session-Id"));
    let http = gateway_common::http();
    let end = http
        .delete(&url)
        .header("x-api-key", &key)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(end.status(), 200);
    assert!(
        up.state.sessions.lock().unwrap().is_empty(),
        "the upstream session was ended too"
    );
    assert_eq!(
        gateway_common::post(&url, &key, Some(&sid), &TOOLS_LIST(5))
            .await
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aggregate_is_its_own_protected_resource_with_its_own_audience() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(
        json!({"mcp_servers": {"a": {"url": up.mcp_url}, "b": {"url": up.mcp_url}}}),
    )
    .await;
    let http = gateway_common::http();
    let url = format!("{}/mcp", b.base_url);
    let r = http
        .post(&url)
        .json(&gateway_common::initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    let prm_url = format!("{}/.well-known/oauth-protected-resource/mcp", b.base_url);
    assert!(
        challenge.contains(&format!("resource_metadata=\"{prm_url}\"")),
        "{challenge}"
    );
    let prm: Value = http
        .get(&prm_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], url);
    assert_eq!(prm["authorization_servers"], json!([b.base_url]));

    let for_a = oauth_token(&b, "a");
    let r = http
        .post(&url)
        .bearer_auth(&for_a)
        .json(&gateway_common::initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a token for one server does not open /mcp");

    // The consent for resource=/mcp lists the servers it covers; its token works on /mcp only.
    let client = register(&b, "Aggregate client").await;
    let mut params = pkce().to_vec();
    params.push(("resource", &url));
    let auth = authorize_url(&b, &client, &params);
    let page = http.get(&auth).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("All servers (/mcp)")
            && page.contains("a: ready")
            && page.contains("b: ready"),
        "{page}"
    );
    let code = approve(&b, &auth).await["code"].clone();
    let (status, tokens) = exchange(&b, &client, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let r = http
        .post(&url)
        .bearer_auth(access)
        .header("accept", gateway_common::ACCEPT)
        .json(&gateway_common::initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        gateway_common::mcp_status(&b, "a", access).await,
        401,
        "the /mcp token does not open /a/mcp"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_cancellation_reaches_the_upstream_under_the_brokers_own_id() {
    let up = TestUpstream::start(UpstreamOptions::default().with_response(ResponseMode::Sse)).await;
    let b = TestBroker::start(json!({"mcp_servers": {"a": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let sid = aggregate_open(&b, &key).await;
    let url = format!("{}/mcp", b.base_url);
    // The slow tool waits for a release that never comes; its answer streams once headers are out.
    let slow = tool_call(77, "a__slow_stream", json!({"steps": 1}));
    let answer = gateway_common::post(&url, &key, Some(&sid), &slow).await;
    assert_eq!(answer.status(), 200);
    let reached = async {
        while count(&up.counters().tools_call) == 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), reached)
        .await
        .expect("the call reached the upstream");
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 77, "reason": "the person stopped it"}});
    assert_eq!(
        gateway_common::post(&url, &key, Some(&sid), &cancel)
            .await
            .status(),
        202
    );
    let seen = up.state.messages.lock().unwrap().clone();
    let call_id = seen
        .iter()
        .find(|m| m["method"] == "tools/call")
        .map(|m| m["id"].clone())
        .unwrap();
    let cancelled = seen
        .iter()
        .find(|m| m["method"] == "notifications/cancelled")
        .unwrap_or_else(|| panic!("no cancellation upstream: {seen:?}"));
    assert_eq!(
        cancelled["params"]["requestId"], call_id,
        "re-keyed to the broker's id"
    );
    assert_eq!(cancelled["params"]["reason"], "the person stopped it");
    drop(answer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregate_call_refused_with_401_is_sent_again_after_a_refresh_with_the_same_mirrored_headers(
) {
    let up = TestUpstream::start(UpstreamOptions::oauth().with_era(UpstreamEra::Modern)).await;
    let b = TestBroker::start(json!({"mcp_servers": {"m": {"url": up.mcp_url}}})).await;
    b.sign_in("m").await;
    let key = api_key(&b).await;
    let sid = aggregate_open(&b, &key).await;
    let (_, list) = aggregate_rpc(&b, &key, Some(&sid), TOOLS_LIST(1)).await;
    assert!(
        tool_names(&list).contains(&"m__lookup".to_string()),
        "{list}"
    );
    let args = json!({"region": "us-west1", "key": "k"});
    let (_, first) = aggregate_rpc(
        &b,
        &key,
        Some(&sid),
        tool_call(2, "m__lookup", args.clone()),
    )
    .await;
    assert_eq!(
        first["result"]["content"][0]["text"], "k@us-west1",
        "{first}"
    );

    // The upstream refuses the next call's token: the retry's headers (Mcp-Name,
    // Mcp-Param-Region) are made again and must still mirror the body.
    up.oauth().expire_access_tokens();
    let refreshes = count(&up.oauth().counters.token_refresh);
    let (_, again) = aggregate_rpc(&b, &key, Some(&sid), tool_call(3, "m__lookup", args)).await;
    assert_eq!(
        again["result"]["content"][0]["text"], "k@us-west1",
        "{again}"
    );
    assert_eq!(count(&up.oauth().counters.token_refresh) - refreshes, 1);
    assert_eq!(
        count(&up.counters().header_mismatch),
        0,
        "no -32020 on the retry"
    );
    assert_eq!(
        count(&up.counters().tools_call),
        2,
        "a refused call is not counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregate_call_before_any_tool_list_mirrors_the_tools_header_arguments() {
    // A client that kept its tool list from an earlier session calls at once: the broker has
    // not seen the tool's `x-mcp-header` annotations yet, and a modern upstream refuses a call
    // without its `Mcp-Param-*` headers (-32020). The broker lists the server's tools first.
    let up = TestUpstream::start(UpstreamOptions::oauth().with_era(UpstreamEra::Modern)).await;
    let b = TestBroker::start(json!({"mcp_servers": {"m": {"url": up.mcp_url}}})).await;
    b.sign_in("m").await;
    let key = api_key(&b).await;
    let sid = aggregate_open(&b, &key).await;
    let args = json!({"region": "eu-north1", "key": "k"});
    for id in [1, 2] {
        let (_, answer) = aggregate_rpc(
            &b,
            &key,
            Some(&sid),
            tool_call(id, "m__lookup", args.clone()),
        )
        .await;
        assert_eq!(
            answer["result"]["content"][0]["text"], "k@eu-north1",
            "{answer}"
        );
    }
    assert_eq!(count(&up.counters().header_mismatch), 0, "no -32020");
    assert_eq!(count(&up.counters().tools_call), 2);
    assert!(count(&up.counters().tools_list) >= 1, "listed first");
}
