//! Helpers shared by the gateway's integration tests: an OAuth client walking the broker's
//! authorization server by hand, and a script-style MCP client with a local API key. Declared
//! next to `support` in a binary's `main.rs` (`#[path = "../gateway/gateway_common.rs"]` from
//! other areas' binaries).
#![allow(dead_code)]

use mcp_auth_broker::clock::unix_now;
use mcp_auth_broker::issuer::CodeRequest;
use mcp_auth_broker::protocol::sse::SseParser;
use serde_json::{json, Value};

use crate::support::*;
#[allow(unused_imports)]
pub use crate::support::{hidden, submit_consent};

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const REDIRECT: &str = "http://127.0.0.1:43210/callback";

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub async fn broker_with(servers: Value) -> (TestUpstream, TestBroker) {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let mut servers = servers;
    for (_, s) in servers.as_object_mut().unwrap() {
        s["url"] = json!(up.mcp_url);
    }
    let b = TestBroker::start(json!({ "mcp_servers": servers })).await;
    (up, b)
}

pub async fn register(b: &TestBroker, name: &str) -> String {
    let r = http().post(format!("{}/register", b.base_url)).json(&json!({"client_name": name, "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn authorize_url(b: &TestBroker, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&format!("{}/authorize", b.base_url)).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", "http://127.0.0.1:50001/callback")
        .append_pair("state", "st-1");
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.to_string()
}

pub fn pkce() -> [(&'static str, &'static str); 2] {
    [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

pub fn query(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Authorize, approve on the consent page, and return the redirect's query.
pub async fn approve(b: &TestBroker, url: &str) -> std::collections::HashMap<String, String> {
    let page = http().get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let html = page.text().await.unwrap();
    let r = submit_consent(&b.base_url, &html, "approve", &[]).await;
    assert_eq!(r.status(), 303, "a POSTed consent redirects with 303");
    query(r.headers()["location"].to_str().unwrap())
}

pub async fn token(b: &TestBroker, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http()
        .post(format!("{}/token", b.base_url))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    (r.status().as_u16(), r.json().await.unwrap())
}

pub async fn exchange(b: &TestBroker, client_id: &str, code: &str) -> (u16, Value) {
    token(
        b,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", client_id),
            ("redirect_uri", "http://127.0.0.1:50001/callback"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

pub async fn mcp_status(b: &TestBroker, server: &str, access: &str) -> u16 {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    http()
        .post(b.client_url(server))
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(access)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub const ACCEPT: &str = "application/json, text/event-stream";

pub fn config(servers: Value) -> Value {
    json!({ "mcp_servers": servers })
}

pub async fn api_key(b: &TestBroker) -> String {
    b.broker
        .issuer()
        .create_api_key("test script", None)
        .unwrap()
        .1
        .expose()
        .to_string()
}

/// A broker access token for `server`, minted through the issuer's own bookkeeping.
pub fn oauth_token(b: &TestBroker, server: &str) -> String {
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

pub fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
}

pub async fn post(url: &str, key: &str, session: Option<&str>, body: &Value) -> reqwest::Response {
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

pub async fn open_session(url: &str, key: &str) -> String {
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

// ---- the aggregate endpoint `/mcp` ----

/// POSTs one JSON-RPC message to `/mcp`; returns the notifications that came first and the
/// response (the broker answers with an event stream when the client accepts one).
pub async fn aggregate_rpc(
    b: &TestBroker,
    key: &str,
    session: Option<&str>,
    body: Value,
) -> (Vec<Value>, Value) {
    let mut req = http()
        .post(format!("{}/mcp", b.base_url))
        .header("accept", ACCEPT)
        .header("x-api-key", key);
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let r = req.json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200, "{body}");
    let sse = r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream");
    let text = r.text().await.unwrap();
    let mut messages: Vec<Value> = if sse {
        let mut parser = SseParser::default();
        parser
            .push(text.as_bytes())
            .iter()
            .map(|e| serde_json::from_str(&e.data).unwrap())
            .collect()
    } else {
        vec![serde_json::from_str(&text).unwrap()]
    };
    let response = messages.pop().expect("a response");
    assert_eq!(
        response["id"], body["id"],
        "the response carries the client's id"
    );
    (messages, response)
}

/// `initialize` on `url` (`/mcp` or `/{server}/mcp`) declaring these client `capabilities`;
/// returns the session id.
pub async fn open_declaring(url: &str, key: &str, capabilities: Value) -> String {
    let mut init = initialize();
    init["params"]["capabilities"] = capabilities;
    let r = post(url, key, None, &init).await;
    assert_eq!(r.status(), 200);
    r.headers()["mcp-session-id"].to_str().unwrap().to_string()
}

/// `initialize` on `/mcp`; returns the session id.
pub async fn aggregate_open(b: &TestBroker, key: &str) -> String {
    let r = post(&format!("{}/mcp", b.base_url), key, None, &initialize()).await;
    assert_eq!(r.status(), 200);
    let sid = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let init: Value = r.json().await.unwrap();
    assert_eq!(init["result"]["capabilities"]["tools"]["listChanged"], true);
    sid
}

pub fn tool_names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

pub fn tool_call(id: u64, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments}})
}

pub const TOOLS_LIST: fn(u64) -> Value =
    |id| json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"});

// ---- GET event streams ----

/// Opens the GET event stream of session `sid` on `url` (asserting 200).
pub async fn get_stream(url: &str, key: &str, sid: &str) -> reqwest::Response {
    let r = http()
        .get(url)
        .header("accept", "text/event-stream")
        .header("x-api-key", key)
        .header("mcp-session-id", sid)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the GET stream opens");
    r
}

/// The JSON-RPC messages of an event stream, one at a time.
pub struct Messages {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    parser: SseParser,
    queue: std::collections::VecDeque<Value>,
}

impl Messages {
    pub fn new(response: reqwest::Response) -> Messages {
        Messages {
            body: Box::pin(response.bytes_stream()),
            parser: SseParser::default(),
            queue: Default::default(),
        }
    }

    /// The next message, waiting at most 20 s for it (panics if the stream ends or stalls).
    pub async fn next(&mut self) -> Value {
        let wait = async {
            loop {
                if let Some(m) = self.queue.pop_front() {
                    return m;
                }
                let chunk = futures_util::StreamExt::next(&mut self.body)
                    .await
                    .expect("the stream ended")
                    .unwrap();
                for e in self.parser.push(&chunk) {
                    self.queue.push_back(serde_json::from_str(&e.data).unwrap());
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(20), wait)
            .await
            .expect("a message within 20 s")
    }
}
