//! Faults over real sockets: upstreams that go down, hang, close mid-response or cut an SSE stream;
//! malformed request bodies; refresh under concurrent load. Throughout, the broker keeps serving
//! its other servers. Restarts of the broker itself are in `fault_restart.rs`.

use crate::gateway_common;
use crate::support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use gateway_common::{open_session, post, tool_call};
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(20);

/// A `tools/call` of `echo` with the text "still here".
fn call(id: u64) -> Value {
    tool_call(id, "echo", json!({"text": "still here"}))
}

/// A tools/call through the broker to a healthy server succeeds.
async fn healthy_still_served(base: &str, key: &str) {
    let url = format!("{base}/ok/mcp");
    let sid = open_session(&url, key).await;
    let resp = post(&url, key, Some(&sid), &call(7)).await;
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
async fn an_upstream_going_down_mid_session_gets_a_named_error_and_other_servers_keep_working() {
    let ok = TestUpstream::start(UpstreamOptions::default()).await;
    let going = TestUpstream::start(UpstreamOptions::default()).await;
    let (b, key) = broker_with(&ok, &going.mcp_url).await;
    let url = format!("{}/faulty/mcp", b.base_url);
    let sid = open_session(&url, &key).await;
    assert_eq!(post(&url, &key, Some(&sid), &call(1)).await.status(), 200);
    going.stop();
    let resp = post(&url, &key, Some(&sid), &call(2)).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], 2);
    // A tool call's failure is a tool result the model can read, naming server and cause.
    assert_eq!(body["result"]["isError"], true, "{body}");
    let text = body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("\"faulty\" is unreachable") && text.contains("refused"),
        "{text}"
    );
    healthy_still_served(&b.base_url, &key).await;
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
    let resp = post(&format!("{}/faulty/mcp", b.base_url), &key, None, &call(1)).await;
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
    let resp = post(&format!("{}/faulty/mcp", b.base_url), &key, None, &call(1)).await;
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
    let stuck = tokio::spawn(async move { post(&stuck_url, &stuck_key, None, &call(1)).await });
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

#[tokio::test]
async fn refresh_under_concurrent_load_fails_no_client_request() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"demo": {"url": up.mcp_url}}})).await;
    b.sign_in("demo").await;
    let key = b
        .broker
        .issuer()
        .create_api_key("load", None)
        .unwrap()
        .1
        .expose()
        .to_string();
    let url = b.client_url("demo");
    let sid = open_session(&url, &key).await;

    // Every access token dies at once; 50 requests arrive together.
    up.oauth().expire_access_tokens();
    let refreshes_before = count(&up.oauth().counters.token_refresh);
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let (url, key, sid) = (url.clone(), key.clone(), sid.clone());
            tokio::spawn(async move {
                let resp = post(&url, &key, Some(&sid), &call(i)).await;
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
