//! Resource subscriptions through the aggregate endpoint `/mcp`, in both eras on both sides: a
//! 2025 client's `resources/subscribe` and a 2026-07-28 client's `resourceSubscriptions` reach
//! the server that owns the URI in that server's era (a legacy server's own
//! `resources/subscribe`, a modern server's `subscriptions/listen`), the upstream hears of a URI
//! once however many clients watch it, and its updates reach only the clients that watch it.
//! Real broker, real upstreams of both eras, real sockets.

use crate::gateway_common;
use crate::support;

use std::time::Duration;

use gateway_common::*;
use mcp_auth_broker::protocol::{headers, meta, MODERN_VERSION};
use serde_json::{json, Value};
use support::modern::SUBSCRIPTION_ID;
use support::*;

fn rpc(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// The JSON-RPC methods an upstream received, in order.
fn methods(up: &TestUpstream) -> Vec<String> {
    let messages = up.state.messages.lock().unwrap();
    let names = messages.iter().filter_map(|m| m["method"].as_str());
    names.map(str::to_string).collect()
}

/// The `resourceSubscriptions` of the last `subscriptions/listen` an upstream received.
fn last_listen_uris(up: &TestUpstream) -> Value {
    let messages = up.state.messages.lock().unwrap();
    let listen = messages
        .iter()
        .rev()
        .find(|m| m["method"] == "subscriptions/listen")
        .expect("a subscriptions/listen");
    listen["params"]["notifications"]["resourceSubscriptions"].clone()
}

/// A legacy client's (un)subscribe of `uri` on session `sid`, answered `{}`.
async fn subscription(b: &TestBroker, key: &str, sid: &str, method: &str, uri: &str) {
    let (_, answer) = aggregate_rpc(b, key, Some(sid), rpc(7, method, json!({"uri": uri}))).await;
    assert_eq!(answer["result"], json!({}), "{method} {uri}: {answer}");
}

/// The next `notifications/resources/updated` on a stream.
async fn next_update(stream: &mut Messages) -> Value {
    loop {
        let m = stream.next().await;
        if m["method"] == "notifications/resources/updated" {
            return m;
        }
    }
}

/// Waits (at most 20 s) until `done` holds for the upstream's methods: the broker tells it
/// after the client has gone, so there is no answer to wait for.
async fn until(up: &TestUpstream, done: impl Fn(&[String]) -> bool) {
    let wait = async {
        while !done(&methods(up)) {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the upstream was told");
}

/// Waits (at most 20 s) until the broker follows a legacy upstream's GET stream, where its
/// updates come.
async fn followed(up: &TestUpstream) {
    let wait = async {
        while count(&up.counters().get_streams) == 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the broker follows the upstream's GET stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_clients_subscription_to_a_modern_servers_resource_rides_the_brokers_listen() {
    let up = TestUpstream::start(
        UpstreamOptions::default()
            .with_era(UpstreamEra::Modern)
            .with_catalog("m"),
    )
    .await;
    let b = TestBroker::start(json!({"mcp_servers": {"m": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let url = format!("{}/mcp", b.base_url);
    let (readme, note) = ("test://m/readme", "test://m/notes/1");
    let alice = aggregate_open(&b, &key).await;
    let bob = aggregate_open(&b, &key).await;
    let mut alice_stream = Messages::new(get_stream(&url, &key, &alice).await);
    let mut bob_stream = Messages::new(get_stream(&url, &key, &bob).await);

    subscription(&b, &key, &alice, "resources/subscribe", readme).await;
    subscription(&b, &key, &bob, "resources/subscribe", note).await;
    assert!(
        !methods(&up).contains(&"resources/subscribe".to_string()),
        "a 2026-07-28 server has no resources/subscribe"
    );
    assert_eq!(last_listen_uris(&up), json!([note, readme]));

    up.notify_resource_updated(readme);
    up.notify_resource_updated(note);
    let update = next_update(&mut alice_stream).await;
    assert_eq!(update["params"]["uri"], readme, "{update}");
    assert!(update["params"]["_meta"].get(SUBSCRIPTION_ID).is_none());
    let update = next_update(&mut bob_stream).await;
    assert_eq!(
        update["params"]["uri"], note,
        "bob watches only his: {update}"
    );

    subscription(&b, &key, &alice, "resources/unsubscribe", readme).await;
    assert_eq!(last_listen_uris(&up), json!([note]));
    up.notify_resource_updated(note);
    assert_eq!(next_update(&mut bob_stream).await["params"]["uri"], note);

    // A session that ends takes its subscriptions with it.
    let end = http()
        .delete(&url)
        .header("x-api-key", &key)
        .header("mcp-session-id", &bob)
        .send()
        .await
        .unwrap();
    assert_eq!(end.status(), 200);
    assert_eq!(
        last_listen_uris(&up),
        Value::Null,
        "nothing is watched any more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_server_hears_of_a_subscription_once_however_many_clients_share_it() {
    let up = TestUpstream::start(UpstreamOptions::default().with_catalog("old")).await;
    let b = TestBroker::start(json!({"mcp_servers": {"old": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let url = format!("{}/mcp", b.base_url);
    let uri = "test://old/readme";
    let alice = aggregate_open(&b, &key).await;
    let bob = aggregate_open(&b, &key).await;
    let mut bob_stream = Messages::new(get_stream(&url, &key, &bob).await);
    let subscribes =
        |up: &TestUpstream, method: &str| methods(up).iter().filter(|m| *m == method).count();

    subscription(&b, &key, &alice, "resources/subscribe", uri).await;
    subscription(&b, &key, &bob, "resources/subscribe", uri).await;
    subscription(&b, &key, &bob, "resources/subscribe", uri).await;
    assert_eq!(subscribes(&up, "resources/subscribe"), 1, "once for both");
    subscription(&b, &key, &alice, "resources/unsubscribe", uri).await;
    assert_eq!(
        subscribes(&up, "resources/unsubscribe"),
        0,
        "bob still watches"
    );

    followed(&up).await;
    up.notify_resource_updated(uri);
    assert_eq!(next_update(&mut bob_stream).await["params"]["uri"], uri);
    subscription(&b, &key, &bob, "resources/unsubscribe", uri).await;
    assert_eq!(
        subscribes(&up, "resources/unsubscribe"),
        1,
        "the last one left"
    );
}

/// A modern client's request declaring nothing, as a conforming client sends it.
async fn modern(
    b: &TestBroker,
    key: &str,
    id: u64,
    method: &str,
    params: Value,
) -> reqwest::Response {
    let body = rpc(id, method, meta::with_modern_meta(params, &json!({})));
    let mut req = http()
        .post(format!("{}/mcp", b.base_url))
        .header("accept", ACCEPT)
        .header("x-api-key", key)
        .header(headers::PROTOCOL_VERSION, MODERN_VERSION);
    for (name, value) in headers::standard(&body) {
        req = req.header(name, value.as_ref());
    }
    let r = req.json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_listen_watches_the_resources_it_names_on_the_servers_of_both_eras_that_own_them()
{
    let new = TestUpstream::start(
        UpstreamOptions::default()
            .with_era(UpstreamEra::Modern)
            .with_catalog("m"),
    )
    .await;
    let old = TestUpstream::start(UpstreamOptions::default().with_catalog("old")).await;
    let nosub = TestUpstream::start(UpstreamOptions::default().with_catalog("nosub")).await;
    let b = TestBroker::start(json!({"mcp_servers": {"m": {"url": new.mcp_url},
        "old": {"url": old.mcp_url}, "plain": {"url": nosub.mcp_url}}}))
    .await;
    let key = api_key(&b).await;
    let (m, o, plain) = (
        "test://m/readme",
        "test://old/readme",
        "test://nosub/readme",
    );
    let filter = json!({"resourceSubscriptions": [m, o, plain, "x:/nobody", m],
        "toolsListChanged": true});
    modern(&b, &key, 1, "resources/list", json!({})).await;
    followed(&old).await;
    let listen = json!({"notifications": filter});
    let mut stream = Messages::new(modern(&b, &key, 9, "subscriptions/listen", listen).await);
    let ack = stream.next().await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true, "resourceSubscriptions": [m, o]}),
        "only what a server that owns it accepted"
    );
    assert_eq!(last_listen_uris(&new), json!([m]));
    assert!(methods(&old).contains(&"resources/subscribe".to_string()));
    assert!(!methods(&nosub).contains(&"resources/subscribe".to_string()));

    // The legacy catalog announces an update as it is subscribed to; then the modern one.
    let first = next_update(&mut stream).await;
    assert_eq!(first["params"]["uri"], o, "{first}");
    assert_eq!(first["params"]["_meta"][SUBSCRIPTION_ID], 9, "{first}");
    new.notify_resource_updated(m);
    let second = next_update(&mut stream).await;
    assert_eq!(second["params"]["uri"], m, "{second}");
    assert_eq!(second["params"]["_meta"][SUBSCRIPTION_ID], 9, "{second}");

    // Closing the stream ends the subscriptions upstream.
    let listens = |m: &[String]| m.iter().filter(|x| *x == "subscriptions/listen").count();
    let before = listens(&methods(&new));
    drop(stream);
    until(&old, |m| m.contains(&"resources/unsubscribe".to_string())).await;
    until(&new, |m| listens(m) > before).await;
    assert_eq!(last_listen_uris(&new), Value::Null);
}
