//! The official-SDK JS upstream (`tests/js/modern_server.mjs`, through `support::jsserver`)
//! behaves as the fixture promises: modern for the broker's client in both of its modes, MRTR
//! for modern clients, a real session with elicitation for legacy ones, `add_tool` announced on
//! listen streams and GET streams, `--modern-only` refusing `initialize`.

mod support;

use mcp_auth_broker::protocol::client::Client;
use mcp_auth_broker::protocol::{codes, Era, MODERN_VERSION};
use serde_json::{json, Value};
use support::modern::SUBSCRIPTION_ID;
use support::wire::*;
use support::*;

#[tokio::test]
async fn the_broker_client_sees_the_sdk_server_as_modern_in_both_of_its_modes() {
    for server in [JsServer::dual().await, JsServer::modern_only().await] {
        let caps = json!({"elicitation": {}});
        let c = Client::connect(HttpTransport::new(&server.url), caps, WAIT)
            .await
            .unwrap();
        assert_eq!(
            (c.era(), c.version()),
            (Era::Modern, MODERN_VERSION),
            "{}",
            server.url
        );
        assert_eq!(c.server_info()["name"], "sdk-modern-server");
        let list = c
            .request("tools/list", json!({}), &mut |_| {})
            .await
            .unwrap();
        let names: Vec<&str> = list["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(names, ["echo", "ask_user", "add_tool"]);
        let echo = json!({"name": "echo", "arguments": {"text": "hi"}});
        let echo = c.request("tools/call", echo, &mut |_| {}).await.unwrap();
        assert_eq!(echo["result"]["content"][0]["text"], "hi");
    }
}

#[tokio::test]
async fn the_sdk_server_asks_a_modern_client_with_input_required_and_completes_the_retry() {
    let server = JsServer::modern_only().await;
    let c = Client::connect(
        HttpTransport::new(&server.url),
        json!({"elicitation": {}}),
        WAIT,
    )
    .await
    .unwrap();
    let args = json!({"name": "ask_user", "arguments": {"question": "Deploy?"}});
    let first = c
        .request("tools/call", args.clone(), &mut |_| {})
        .await
        .unwrap();
    let r = &first["result"];
    assert_eq!(r["resultType"], "input_required");
    let ask = &r["inputRequests"]["confirm"];
    assert_eq!(ask["method"], "elicitation/create");
    assert_eq!(ask["params"]["message"], "Deploy?");
    let mut retry = args;
    retry["inputResponses"] =
        json!({"confirm": {"action": "accept", "content": {"answer": "yes"}}});
    if let Some(state) = r.get("requestState") {
        retry["requestState"] = state.clone();
    }
    let done = c.request("tools/call", retry, &mut |_| {}).await.unwrap();
    assert_eq!(done["result"]["resultType"], "complete");
    assert_eq!(done["result"]["content"][0]["text"], "accept: yes");
}

#[tokio::test]
async fn the_sdk_server_announces_an_added_tool_on_listen_streams_and_legacy_get_streams() {
    let server = JsServer::dual().await;
    let session = legacy_session(&server.url).await;
    let get = http_client()
        .get(&server.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    let mut rx = listen(&server.url, 9, json!({"toolsListChanged": true})).await;
    let ack = next_message(&mut rx).await;
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(ack["params"]["notifications"]["toolsListChanged"], true);

    let add = modern_request(
        2,
        "tools/call",
        json!({"name": "add_tool", "arguments": {"name": "extra"}}),
        false,
    );
    let added = read_message(modern_post(&server.url, &add, &[]).await).await;
    assert_eq!(added["result"]["content"][0]["text"], "added extra");
    let note = next_message(&mut rx).await;
    assert_eq!(note["method"], "notifications/tools/list_changed");
    assert_eq!(note["params"]["_meta"][SUBSCRIPTION_ID], 9);
    let legacy_note = first_on_get_stream(get).await;
    assert_eq!(legacy_note["method"], "notifications/tools/list_changed");

    let list = modern_request(3, "tools/list", json!({}), false);
    let tools = read_message(modern_post(&server.url, &list, &[]).await).await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"extra"), "{names:?}");
}

#[tokio::test]
async fn the_dual_sdk_server_gives_a_legacy_client_a_session_with_an_elicitation_request() {
    let server = JsServer::dual().await;
    let session = legacy_session(&server.url).await;
    let (asked, result) = legacy_ask_user(&server.url, &session, "legacy-yes").await;
    assert_eq!(asked["params"]["message"], "Deploy?");
    assert_eq!(result["content"][0]["text"], "accept: legacy-yes");
    let c = Client::connect(HttpTransport::new(&server.url), json!({}), WAIT)
        .await
        .unwrap();
    assert_eq!(
        c.era(),
        Era::Modern,
        "a dual-era client still picks the modern era"
    );
}

#[tokio::test]
async fn the_modern_only_sdk_server_refuses_initialize_naming_2026_07_28() {
    let server = JsServer::modern_only().await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}});
    let resp = http_client()
        .post(&server.url)
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("mcp-session-id").is_none());
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"]["code"], codes::UNSUPPORTED_PROTOCOL_VERSION);
    assert_eq!(e["error"]["data"]["supported"], json!([MODERN_VERSION]));
    let get = http_client()
        .get(&server.url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
}

#[tokio::test]
async fn a_stopped_js_server_refuses_connections() {
    let server = JsServer::dual().await;
    let url = server.url.clone();
    server.stop().await;
    let body = modern_request(1, "server/discover", json!({}), false);
    assert!(http_client().post(&url).json(&body).send().await.is_err());
}
