//! The aggregate endpoint `/mcp` checks a 2026-07-28 request in the order the spec gives a
//! server: the `MCP-Protocol-Version` header present (`-32020`), the `_meta` every request must
//! carry present (`-32602`, HTTP 400), header and body equal (`-32020`), the version served
//! (`-32022` listing what `server/discover` lists). Every refusal answers the request's id.
//! Real broker, real upstream, real sockets.

use crate::gateway_common;
use crate::support;

use gateway_common::*;
use mcp_auth_broker::protocol::{codes, headers, meta, MODERN_VERSION};
use serde_json::{json, Value};
use support::*;

/// POSTs `body` to `/mcp` with the standard headers of a modern request and `version` as its
/// `MCP-Protocol-Version` header (none when `None`); returns the status and the JSON body.
async fn send(b: &TestBroker, key: &str, body: &Value, version: Option<&str>) -> (u16, Value) {
    let mut req = http()
        .post(format!("{}/mcp", b.base_url))
        .header("accept", ACCEPT)
        .header("x-api-key", key);
    if let Some(v) = version {
        req = req.header(headers::PROTOCOL_VERSION, v);
    }
    for (name, value) in headers::standard(body) {
        req = req.header(name, value.as_ref());
    }
    let r = req.json(body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn discover(id: u64, meta: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "server/discover", "params": {"_meta": meta}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_request_without_its_version_or_capabilities_in_meta_is_a_400_invalid_params() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"a": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let version = Some(MODERN_VERSION);
    let caps = (meta::CLIENT_CAPABILITIES, json!({}));
    let info = (meta::CLIENT_INFO, json!({"name": "t", "version": "1"}));
    let ver = (meta::PROTOCOL_VERSION, json!(MODERN_VERSION));
    let no_meta = json!({"jsonrpc": "2.0", "id": 101, "method": "server/discover", "params": {}});
    let cases = [
        (no_meta, "no _meta"),
        (
            discover(102, json!({caps.0: caps.1, info.0: info.1})),
            "no protocolVersion",
        ),
        (
            discover(104, json!({ver.0: ver.1, info.0: info.1})),
            "no clientCapabilities",
        ),
        (
            discover(106, json!({ver.0: ver.1, caps.0: null})),
            "null clientCapabilities",
        ),
    ];
    for (body, why) in cases {
        let (status, e) = send(&b, &key, &body, version).await;
        assert_eq!(status, 400, "{why}: {e}");
        assert_eq!(e["error"]["code"], codes::INVALID_PARAMS, "{why}: {e}");
        assert_eq!(e["id"], body["id"], "{why}: the request's id");
    }
    let lean = discover(105, json!({ver.0: ver.1, caps.0: caps.1}));
    let (status, answer) = send(&b, &key, &lean, version).await;
    assert_eq!(status, 200, "clientInfo is optional: {answer}");
    assert!(answer["result"]["supportedVersions"].is_array(), "{answer}");

    let full = discover(107, json!({ver.0: ver.1, caps.0: caps.1, info.0: info.1}));
    let (status, e) = send(&b, &key, &full, None).await;
    assert_eq!(status, 400, "no MCP-Protocol-Version header");
    assert_eq!(e["error"]["code"], codes::HEADER_MISMATCH, "{e}");
    assert_eq!(e["id"], 107);
    assert_eq!(
        count(&up.counters().tools_list),
        0,
        "nothing reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_version_is_refused_under_the_requests_id_listing_what_discover_lists() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"a": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let caps = json!({});
    let full = |id, version: &str| {
        discover(
            id,
            json!({meta::PROTOCOL_VERSION: version, meta::CLIENT_CAPABILITIES: caps}),
        )
    };
    let (status, discovered) =
        send(&b, &key, &full(201, MODERN_VERSION), Some(MODERN_VERSION)).await;
    assert_eq!(status, 200, "{discovered}");
    let listed = discovered["result"]["supportedVersions"]
        .as_array()
        .unwrap()
        .clone();

    let (status, e) = send(&b, &key, &full(301, "v999.0.0"), Some("v999.0.0")).await;
    assert_eq!(status, 400);
    assert_eq!(
        e["error"]["code"],
        codes::UNSUPPORTED_PROTOCOL_VERSION,
        "{e}"
    );
    assert_eq!(e["id"], 301, "the request's id, not null: {e}");
    assert_eq!(e["error"]["data"]["requested"], "v999.0.0");
    let supported = e["error"]["data"]["supported"].as_array().unwrap();
    assert!(
        !supported.is_empty() && supported.iter().all(|v| listed.contains(v)),
        "{e}"
    );

    let (status, e) = send(&b, &key, &full(302, "v999.0.0"), Some(MODERN_VERSION)).await;
    assert_eq!(status, 400, "header unlike _meta");
    assert_eq!(e["error"]["code"], codes::HEADER_MISMATCH, "{e}");
    assert_eq!(e["id"], 302);
}

/// A modern `tools/call` of `name` whose `_meta` has the client's own keys beside the protocol's.
fn meta_call(id: u64, name: &str) -> Value {
    let own = json!({"span": [1, "é"]});
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name,
        "arguments": {}, "_meta": {meta::PROTOCOL_VERSION: MODERN_VERSION, "progressToken": "p-7",
        meta::CLIENT_CAPABILITIES: {"elicitation": {}}, meta::CLIENT_INFO: {"name": "client"},
        "example.com/trace": own}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_calls_own_meta_reaches_each_upstream_and_the_protocols_meta_is_the_brokers() {
    let modern =
        TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await;
    let legacy = TestUpstream::start(UpstreamOptions::default()).await;
    let servers = json!({"m": {"url": modern.mcp_url}, "l": {"url": legacy.mcp_url}});
    let b = TestBroker::start(json!({ "mcp_servers": servers })).await;
    let key = api_key(&b).await;
    for (id, server) in [(1, "m"), (2, "l")] {
        let body = meta_call(id, &format!("{server}__meta"));
        let (status, answer) = send(&b, &key, &body, Some(MODERN_VERSION)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
        let text = answer["result"]["content"][0]["text"].as_str().unwrap();
        let got: Value = serde_json::from_str(text).unwrap();
        assert_eq!(got["progressToken"], "p-7", "{server}: {got}");
        assert_eq!(got["example.com/trace"], json!({"span": [1, "é"]}), "{got}");
        let protocol: Vec<&String> = got
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| meta::is_protocol_key(k))
            .collect();
        if server == "m" {
            // Upstream the broker is the client: its own version, capabilities and info.
            assert_eq!(got[meta::PROTOCOL_VERSION], MODERN_VERSION, "{got}");
            assert_eq!(got[meta::CLIENT_INFO]["name"], "mcp-auth-broker", "{got}");
            assert!(got[meta::CLIENT_CAPABILITIES].is_object(), "{got}");
        } else {
            assert!(
                protocol.is_empty(),
                "a 2025-11-25 upstream gets no protocol _meta: {got}"
            );
        }
    }

    // An `Mcp-Name` header unlike the body's name is refused, and nothing goes upstream.
    let calls = count(&modern.counters().tools_call);
    let body = meta_call(3, "m__meta");
    let r = http()
        .post(format!("{}/mcp", b.base_url))
        .header("accept", ACCEPT)
        .header("x-api-key", &key)
        .header(headers::PROTOCOL_VERSION, MODERN_VERSION)
        .header(headers::METHOD, "tools/call")
        .header(headers::NAME, "m__other")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], codes::HEADER_MISMATCH, "{e}");
    assert_eq!(e["id"], 3, "{e}");
    assert_eq!(
        count(&modern.counters().tools_call),
        calls,
        "nothing reached the upstream"
    );
}

/// Once the broker speaks 2026-07-28 to a server (its link is open and its tools listed), a
/// modern client's call goes through under the client's own id and its answer comes back as
/// the upstream wrote it; an `input_required` answer is still read and wrapped in the broker's
/// own `requestState`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_call_to_a_modern_server_goes_through_under_the_clients_own_id() {
    let modern =
        TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await;
    let b = TestBroker::start(json!({"mcp_servers": {"m": {"url": modern.mcp_url}}})).await;
    let key = api_key(&b).await;
    let mut seen = Vec::new();
    for id in [json!(1), json!("call-é-2"), json!(3)] {
        let mut body = meta_call(0, "m__request_id");
        body["id"] = id.clone();
        let (status, answer) = send(&b, &key, &body, Some(MODERN_VERSION)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["id"], id, "the client's id comes back: {answer}");
        assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
        let text = answer["result"]["content"][0]["text"].as_str().unwrap();
        seen.push(serde_json::from_str::<Value>(text).unwrap());
    }
    // The first call opened the link on its own route, under the link's own id.
    assert_ne!(seen[0], json!(1), "{seen:?}");
    assert_eq!(seen[1..], [json!("call-é-2"), json!(3)], "{seen:?}");

    let mut ask = meta_call(4, "m__ask_user");
    ask["params"]["arguments"] = json!({"question": "ok?"});
    let (status, answer) = send(&b, &key, &ask, Some(MODERN_VERSION)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["id"], 4, "{answer}");
    assert_eq!(answer["result"]["resultType"], "input_required", "{answer}");
    let state = answer["result"]["requestState"].as_str().unwrap();
    assert!(state.contains('.'), "the broker's own state: {state}");
}
