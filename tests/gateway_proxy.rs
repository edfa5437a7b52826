//! The MCP proxy at `/{server}/mcp` over real sockets: streaming, header hygiene, the 401
//! challenge, audience binding, body caps and the answers when the upstream cannot be used.

mod support;

use std::time::Duration;

use mcp_auth_broker::broker::Event;
use mcp_auth_broker::issuer::{unix_now, CodeRequest};
use serde_json::{json, Value};
use support::*;

const ACCEPT: &str = "application/json, text/event-stream";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn config(servers: Value) -> Value {
    json!({ "mcp_servers": servers })
}

async fn api_key(b: &TestBroker) -> String {
    b.broker
        .issuer()
        .create_api_key("test script", None)
        .unwrap()
        .1
        .expose()
        .to_string()
}

/// A broker access token for `server`, minted through the issuer's own bookkeeping.
fn oauth_token(b: &TestBroker, server: &str) -> String {
    let client = b
        .broker
        .issuer()
        .register(
            mcp_auth_broker::issuer::RegistrationRequest {
                redirect_uris: vec!["http://127.0.0.1:9/cb".into()],
                client_name: Some("Test client".into()),
                ..Default::default()
            },
            unix_now(),
        )
        .unwrap()
        .unwrap();
    let code = b.broker.issuer().issue_code(
        CodeRequest {
            client_id: client.client_id.clone(),
            server: server.into(),
            redirect_uri: "http://127.0.0.1:9/cb".into(),
            code_challenge: CHALLENGE.into(),
            scope: None,
        },
        unix_now(),
    );
    let tokens = b
        .broker
        .issuer()
        .exchange_code(
            code.expose(),
            &client.client_id,
            Some("http://127.0.0.1:9/cb"),
            Some(VERIFIER),
            None,
            unix_now(),
        )
        .unwrap()
        .unwrap();
    tokens.access_token.expose().to_string()
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
}

async fn post(url: &str, key: &str, session: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = http()
        .post(url)
        .header("accept", ACCEPT)
        .header("content-type", "application/json")
        .header("x-api-key", key)
        .header("mcp-protocol-version", "2025-11-25");
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    req.json(body).send().await.unwrap()
}

async fn open_session(url: &str, key: &str) -> String {
    let r = post(url, key, None, &initialize()).await;
    assert_eq!(r.status(), 200);
    let sid = r
        .headers()
        .get("mcp-session-id")
        .expect("session id passed through")
        .to_str()
        .unwrap()
        .to_string();
    let _ = r.text().await;
    let n = post(
        url,
        key,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(
        n.status(),
        202,
        "notifications are answered 202 with no body"
    );
    sid
}

#[tokio::test]
async fn sse_events_reach_the_client_before_the_upstream_response_finishes() {
    let up = TestUpstream::start(UpstreamOptions::default().with_response(ResponseMode::Sse)).await;
    let b = TestBroker::start(config(json!({"demo": {"url": up.mcp_url}}))).await;
    let key = api_key(&b).await;
    let url = b.client_url("demo");
    let sid = open_session(&url, &key).await;
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "slow_stream", "arguments": {"steps": 2}, "_meta": {"progressToken": "p"}}});
    let mut response = post(&url, &key, Some(&sid), &call).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    up.release_event();
    while !seen.contains("\"progress\":1") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("first event crosses the broker while the upstream is still streaming")
            .unwrap()
            .expect("stream still open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        !seen.contains("streamed"),
        "the result cannot have arrived: the upstream has not finished"
    );
    assert_eq!(count(&up.counters().stream_events), 1);
    up.release_event();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), response.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        seen.contains("\"progress\":2") && seen.contains("streamed 2"),
        "{seen}"
    );
}

#[tokio::test]
async fn client_credentials_cookies_and_hop_headers_never_reach_the_upstream() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(config(json!({"demo": {"url": up.mcp_url}}))).await;
    let key = api_key(&b).await;
    let url = b.client_url("demo");
    let r = http()
        .post(&url)
        .header("accept", ACCEPT)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .header("cookie", "session=secret-cookie")
        .header("x-forwarded-for", "10.0.0.1")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("set-cookie").is_none());
    let seen = up.recorder().to_path("/mcp");
    let last = seen.last().unwrap();
    assert_eq!(
        last.authorization(),
        None,
        "the broker's credential must never be passed through"
    );
    assert_eq!(last.header("cookie"), None);
    assert_eq!(last.header("x-forwarded-for"), None);
    assert_eq!(last.header("mcp-protocol-version"), Some("2025-11-25"));
    assert_eq!(last.header("accept"), Some(ACCEPT));
}

#[tokio::test]
async fn requests_without_a_valid_token_get_401_with_resource_metadata_for_the_host_used() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(config(json!({"demo": {"url": up.mcp_url}}))).await;
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("http://{host}:{}/demo/mcp", b.port);
        let r = http()
            .post(&url)
            .header("host", format!("{host}:{}", b.port))
            .json(&initialize())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let challenge = r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(challenge, format!("Bearer resource_metadata=\"http://{host}:{}/.well-known/oauth-protected-resource/demo/mcp\"", b.port));
        let bad = http()
            .post(&url)
            .header("host", format!("{host}:{}", b.port))
            .bearer_auth("not-a-broker-token")
            .json(&initialize())
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 401);
        assert!(bad.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\""));
        let prm: Value = http()
            .get(format!(
                "http://{host}:{}/.well-known/oauth-protected-resource/demo/mcp",
                b.port
            ))
            .header("host", format!("{host}:{}", b.port))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            prm["resource"], url,
            "PRM resource is byte-identical to the URL the client used"
        );
        assert_eq!(
            prm["authorization_servers"][0],
            format!("http://{host}:{}", b.port)
        );
    }
    assert_eq!(
        up.recorder().to_path("/mcp").len(),
        0,
        "nothing unauthenticated reaches the upstream"
    );
    let missing = http()
        .get(format!(
            "{}/.well-known/oauth-protected-resource/nope/mcp",
            b.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.json::<Value>().await.unwrap()["error_description"]
        .as_str()
        .unwrap()
        .contains("nope"));
}

#[tokio::test]
async fn an_api_key_with_no_upstream_token_yet_gets_401_with_resource_metadata_never_500() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(config(
        json!({"demo": {"url": up.mcp_url, "auth_type": "oauth2"}}),
    ))
    .await;
    let key = api_key(&b).await;
    let r = post(&b.client_url("demo"), &key, None, &initialize()).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"].to_str().unwrap(),
        format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/demo/mcp\"",
            b.base_url
        )
    );
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("\"demo\" needs sign-in"),
        "{body}"
    );
}

#[tokio::test]
async fn an_oauth_client_with_no_upstream_token_gets_a_tool_error_naming_the_server_and_one_event()
{
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(config(
        json!({"demo": {"url": up.mcp_url, "auth_type": "oauth2"}}),
    ))
    .await;
    let mut events = b.broker.events();
    let token = oauth_token(&b, "demo");
    let url = b.client_url("demo");
    let send = |body: Value| {
        http()
            .post(&url)
            .header("accept", ACCEPT)
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let init = send(initialize()).await.unwrap();
    assert_eq!(init.status(), 200);
    assert!(
        init.headers().get("www-authenticate").is_none(),
        "the upstream's challenge never leaks"
    );
    let init: Value = init.json().await.unwrap();
    assert!(
        init["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"demo\" needs sign-in"),
        "{init}"
    );
    assert!(
        init["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Sign in from the tray"),
        "{init}"
    );
    let call: Value = send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}})).await.unwrap().json().await.unwrap();
    assert_eq!(call["id"], 2);
    assert_eq!(call["result"]["isError"], true);
    assert!(call["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("demo"));
    let first = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(Event::NeedsSignIn { server }) = events.recv().await {
                return server;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(first.as_str(), "demo");
    assert!(
        !matches!(events.try_recv(), Ok(Event::NeedsSignIn { .. })),
        "the event is sent once per change, not per request"
    );
}

#[tokio::test]
async fn a_token_for_one_server_is_rejected_at_another() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(config(
        json!({"alpha": {"url": up.mcp_url}, "beta": {"url": up.mcp_url}}),
    ))
    .await;
    let token = oauth_token(&b, "alpha");
    let ok = http()
        .post(b.client_url("alpha"))
        .header("accept", ACCEPT)
        .bearer_auth(&token)
        .json(&initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let other = http()
        .post(b.client_url("beta"))
        .header("accept", ACCEPT)
        .bearer_auth(&token)
        .json(&initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 401);
    assert!(other.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("/.well-known/oauth-protected-resource/beta/mcp"));
}

#[tokio::test]
async fn bodies_over_the_cap_get_413_and_never_reach_the_upstream() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(config(json!({"demo": {"url": up.mcp_url}}))).await;
    let key = api_key(&b).await;
    let big = "x".repeat(mcp_auth_broker::gateway::proxy::MAX_BODY + 1);
    let r = http()
        .post(b.client_url("demo"))
        .header("x-api-key", &key)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(up.recorder().to_path("/mcp").len(), 0);
}

#[tokio::test]
async fn an_unreachable_upstream_gets_a_json_rpc_error_naming_server_and_cause() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let b = TestBroker::start(config(
        json!({"gone": {"url": format!("http://127.0.0.1:{port}/mcp")}}),
    ))
    .await;
    let key = api_key(&b).await;
    let r = post(&b.client_url("gone"), &key, None, &initialize()).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"gone\" is unreachable") && message.to_lowercase().contains("refused"),
        "{message}"
    );
    assert_eq!(body["id"], 1);
}

#[tokio::test]
async fn get_streams_delete_and_sessions_pass_through_bound_to_their_client() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(config(json!({"demo": {"url": up.mcp_url}}))).await;
    let key = api_key(&b).await;
    let url = b.client_url("demo");
    let sid = open_session(&url, &key).await;
    let mut stream = http()
        .get(&url)
        .header("accept", "text/event-stream")
        .header("x-api-key", &key)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    up.state.recorder.wait_for(3).await;
    up.notify_tools_changed();
    let mut seen = String::new();
    while !seen.contains("list_changed") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let other_key = api_key(&b).await;
    let stolen = post(
        &url,
        &other_key,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
    )
    .await;
    assert_eq!(
        stolen.status(),
        404,
        "another client's session is unknown to this one"
    );
    let deleted = http()
        .delete(&url)
        .header("x-api-key", &key)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    assert_eq!(
        up.recorder().to_path("/mcp").last().unwrap().method,
        "DELETE"
    );
}

#[tokio::test]
async fn unknown_servers_are_404_json() {
    let b = TestBroker::start(config(json!({}))).await;
    let r = http()
        .post(b.client_url("nope"))
        .json(&initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["error_description"]
        .as_str()
        .unwrap()
        .contains("\"nope\""));
}

#[tokio::test]
async fn an_upstream_401_mid_session_gets_one_fresh_credential_and_one_retry() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    std::env::set_var("GATEWAY_PROXY_M2M_SECRET", "m2m-secret");
    let b = TestBroker::start(config(json!({"demo": {
        "url": up.mcp_url, "auth_type": "oauth2", "oauth_flow": "client_credentials",
        "client_id": "m2m-client", "client_secret": "os.environ/GATEWAY_PROXY_M2M_SECRET",
        "token_url": up.auth_server.token_url()}})))
    .await;
    let key = api_key(&b).await;
    let url = b.client_url("demo");
    let sid = open_session(&url, &key).await;
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 1);
    up.oauth().expire_access_tokens();
    let unauthorized_before = count(&up.counters().unauthorized);
    let r = post(
        &url,
        &key,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["result"]["tools"].is_array(),
        "the retry with a fresh token answered: {body}"
    );
    assert_eq!(
        count(&up.counters().unauthorized),
        unauthorized_before + 1,
        "exactly one rejected attempt"
    );
    assert_eq!(
        count(&up.oauth().counters.token_client_credentials),
        2,
        "one fresh credential"
    );
}
