//! Faults over real sockets: upstreams that hang, close mid-response or cut an SSE stream;
//! malformed request bodies; the broker restarted during and after a sign-in; refresh under
//! concurrent load. Throughout, the broker keeps serving its other servers.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use mcp_auth_broker::broker::{Broker, Settings};
use mcp_auth_broker::config::ServerName;
use mcp_auth_broker::gateway;
use mcp_auth_broker::opener::Opener;
use mcp_auth_broker::vault::{MemoryStore, TokenStore};
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(20);

fn init() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "fault-test", "version": "1"}}})
}

fn call(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "still here"}}})
}

async fn post(url: &str, key: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .json(body)
        .send()
        .await
        .expect("the broker answers")
}

async fn post_in(url: &str, key: &str, session: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(body)
        .send()
        .await
        .expect("the broker answers")
}

/// Initializes an MCP session through the broker; returns its id.
async fn session(url: &str, key: &str) -> String {
    let resp = post(url, key, &init()).await;
    assert_eq!(resp.status(), 200, "initialize via {url}");
    resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string()
}

/// A tools/call through the broker to a healthy server succeeds.
async fn healthy_still_served(base: &str, key: &str) {
    let url = format!("{base}/ok/mcp");
    let sid = session(&url, key).await;
    let resp = post_in(&url, key, &sid, &call(7)).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("still here"), "{text}");
}

/// A raw TCP "upstream" that reads the request head, then does `answer` with the socket.
async fn raw_upstream<F, Fut>(answer: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let _ = sock.read(&mut buf).await;
                answer(sock).await;
            });
        }
    });
    url
}

async fn broker_with(ok: &TestUpstream, faulty_url: &str) -> (TestBroker, String) {
    let b = TestBroker::start(json!({"mcp_servers": {
        "ok": {"url": ok.mcp_url},
        "faulty": {"url": faulty_url}
    }}))
    .await;
    let key = b
        .broker
        .issuer()
        .create_api_key("fault test", None)
        .unwrap()
        .1
        .expose()
        .to_string();
    (b, key)
}

#[tokio::test]
async fn an_upstream_closing_mid_response_gives_a_clean_error_and_other_servers_keep_working() {
    let ok = TestUpstream::start(UpstreamOptions::default()).await;
    let faulty = raw_upstream(|mut sock| async move {
        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"res").await;
        // Dropped here: the promised body never completes.
    })
    .await;
    let (b, key) = broker_with(&ok, &faulty).await;
    let resp = post(&format!("{}/faulty/mcp", b.base_url), &key, &call(1)).await;
    assert_ne!(resp.status(), 500);
    // Either the broker answered with a JSON-RPC error, or the truncated body ends in an error;
    // both leave the client able to act, and neither takes the broker down.
    let body = resp.bytes().await;
    if let Ok(body) = body {
        assert!(
            !String::from_utf8_lossy(&body).contains("\"result\":{"),
            "a truncated answer must not look complete"
        );
    }
    healthy_still_served(&b.base_url, &key).await;
}

#[tokio::test]
async fn a_cut_sse_stream_delivers_what_arrived_then_ends_and_other_servers_keep_working() {
    let ok = TestUpstream::start(UpstreamOptions::default()).await;
    let faulty = raw_upstream(|mut sock| async move {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        let event = "id: 1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n";
        let _ = sock.write_all(format!("{head}{:x}\r\n{event}\r\n", event.len()).as_bytes()).await;
        let _ = sock.flush().await;
        // Cut: no terminating chunk, the connection just goes away.
    })
    .await;
    let (b, key) = broker_with(&ok, &faulty).await;
    let resp = post(&format!("{}/faulty/mcp", b.base_url), &key, &call(1)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut stream = resp.bytes_stream();
    let mut received = String::new();
    let ended = tokio::time::timeout(WAIT, async {
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => received.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => break,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the cut stream must end for the client, not hang"
    );
    assert!(
        received.contains("notifications/progress"),
        "the event that arrived is delivered: {received:?}"
    );
    healthy_still_served(&b.base_url, &key).await;
}

#[tokio::test]
async fn a_hung_upstream_does_not_hold_up_other_servers() {
    let ok = TestUpstream::start(UpstreamOptions::default()).await;
    let (hold, held) = tokio::sync::oneshot::channel::<()>();
    let held = Arc::new(tokio::sync::Mutex::new(Some(held)));
    let faulty = raw_upstream(move |sock| {
        let held = held.clone();
        async move {
            // Never answer while the test runs.
            if let Some(rx) = held.lock().await.take() {
                let _ = rx.await;
            }
            drop(sock);
        }
    })
    .await;
    let (b, key) = broker_with(&ok, &faulty).await;
    let stuck_url = format!("{}/faulty/mcp", b.base_url);
    let stuck_key = key.clone();
    let stuck = tokio::spawn(async move { post(&stuck_url, &stuck_key, &call(1)).await });
    for _ in 0..5 {
        healthy_still_served(&b.base_url, &key).await;
    }
    assert!(!stuck.is_finished(), "the hung upstream is still hung");
    drop(hold);
    stuck.abort();
}

#[tokio::test]
async fn malformed_request_bodies_are_4xx_never_500() {
    let ok = TestUpstream::start(UpstreamOptions::default()).await;
    let (b, key) = broker_with(&ok, &ok.mcp_url).await;
    let url = format!("{}/ok/mcp", b.base_url);
    let c = reqwest::Client::new();
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"{not json".to_vec()),
        ("not UTF-8", vec![0xff, 0xfe, 0x00, 0x7b]),
        ("empty", Vec::new()),
        ("a JSON array of garbage", b"[1, 2, {\"x\": ".to_vec()),
        ("too large", vec![b' '; 5 * 1024 * 1024]),
    ];
    for (what, body) in bodies {
        let resp = c
            .post(&url)
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        assert!(
            status != 500 && (status < 500 || status == 502),
            "{what}: {status}"
        );
    }
    healthy_still_served(&b.base_url, &key).await;
}

/// A broker over a fixed data dir and secret store, on a given port (0: any).
async fn broker_at(
    dir: &Path,
    config: &Value,
    store: Arc<dyn TokenStore>,
    port: u16,
    opener: Opener,
) -> Running {
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the broker port");
    let port = listener.local_addr().unwrap().port();
    let settings = Settings {
        port,
        config_path: dir.join("config.json"),
        data_dir: dir.join("data"),
        opener,
    };
    let broker = Broker::new(settings, store).unwrap();
    let stop = broker.shutdown_token();
    let gateway = tokio::spawn(gateway::serve(
        listener,
        broker.clone(),
        stop.cancelled_owned(),
    ));
    Running { broker, gateway }
}

/// A broker and its gateway task.
struct Running {
    broker: Broker,
    gateway: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl std::ops::Deref for Running {
    type Target = Broker;
    fn deref(&self) -> &Broker {
        &self.broker
    }
}

impl Running {
    /// Shuts the broker down and waits until its port is free again.
    async fn stop(self) {
        self.broker.shutdown();
        let stopped = tokio::time::timeout(WAIT, self.gateway).await;
        stopped.expect("the gateway stops").unwrap().unwrap();
    }
}

#[tokio::test]
async fn sign_ins_api_keys_and_registrations_survive_a_broker_restart() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::default());
    let config = json!({"mcp_servers": {"demo": {"url": up.mcp_url}}});
    let browser = Browser::default();
    let first = broker_at(dir.path(), &config, store.clone(), 0, browser.opener()).await;
    let port = first.settings().port;
    let key = first
        .issuer()
        .create_api_key("survivor", None)
        .unwrap()
        .1
        .expose()
        .to_string();
    let server = first.server("demo").unwrap();
    let attempt = first
        .upstream()
        .sign_in(&server, &browser.opener())
        .await
        .unwrap();
    assert_eq!(
        tokio::time::timeout(WAIT, attempt.done)
            .await
            .unwrap()
            .unwrap(),
        Ok(())
    );
    let registrations = count(&up.oauth().counters.register);
    first.stop().await;

    // Same data dir, same keychain, same port: a new process in all but name.
    let second = broker_at(
        dir.path(),
        &config,
        store,
        port,
        Opener::Custom(Arc::new(|_| panic!("no browser after a restart"))),
    )
    .await;
    let resp = post(&format!("http://127.0.0.1:{port}/demo/mcp"), &key, &init()).await;
    assert_eq!(
        resp.status(),
        200,
        "the API key and the upstream sign-in survived"
    );
    let text = resp.text().await.unwrap();
    assert!(text.contains("protocolVersion"), "{text}");
    assert!(
        second
            .upstream()
            .token_facts(&ServerName::parse("demo").unwrap())
            .await
            .has_token
    );
    assert_eq!(
        count(&up.oauth().counters.register),
        registrations,
        "no re-registration after a restart"
    );
    second.stop().await;
}

#[tokio::test]
async fn a_sign_in_pending_across_a_restart_fails_cleanly_and_stores_nothing() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::default());
    let config = json!({"mcp_servers": {"demo": {"url": up.mcp_url}}});
    let opened = Arc::new(std::sync::Mutex::new(Vec::new()));
    let capture = opened.clone();
    let first = broker_at(dir.path(), &config, store.clone(), 0, Opener::Print).await;
    let port = first.settings().port;
    let server = first.server("demo").unwrap();
    let opener = Opener::Custom(Arc::new(move |u| capture.lock().unwrap().push(u)));
    let _attempt = first.upstream().sign_in(&server, &opener).await.unwrap();
    let authorize = opened.lock().unwrap()[0].clone();
    first.stop().await;

    let second = broker_at(dir.path(), &config, store, port, Opener::Print).await;
    // The person finishes in the browser after the restart: the AS redirects to the callback.
    let followed = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .unwrap()
        .get(authorize.as_str())
        .send()
        .await
        .unwrap();
    let status = followed.status().as_u16();
    let page = followed.text().await.unwrap();
    assert!(
        (400..500).contains(&status),
        "a stale callback is a clear 4xx page, got {status}: {page}"
    );
    assert!(
        page.to_lowercase().contains("sign in") || page.to_lowercase().contains("sign-in"),
        "the page tells the person what to do: {page}"
    );
    assert!(
        !second
            .upstream()
            .token_facts(&ServerName::parse("demo").unwrap())
            .await
            .has_token
    );
    second.stop().await;
}

#[tokio::test]
async fn refresh_under_concurrent_load_fails_no_client_request() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"demo": {"url": up.mcp_url}}})).await;
    let server = b.broker.server("demo").unwrap();
    let attempt = b
        .broker
        .upstream()
        .sign_in(&server, &b.browser.opener())
        .await
        .unwrap();
    assert_eq!(
        tokio::time::timeout(WAIT, attempt.done)
            .await
            .unwrap()
            .unwrap(),
        Ok(())
    );
    let key = b
        .broker
        .issuer()
        .create_api_key("load", None)
        .unwrap()
        .1
        .expose()
        .to_string();
    let url = b.client_url("demo");
    let sid = session(&url, &key).await;

    // Every access token dies at once; 50 requests arrive together.
    up.oauth().expire_access_tokens();
    let refreshes_before = count(&up.oauth().counters.token_refresh);
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let (url, key, sid) = (url.clone(), key.clone(), sid.clone());
            tokio::spawn(async move {
                let resp = post_in(&url, &key, &sid, &call(i)).await;
                (
                    resp.status().as_u16(),
                    resp.text().await.unwrap_or_default(),
                )
            })
        })
        .collect();
    for c in calls {
        let (status, text) = c.await.unwrap();
        assert_eq!(status, 200, "{text}");
        assert!(
            text.contains("still here") && !text.contains("isError\":true"),
            "{text}"
        );
    }
    assert_eq!(
        count(&up.oauth().counters.token_refresh) - refreshes_before,
        1,
        "one refresh for the whole burst"
    );
}
