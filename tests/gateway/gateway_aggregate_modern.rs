//! The aggregate endpoint `/mcp` in the 2026-07-28 era: modern clients are served statelessly
//! (`server/discover`, `_meta` on every request, the header rules, `subscriptions/listen`), each
//! upstream is spoken to in its own era, and `input_required` results carry the broker's own
//! `requestState`. Real broker, real upstreams of both eras, real sockets.

use crate::gateway_common;
use crate::support;

use std::time::Duration;

use gateway_common::*;
use mcp_auth_broker::protocol::{codes, headers, meta, MODERN_VERSION, SUPPORTED_VERSIONS};
use serde_json::{json, Value};
use support::modern::SUBSCRIPTION_ID;
use support::*;

/// A modern request declaring `caps`.
fn modern(id: u64, method: &str, params: Value, caps: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": meta::with_modern_meta(params, &caps)})
}

/// POSTs `body` to `/mcp` as a conforming modern client does, then `extra` headers (an empty
/// value removes one).
async fn send(
    b: &TestBroker,
    key: &str,
    body: &Value,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = http()
        .post(format!("{}/mcp", b.base_url))
        .header("accept", ACCEPT)
        .header("x-api-key", key)
        .header(headers::PROTOCOL_VERSION, MODERN_VERSION);
    for (name, value) in headers::standard(body) {
        req = req.header(name, value.as_ref());
    }
    let mut built = req.json(body).build().unwrap();
    for (name, value) in extra {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap();
        match value {
            &"" => built.headers_mut().remove(&name),
            v => built.headers_mut().insert(name, v.parse().unwrap()),
        };
    }
    http().execute(built).await.unwrap()
}

/// The notifications and the answer of a modern request.
async fn rpc(b: &TestBroker, key: &str, body: &Value) -> (Vec<Value>, Value) {
    let r = send(b, key, body, &[]).await;
    assert_eq!(r.status(), 200, "{body}");
    assert!(r.headers().get("mcp-session-id").is_none(), "no session");
    if r.headers()["content-type"] == "application/json" {
        return (Vec::new(), r.json().await.unwrap());
    }
    let mut all = Messages::new(r);
    let mut notes = Vec::new();
    loop {
        let m = all.next().await;
        if m.get("id") == body.get("id") && m.get("method").is_none() {
            return (notes, m);
        }
        notes.push(m);
    }
}

fn names(result: &Value) -> Vec<String> {
    let mut n: Vec<String> = result["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

fn text(answer: &Value) -> &str {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
}

fn call(id: u64, name: &str, arguments: Value, caps: Value) -> Value {
    modern(
        id,
        "tools/call",
        json!({"name": name, "arguments": arguments}),
        caps,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_client_discovers_the_aggregate_without_a_session() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"a": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let (_, found) = rpc(
        &b,
        &key,
        &modern(1, "server/discover", json!({}), json!({})),
    )
    .await;
    let r = &found["result"];
    assert_eq!(r["supportedVersions"], json!(SUPPORTED_VERSIONS), "{found}");
    assert_eq!(r["resultType"], "complete");
    assert!(
        r["ttlMs"].as_u64().is_some() && r["cacheScope"] == "public",
        "{found}"
    );
    assert_eq!(r["capabilities"]["tools"]["listChanged"], true);
    assert_eq!(r["_meta"][meta::SERVER_INFO]["name"], "mcp-auth-broker");
    assert_eq!(
        count(&up.counters().initialize),
        0,
        "discovery opens no upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_requests_the_endpoint_cannot_serve_get_the_specs_json_rpc_errors() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"a": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let list = modern(2, "tools/list", json!({}), json!({}));
    for (extra, why) in [
        (vec![(headers::METHOD, "")], "missing Mcp-Method"),
        (
            vec![(headers::METHOD, "prompts/list")],
            "Mcp-Method unlike the body",
        ),
        (
            vec![(headers::PROTOCOL_VERSION, "2025-11-25")],
            "header unlike _meta",
        ),
    ] {
        let r = send(&b, &key, &list, &extra).await;
        assert_eq!(r.status(), 400, "{why}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], codes::HEADER_MISMATCH, "{why}: {e}");
        assert_eq!(e["id"], 2, "{why}");
    }
    let batch = json!([list.clone()]);
    let r = send(&b, &key, &batch, &[(headers::METHOD, "tools/list")]).await;
    assert_eq!(r.status(), 400, "no batches");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], codes::INVALID_REQUEST, "{e}");
    let named = call(3, "a__echo", json!({"text": "x"}), json!({}));
    let r = send(&b, &key, &named, &[(headers::NAME, "a__add")]).await;
    assert_eq!(r.status(), 400, "Mcp-Name must mirror params.name");

    let mut future = list.clone();
    future["params"]["_meta"][meta::PROTOCOL_VERSION] = json!("2099-01-01");
    let r = send(
        &b,
        &key,
        &future,
        &[(headers::PROTOCOL_VERSION, "2099-01-01")],
    )
    .await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        e["error"]["code"],
        codes::UNSUPPORTED_PROTOCOL_VERSION,
        "{e}"
    );
    assert_eq!(e["error"]["data"]["supported"], json!(SUPPORTED_VERSIONS));

    for method in ["ping", "resources/subscribe", "tasks/list"] {
        let r = send(&b, &key, &modern(4, method, json!({}), json!({})), &[]).await;
        assert_eq!(r.status(), 404, "{method}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], codes::METHOD_NOT_FOUND, "{method}: {e}");
    }
    let get = http()
        .get(format!("{}/mcp", b.base_url))
        .header("x-api-key", &key)
        .header("accept", "text/event-stream")
        .header(headers::PROTOCOL_VERSION, MODERN_VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405, "no GET stream in 2026-07-28");
    // A legacy request with a version nobody speaks gets a JSON-RPC error too, never OAuth's.
    let r = http()
        .post(format!("{}/mcp", b.base_url))
        .header("x-api-key", &key)
        .header("accept", ACCEPT)
        .header(headers::PROTOCOL_VERSION, "2024-01-01")
        .json(&initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        e["error"]["code"],
        codes::UNSUPPORTED_PROTOCOL_VERSION,
        "{e}"
    );
    assert_eq!(
        count(&up.counters().tools_list),
        0,
        "nothing refused reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_client_lists_and_calls_upstreams_of_both_eras_with_safely_merged_cache_fields() {
    let new = TestUpstream::start(
        UpstreamOptions::default()
            .with_era(UpstreamEra::Modern)
            .with_cache(60_000, "public"),
    )
    .await;
    let newer = TestUpstream::start(
        UpstreamOptions::default()
            .with_era(UpstreamEra::Modern)
            .with_cache(5_000, "public"),
    )
    .await;
    let old = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {
        "m": {"url": new.mcp_url}, "n": {"url": newer.mcp_url}}}))
    .await;
    let key = api_key(&b).await;
    let (_, list) = rpc(&b, &key, &modern(1, "tools/list", json!({}), json!({}))).await;
    let r = &list["result"];
    assert!(names(r).contains(&"m__lookup".to_string()), "{list}");
    assert_eq!(
        (r["resultType"].as_str(), r["ttlMs"].as_u64()),
        (Some("complete"), Some(5_000))
    );
    assert_eq!(r["cacheScope"], "public", "every part was public");

    let lookup = call(
        2,
        "m__lookup",
        json!({"region": "eu-west", "key": "k"}),
        json!({}),
    );
    let (_, answer) = rpc(&b, &key, &lookup).await;
    assert_eq!(text(&answer), "k@eu-west");
    assert_eq!(answer["result"]["resultType"], "complete");
    assert_eq!(
        count(&new.counters().header_mismatch),
        0,
        "Mcp-Param-Region went upstream"
    );
    assert_eq!(
        count(&new.counters().initialize),
        0,
        "no session with a modern upstream"
    );

    b.write_config(json!({"mcp_servers": {
        "m": {"url": new.mcp_url}, "old": {"url": old.mcp_url}}}))
        .await;
    let (_, list) = rpc(&b, &key, &modern(3, "tools/list", json!({}), json!({}))).await;
    let r = &list["result"];
    assert!(names(r).contains(&"old__echo".to_string()), "{list}");
    assert_eq!(r["ttlMs"], 0, "a legacy part gives no freshness");
    assert_eq!(r["cacheScope"], "private", "nor a public scope");
    let (_, answer) = rpc(
        &b,
        &key,
        &call(4, "old__echo", json!({"text": "hi"}), json!({})),
    )
    .await;
    assert_eq!(text(&answer), "hi");
    assert_eq!(
        answer["result"]["resultType"], "complete",
        "in the client's era"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_upstreams_input_required_comes_back_in_the_brokers_state_and_the_retry_returns_to_it(
) {
    let up = TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await;
    let b = TestBroker::start(json!({"mcp_servers": {"m": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let caps = json!({"elicitation": {}});
    let first = call(1, "m__ask_user", json!({"question": "ok?"}), caps.clone());
    let (_, asked) = rpc(&b, &key, &first).await;
    let r = &asked["result"];
    assert_eq!(r["resultType"], "input_required", "{asked}");
    assert_eq!(
        r["inputRequests"]["confirm"]["method"],
        "elicitation/create"
    );
    let state = r["requestState"].as_str().unwrap().to_string();
    assert!(
        state.contains('.'),
        "the broker's own state, not the upstream's: {state}"
    );

    let mut forged = first.clone();
    forged["id"] = json!(2);
    forged["params"]["inputResponses"] =
        json!({"confirm": {"action": "accept", "content": {"answer": "yes"}}});
    forged["params"]["requestState"] = json!(format!("x{state}"));
    let (_, refused) = rpc(&b, &key, &forged).await;
    assert_eq!(refused["error"]["code"], codes::INVALID_PARAMS, "{refused}");
    let other = api_key(&b).await;
    forged["params"]["requestState"] = json!(state);
    let (_, refused) = rpc(&b, &other, &forged).await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another client"),
        "{refused}"
    );

    let mut retry = forged.clone();
    retry["id"] = json!(3);
    let (_, done) = rpc(&b, &key, &retry).await;
    assert_eq!(text(&done), "accept: yes", "{done}");
    assert_eq!(
        count(&up.counters().input_required),
        1,
        "one round trip upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_upstreams_elicitation_reaches_a_modern_client_as_input_required() {
    let mut tools = mcp::default_tools();
    tools.push(streams::ask_client_tool());
    let up = TestUpstream::start(UpstreamOptions {
        tools,
        ..Default::default()
    })
    .await;
    let b = TestBroker::start(json!({"mcp_servers": {"a": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let caps = json!({"elicitation": {"form": {}}});
    let question = json!({"message": "Your name?", "requestedSchema": {"type": "object",
        "properties": {"name": {"type": "string"}}}});
    let ask = json!({"requests": [{"method": "elicitation/create", "params": question}]});
    let first = call(1, "a__ask_client", ask, caps.clone());
    let (_, asked) = rpc(&b, &key, &first).await;
    let r = &asked["result"];
    assert_eq!(r["resultType"], "input_required", "{asked}");
    let inputs = r["inputRequests"].as_object().unwrap();
    assert_eq!(inputs.len(), 1, "{asked}");
    let (input_key, request) = inputs.iter().next().unwrap();
    assert_eq!(request["method"], "elicitation/create");
    assert_eq!(
        request["params"]["message"], "[a] Your name?",
        "the person sees who asks"
    );
    assert!(
        up.state
            .messages
            .lock()
            .unwrap()
            .iter()
            .all(|m| m["id"] != "ask-0" || m.get("method").is_some()),
        "the upstream's request waits, unanswered"
    );

    let mut retry = first.clone();
    retry["id"] = json!(2);
    let elicited = json!({"action": "accept", "content": {"name": "Ada"}});
    retry["params"]["inputResponses"] = json!({input_key: elicited});
    retry["params"]["requestState"] = r["requestState"].clone();
    let (_, done) = rpc(&b, &key, &retry).await;
    let answers: Value = serde_json::from_str(text(&done)).unwrap();
    assert_eq!(
        answers[0]["id"], "ask-0",
        "answered under the upstream's own id"
    );
    assert_eq!(answers[0]["result"], elicited, "{done}");
    assert_eq!(
        count(&up.counters().tools_call),
        1,
        "the same upstream call went on"
    );

    let (_, again) = rpc(&b, &key, &{
        let mut r = retry.clone();
        r["id"] = json!(3);
        r
    })
    .await;
    assert_eq!(
        again["error"]["code"],
        codes::INVALID_PARAMS,
        "a held request resumes once: {again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_upstreams_input_required_reaches_a_legacy_client_as_an_elicitation_request() {
    let up = TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await;
    let b = TestBroker::start(json!({"mcp_servers": {"m": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let url = format!("{}/mcp", b.base_url);
    let sid = open_declaring(&url, &key, json!({"elicitation": {}})).await;
    let ask = tool_call(5, "m__ask_user", json!({"question": "Proceed?"}));
    let mut stream = Messages::new(post(&url, &key, Some(&sid), &ask).await);
    let request = stream.next().await;
    assert_eq!(request["method"], "elicitation/create", "{request}");
    assert_eq!(request["params"]["message"], "[m] Proceed?");
    let answer = json!({"jsonrpc": "2.0", "id": request["id"],
        "result": {"action": "accept", "content": {"answer": "yes"}}});
    assert_eq!(post(&url, &key, Some(&sid), &answer).await.status(), 202);
    let done = stream.next().await;
    assert_eq!(done["id"], 5);
    assert_eq!(text(&done), "accept: yes", "{done}");
    assert!(done["result"].get("requestState").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_listen_fans_in_list_changes_from_upstreams_of_both_eras() {
    let new = TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await;
    let old = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {
        "m": {"url": new.mcp_url}, "old": {"url": old.mcp_url}}}))
    .await;
    let key = api_key(&b).await;
    let filter =
        json!({"notifications": {"toolsListChanged": true, "resourceSubscriptions": ["x:/y"]}});
    let listen = modern(9, "subscriptions/listen", filter, json!({}));
    let r = send(&b, &key, &listen, &[]).await;
    assert_eq!(r.status(), 200);
    let mut stream = Messages::new(r);
    let ack = stream.next().await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true})
    );
    assert_eq!(ack["params"]["_meta"][SUBSCRIPTION_ID], 9);

    rpc(&b, &key, &modern(1, "tools/list", json!({}), json!({}))).await;
    tokio::time::timeout(Duration::from_secs(20), new.wait_listening(1))
        .await
        .expect("the broker listens to the modern upstream");
    new.notify_tools_changed();
    let changed = stream.next().await;
    assert_eq!(
        changed["method"], "notifications/tools/list_changed",
        "{changed}"
    );
    assert_eq!(changed["params"]["_meta"][SUBSCRIPTION_ID], 9, "{changed}");

    let listening = async {
        while count(&old.counters().get_streams) == 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), listening)
        .await
        .expect("the broker follows the legacy upstream's GET stream");
    old.notify_prompts_changed();
    old.notify_tools_changed();
    let changed = stream.next().await;
    assert_eq!(
        changed["method"], "notifications/tools/list_changed",
        "only what was asked for: {changed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_over_one_server_share_one_upstream_link() {
    let old = TestUpstream::start(UpstreamOptions::default()).await;
    let new = TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await;
    let b = TestBroker::start(json!({"mcp_servers": {
        "old": {"url": old.mcp_url}, "m": {"url": new.mcp_url}}}))
    .await;
    let key = api_key(&b).await;
    let mut sessions = Vec::new();
    for i in 0..8 {
        let sid = aggregate_open(&b, &key).await;
        let (_, list) = aggregate_rpc(&b, &key, Some(&sid), TOOLS_LIST(i)).await;
        assert_eq!(tool_names(&list).len(), 8, "{list}");
        aggregate_rpc(
            &b,
            &key,
            Some(&sid),
            tool_call(100 + i, "old__echo", json!({"text": "x"})),
        )
        .await;
        sessions.push(sid);
    }
    for i in 0..8 {
        rpc(
            &b,
            &key,
            &modern(200 + i, "tools/list", json!({}), json!({})),
        )
        .await;
    }
    assert_eq!(
        count(&old.counters().initialize),
        1,
        "one legacy upstream session"
    );
    assert_eq!(
        count(&new.counters().discover),
        1,
        "one discovery of the modern upstream"
    );
    assert_eq!(count(&new.counters().initialize), 0);
    assert_eq!(count(&old.counters().tools_call), 8);
    let listens = async {
        while count(&old.counters().get_streams) == 0 || new.listening() == 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), listens)
        .await
        .expect("both listened to");
    assert_eq!(
        count(&old.counters().get_streams),
        1,
        "one GET stream for all sessions"
    );
    assert_eq!(
        count(&new.counters().listens),
        1,
        "one listen for every client"
    );

    // The upstream session ends with the last client session that used it.
    let url = format!("{}/mcp", b.base_url);
    for (n, sid) in sessions.iter().enumerate() {
        let end = http()
            .delete(&url)
            .header("x-api-key", &key)
            .header("mcp-session-id", sid)
            .send()
            .await
            .unwrap();
        assert_eq!(end.status(), 200);
        let open = old.state.sessions.lock().unwrap().len();
        assert_eq!(
            open,
            usize::from(n + 1 < sessions.len()),
            "after {} ends",
            n + 1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_client_gets_the_sign_in_link_as_input_required_and_its_retry_goes_through() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"human": {
        "url": up.mcp_url, "auth_type": "oauth2", "oauth_flow": "authorization_code"}}}))
    .await;
    let key = api_key(&b).await;
    let caps = json!({"elicitation": {"url": {}}});
    let first = call(1, "human__echo", json!({"text": "hi"}), caps.clone());
    let (_, asked) = rpc(&b, &key, &first).await;
    let r = &asked["result"];
    assert_eq!(r["resultType"], "input_required", "{asked}");
    let (_, request) = r["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    assert_eq!(request["params"]["mode"], "url", "{asked}");
    let url = request["params"]["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/signin/", b.base_url)), "{url}");

    let page = reqwest::Client::new().get(url).send().await.unwrap();
    assert_eq!(
        page.status(),
        200,
        "the person's browser signs the broker in"
    );
    let mut retry = first.clone();
    retry["id"] = json!(2);
    retry["params"]["requestState"] = r["requestState"].clone();
    retry["params"]["inputResponses"] = json!({"signin": {"action": "accept"}});
    let (_, done) = rpc(&b, &key, &retry).await;
    assert_eq!(text(&done), "hi", "{done}");
    let seen = up.state.messages.lock().unwrap().clone();
    assert!(
        seen.iter()
            .all(|m| m["params"].get("inputResponses").is_none()),
        "the upstream never asked, so it is not handed the sign-in answer"
    );

    let no_url = call(
        3,
        "human__echo",
        json!({"text": "hi"}),
        json!({"elicitation": {}}),
    );
    b.broker
        .upstream()
        .sign_out(&b.broker.server("human").unwrap())
        .await
        .unwrap();
    let (_, plain) = rpc(&b, &key, &no_url).await;
    assert_eq!(
        plain["result"]["isError"], true,
        "without URL mode: an error result {plain}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_leaving_the_config_are_no_longer_listened_to_upstream() {
    let old = TestUpstream::start(UpstreamOptions::default()).await;
    let new = TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await;
    let b = TestBroker::start(json!({"mcp_servers": {
        "old": {"url": old.mcp_url}, "m": {"url": new.mcp_url}}}))
    .await;
    let key = api_key(&b).await;
    rpc(&b, &key, &modern(1, "tools/list", json!({}), json!({}))).await;
    let until = |what: &'static str, done: Box<dyn Fn() -> bool + Send>| async move {
        let wait = async {
            while !done() {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .unwrap_or_else(|_| panic!("{what} within 20 s"));
    };
    let (o, n) = (old.state.clone(), new.state.clone());
    until(
        "both listened to",
        Box::new(move || count(&o.counters.get_streams) == 1 && *n.listening.borrow() == 1),
    )
    .await;
    b.write_config(json!({"mcp_servers": {}})).await;
    let (o, n) = (old.state.clone(), new.state.clone());
    until(
        "both links closed",
        Box::new(move || o.sessions.lock().unwrap().is_empty() && *n.listening.borrow() == 0),
    )
    .await;
}
