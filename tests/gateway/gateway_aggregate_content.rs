//! The aggregate endpoint `/mcp` beyond tools: prompts, resources, resource templates,
//! subscriptions and completions, each routed to the server that owns the name or URI. Real
//! broker, two real upstreams (each marks its answers with its label), real sockets.

use crate::gateway_common;
use crate::support;

use std::time::Duration;

use gateway_common::*;
use serde_json::{json, Value};
use support::*;

async fn two_catalogs() -> (TestUpstream, TestUpstream, TestBroker) {
    let alpha = TestUpstream::start(UpstreamOptions::default().with_catalog("alpha")).await;
    let beta = TestUpstream::start(
        UpstreamOptions::default()
            .with_catalog("beta")
            .with_response(ResponseMode::Sse),
    )
    .await;
    let b = TestBroker::start(json!({"mcp_servers": {
        "alpha": {"url": alpha.mcp_url}, "beta": {"url": beta.mcp_url}}}))
    .await;
    (alpha, beta, b)
}

fn rpc(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn methods(up: &TestUpstream) -> Vec<String> {
    up.state
        .messages
        .lock()
        .unwrap()
        .iter()
        .filter_map(|m| m["method"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_resources_templates_and_completions_reach_the_server_that_owns_them() {
    let (alpha, beta, b) = two_catalogs().await;
    let key = api_key(&b).await;
    let init: Value = post(&format!("{}/mcp", b.base_url), &key, None, &initialize())
        .await
        .json()
        .await
        .unwrap();
    let caps = &init["result"]["capabilities"];
    assert_eq!(caps["resources"]["subscribe"], true, "{caps}");
    assert!(caps["completions"].is_object(), "{caps}");

    let sid = aggregate_open(&b, &key).await;
    let ask = |id, method: &'static str, params| {
        let (b, key, sid) = (&b, &key, &sid);
        async move {
            aggregate_rpc(b, key, Some(sid), rpc(id, method, params))
                .await
                .1
        }
    };
    let prompts = ask(2, "prompts/list", json!({})).await;
    let mut names: Vec<&str> = prompts["result"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["alpha__greet", "beta__greet"], "{prompts}");
    let got = ask(
        3,
        "prompts/get",
        json!({"name": "beta__greet", "arguments": {"who": "Ann"}}),
    )
    .await;
    assert_eq!(
        got["result"]["messages"][0]["content"]["text"], "Hello Ann from beta",
        "{got}"
    );
    assert!(methods(&beta).contains(&"prompts/get".to_string()));
    assert!(!methods(&alpha).contains(&"prompts/get".to_string()));

    let listed = ask(4, "resources/list", json!({})).await;
    let uris: Vec<&str> = listed["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert!(
        uris.contains(&"test://alpha/readme") && uris.contains(&"test://beta/readme"),
        "{listed}"
    );
    let read = ask(5, "resources/read", json!({"uri": "test://beta/readme"})).await;
    assert_eq!(
        read["result"]["contents"][0]["text"], "beta: test://beta/readme",
        "{read}"
    );

    let done = ask(6, "completion/complete", json!({"ref": {"type": "ref/prompt", "name": "beta__greet"}, "argument": {"name": "who", "value": "A"}})).await;
    assert_eq!(
        done["result"]["completion"]["values"],
        json!(["beta:greet"]),
        "the prompt reference reaches beta under its own name: {done}"
    );
    let done = ask(7, "completion/complete", json!({"ref": {"type": "ref/resource", "uri": "test://alpha/notes/{id}"}, "argument": {"name": "id", "value": "1"}})).await;
    assert_eq!(
        done["result"]["completion"]["values"],
        json!(["alpha:test://alpha/notes/{id}"]),
        "{done}"
    );
    let wrong = ask(8, "completion/complete", json!({"ref": {"type": "ref/prompt", "name": "nope__greet"}, "argument": {"name": "who", "value": ""}})).await;
    assert_eq!(wrong["error"]["code"], -32602, "{wrong}");
    assert!(
        wrong["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no server named \"nope\""),
        "{wrong}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uri_no_list_named_is_routed_by_the_templates_and_an_unknown_one_is_not_found() {
    let (alpha, beta, b) = two_catalogs().await;
    let key = api_key(&b).await;
    let sid = aggregate_open(&b, &key).await;
    // No list was asked in this session: the broker lists resources and templates itself.
    let (_, read) = aggregate_rpc(
        &b,
        &key,
        Some(&sid),
        rpc(2, "resources/read", json!({"uri": "test://alpha/notes/7"})),
    )
    .await;
    assert_eq!(
        read["result"]["contents"][0]["text"], "alpha: test://alpha/notes/7",
        "{read}"
    );
    let reads = |up: &TestUpstream| {
        methods(up)
            .iter()
            .filter(|m| *m == "resources/read")
            .count()
    };
    assert_eq!((reads(&alpha), reads(&beta)), (1, 0));
    let (_, missing) = aggregate_rpc(
        &b,
        &key,
        Some(&sid),
        rpc(3, "resources/read", json!({"uri": "test://gamma/notes/1"})),
    )
    .await;
    assert_eq!(missing["error"]["code"], -32002, "{missing}");
    assert!(
        missing["error"]["message"]
            .as_str()
            .unwrap()
            .contains("list resources again"),
        "{missing}"
    );
    assert_eq!(
        (reads(&alpha), reads(&beta)),
        (1, 0),
        "nothing unknown is forwarded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_reaches_the_owning_server_and_its_updates_reach_the_clients_stream() {
    let (alpha, beta, b) = two_catalogs().await;
    let key = api_key(&b).await;
    let sid = aggregate_open(&b, &key).await;
    let mut stream = Messages::new(get_stream(&format!("{}/mcp", b.base_url), &key, &sid).await);
    aggregate_rpc(&b, &key, Some(&sid), rpc(2, "resources/list", json!({}))).await;
    let listening = async {
        while count(&alpha.counters().get_streams) == 0 || count(&beta.counters().get_streams) == 0
        {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), listening)
        .await
        .expect("the broker listens to both upstreams");

    let (_, subscribed) = aggregate_rpc(
        &b,
        &key,
        Some(&sid),
        rpc(
            3,
            "resources/subscribe",
            json!({"uri": "test://beta/readme"}),
        ),
    )
    .await;
    assert_eq!(subscribed["result"], json!({}), "{subscribed}");
    assert!(methods(&beta).contains(&"resources/subscribe".to_string()));
    assert!(!methods(&alpha).contains(&"resources/subscribe".to_string()));

    let update = loop {
        let m = stream.next().await;
        if m["method"] == "notifications/resources/updated" {
            break m;
        }
    };
    assert_eq!(update["params"]["uri"], "test://beta/readme");

    let (_, gone) = aggregate_rpc(
        &b,
        &key,
        Some(&sid),
        rpc(
            4,
            "resources/unsubscribe",
            json!({"uri": "test://beta/readme"}),
        ),
    )
    .await;
    assert_eq!(gone["result"], json!({}), "{gone}");
    assert!(methods(&beta).contains(&"resources/unsubscribe".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_on_a_server_without_subscriptions_is_refused_by_name_and_not_sent() {
    let up = TestUpstream::start(UpstreamOptions::default().with_catalog("nosub")).await;
    let b = TestBroker::start(json!({"mcp_servers": {"plain": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let sid = aggregate_open(&b, &key).await;
    let (_, refused) = aggregate_rpc(
        &b,
        &key,
        Some(&sid),
        rpc(
            2,
            "resources/subscribe",
            json!({"uri": "test://nosub/readme"}),
        ),
    )
    .await;
    assert_eq!(refused["error"]["code"], -32601, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server \"plain\" does not offer resource subscriptions"),
        "{refused}"
    );
    assert!(!methods(&up).contains(&"resources/subscribe".to_string()));
    let (_, read) = aggregate_rpc(
        &b,
        &key,
        Some(&sid),
        rpc(3, "resources/read", json!({"uri": "test://nosub/readme"})),
    )
    .await;
    assert_eq!(
        read["result"]["contents"][0]["text"], "nosub: test://nosub/readme",
        "{read}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_uri_two_servers_list_is_refused_naming_both_and_reaches_neither() {
    let one = TestUpstream::start(UpstreamOptions::default().with_catalog("same")).await;
    let two = TestUpstream::start(UpstreamOptions::default().with_catalog("same")).await;
    let b = TestBroker::start(json!({"mcp_servers": {
        "one": {"url": one.mcp_url}, "two": {"url": two.mcp_url}}}))
    .await;
    let key = api_key(&b).await;
    let sid = aggregate_open(&b, &key).await;
    let (_, list) = aggregate_rpc(&b, &key, Some(&sid), rpc(2, "resources/list", json!({}))).await;
    assert!(list["result"]["resources"].is_array(), "{list}");
    for (id, method) in [(3, "resources/read"), (4, "resources/subscribe")] {
        let (_, answer) = aggregate_rpc(
            &b,
            &key,
            Some(&sid),
            rpc(id, method, json!({"uri": "test://same/readme"})),
        )
        .await;
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("\"one\", \"two\"") && message.contains("/SERVER/mcp"),
            "{method}: {answer}"
        );
    }
    for up in [&one, &two] {
        let routed = methods(up)
            .into_iter()
            .filter(|m| m == "resources/read" || m == "resources/subscribe")
            .count();
        assert_eq!(routed, 0, "nothing shadowed is forwarded");
    }
}
