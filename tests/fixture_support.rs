//! The shared fixtures themselves work (so other tests can trust them).

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use support::*;

const WAIT: Duration = Duration::from_secs(10);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn rpc(
    url: &str,
    token: Option<&str>,
    session: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut req = client()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    req.send().await.unwrap()
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

async fn client_credentials_token(up: &TestUpstream) -> String {
    let resp = client()
        .post(up.auth_server.token_url())
        .basic_auth("m2m-client", Some("m2m-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", &up.mcp_url),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn fixture_upstream_rejects_missing_token_with_resource_metadata() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let resp = rpc(
        &up.mcp_url,
        None,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    )
    .await;
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    let prm_url = format!("{}/.well-known/oauth-protected-resource/mcp", up.url);
    assert!(
        challenge.contains(&format!("resource_metadata=\"{prm_url}\"")),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"mcp:read\""), "{challenge}");
    let prm: Value = client()
        .get(&prm_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], up.mcp_url);
    assert_eq!(prm["authorization_servers"][0], up.as_url);
    let meta: Value = client()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            up.as_url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], up.as_url);
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(count(&up.counters().unauthorized), 1);
    assert_eq!(up.recorder().to_path("/mcp")[0].authorization(), None);
}

#[tokio::test]
async fn fixture_upstream_speaks_mcp_over_json_and_sse_with_a_client_credentials_token() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let token = client_credentials_token(&up).await;
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 1);
    for mode in [ResponseMode::Json, ResponseMode::Sse] {
        up.set_response(mode);
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
        let resp = rpc(&up.mcp_url, Some(&token), None, init).await;
        assert_eq!(resp.status(), 200);
        let session = resp.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            message(resp).await["result"]["protocolVersion"],
            "2025-06-18"
        );
        let note = rpc(
            &up.mcp_url,
            Some(&token),
            Some(&session),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await;
        assert_eq!(note.status(), 202);
        let list = message(
            rpc(
                &up.mcp_url,
                Some(&token),
                Some(&session),
                json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
            )
            .await,
        )
        .await;
        assert_eq!(list["result"]["tools"].as_array().unwrap().len(), 3);
        let add = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 2, "b": 3}}});
        assert_eq!(
            message(rpc(&up.mcp_url, Some(&token), Some(&session), add).await).await["result"]
                ["content"][0]["text"],
            "5"
        );
    }
    let seen = up.recorder().to_path("/mcp");
    assert!(seen
        .iter()
        .all(|r| r.authorization() == Some(&format!("Bearer {token}"))));
    let unknown = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "1999-01-01"}});
    assert_eq!(
        message(rpc(&up.mcp_url, Some(&token), None, unknown).await).await["result"]
            ["protocolVersion"],
        "2025-11-25"
    );
}

#[tokio::test]
async fn fixture_slow_stream_sends_each_event_only_when_released() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}});
    let resp = rpc(&up.mcp_url, None, None, init).await;
    let session = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "slow_stream", "arguments": {"steps": 2}, "_meta": {"progressToken": "p"}}});
    let resp = rpc(&up.mcp_url, None, Some(&session), call).await;
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    for step in 1..=2 {
        assert!(!seen.contains(&format!("\"progress\":{step}")));
        up.release_event();
        while !seen.contains(&format!("\"progress\":{step}")) {
            let chunk = tokio::time::timeout(WAIT, body.next())
                .await
                .expect("event arrives")
                .unwrap()
                .unwrap();
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        assert!(
            !seen.contains("streamed 2"),
            "the result must wait for the last event"
        );
    }
    while let Some(chunk) = tokio::time::timeout(WAIT, body.next()).await.unwrap() {
        seen.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    assert!(seen.contains("streamed 2"));
    assert_eq!(count(&up.counters().stream_events), 2);
}

#[tokio::test]
async fn fixture_broker_serves_its_gateway_on_a_random_port() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let broker = TestBroker::start(json!({"mcp_servers": {"demo": {"url": up.mcp_url}}})).await;
    let health: Value = client()
        .get(format!("{}/healthz", broker.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["port"], broker.port);
    assert!(broker.broker.config().server("demo").is_some());
    assert!(broker.browser.opened().is_empty());
}

#[test]
fn fixture_node_22_and_the_js_clients_are_installed() {
    let out = support::node::node_command()
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8(out.stdout).unwrap();
    assert!(
        support::node::node_major(&support::node::node_path()).unwrap() >= 22,
        "{version}"
    );
}

#[tokio::test]
async fn fixture_get_stream_carries_list_changed_and_delete_ends_the_session() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-03-26"}});
    let session = rpc(&up.mcp_url, None, None, init).await.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let stream = client()
        .get(&up.mcp_url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(count(&up.counters().get_streams), 1);
    up.notify_tools_changed();
    let mut body = stream.bytes_stream();
    let chunk = tokio::time::timeout(WAIT, body.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(std::str::from_utf8(&chunk)
        .unwrap()
        .contains("notifications/tools/list_changed"));
    let delete = client()
        .delete(&up.mcp_url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 200);
    let after = rpc(
        &up.mcp_url,
        None,
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}),
    )
    .await;
    assert_eq!(after.status(), 404);
    let no_get = TestUpstream::start(UpstreamOptions {
        get_stream: false,
        ..Default::default()
    })
    .await;
    assert_eq!(
        client().get(&no_get.mcp_url).send().await.unwrap().status(),
        405
    );
}

#[tokio::test]
async fn fixture_browser_follows_the_authorize_redirect_to_the_callback() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let browser = Browser::default();
    let callback = format!("{}/.well-known/oauth-protected-resource", up.url);
    let mut authorize = url::Url::parse(&format!("{}/authorize", up.as_url)).unwrap();
    authorize.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", "app"),
        ("redirect_uri", &callback),
        ("code_challenge", "abc"),
        ("code_challenge_method", "S256"),
        ("state", "s1"),
    ]);
    browser.opener().open(authorize.as_str()).unwrap();
    let done = tokio::time::timeout(WAIT, browser.wait_followed(1))
        .await
        .unwrap();
    assert_eq!(done[0].hops.len(), 2);
    assert!(
        done[0].hops[1].as_str().starts_with(&callback)
            && done[0].hops[1].query().unwrap().contains("state=s1")
    );
    assert_eq!(done[0].outcome.as_ref().unwrap().0, 200);
    assert_eq!(browser.opened().len(), 1);
}
