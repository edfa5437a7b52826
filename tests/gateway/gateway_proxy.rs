//! The MCP proxy at `/{server}/mcp` over real sockets: streaming, header hygiene, sessions and
//! body caps.

use crate::gateway_common;
use crate::support;

use std::time::Duration;

use gateway_common::*;
use serde_json::{json, Value};
use support::*;

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
async fn get_streams_delete_and_sessions_pass_through_bound_to_their_client() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(config(json!({"demo": {"url": up.mcp_url}}))).await;
    let key = api_key(&b).await;
    let url = b.client_url("demo");
    let sid = open_session(&url, &key).await;
    let mut stream = get_stream(&url, &key, &sid).await;
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

/// An upstream that sets a cookie on every answer and refuses `forbidden/*` methods with its own
/// challenge: neither may reach the local client.
async fn leaky_upstream() -> String {
    use axum::response::IntoResponse;
    async fn mcp(axum::Json(msg): axum::Json<Value>) -> axum::response::Response {
        let challenge = ("www-authenticate", "Bearer error=\"insufficient_scope\", resource_metadata=\"https://upstream.example/.well-known/oauth-protected-resource\"");
        if msg["method"]
            .as_str()
            .is_some_and(|m| m.starts_with("forbidden"))
        {
            return (
                axum::http::StatusCode::FORBIDDEN,
                [challenge, ("set-cookie", "upstream=1")],
                "no",
            )
                .into_response();
        }
        (
            [
                ("set-cookie", "upstream=1; HttpOnly"),
                ("content-type", "application/json"),
            ],
            json!({"jsonrpc": "2.0", "id": msg["id"], "result": {}}).to_string(),
        )
            .into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::new().route("/mcp", axum::routing::post(mcp)),
        )
        .await
        .unwrap()
    });
    url
}

#[tokio::test]
async fn upstream_cookies_and_challenges_never_reach_the_client() {
    let b = TestBroker::start(config(json!({"leaky": {"url": leaky_upstream().await}}))).await;
    let key = api_key(&b).await;
    let ok = post(
        &b.client_url("leaky"),
        &key,
        None,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().get("set-cookie").is_none());
    let refused = post(
        &b.client_url("leaky"),
        &key,
        None,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "forbidden/thing"}),
    )
    .await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused.headers().get("www-authenticate").is_none(),
        "the upstream's resource_metadata must not point the client at the upstream AS"
    );
    assert!(refused.headers().get("set-cookie").is_none());
}

/// Sends `POST path` with a body of `size` bytes over a raw socket, writing all of it before
/// reading anything (as a simple client does), and returns the answer's status line.
async fn post_whole_body_then_read(port: u16, path: &str, key: &str, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-api-key: {key}\r\n\
         content-type: application/json\r\naccept: {ACCEPT}\r\ncontent-length: {size}\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < size {
        let n = chunk.len().min(size - sent);
        if let Err(e) = sock.write_all(&chunk[..n]).await {
            panic!("{path}: the broker cut the upload after {sent} of {size} bytes: {e}");
        }
        sent += n;
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(e) => panic!("{path}: reading the answer after the whole upload failed: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_client_uploading_five_mebibytes_reads_its_413_instead_of_a_reset() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(config(json!({"demo": {"url": up.mcp_url}}))).await;
    let key = api_key(&b).await;
    for path in ["/demo/mcp", "/mcp", "/token", "/register"] {
        let status = tokio::time::timeout(
            Duration::from_secs(20),
            post_whole_body_then_read(b.port, path, &key, 5 * 1024 * 1024),
        )
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer within 20 s"));
        assert_eq!(status, "HTTP/1.1 413 Payload Too Large", "{path}");
    }
    assert_eq!(up.recorder().to_path("/mcp").len(), 0);
}

/// Sends `POST path` with `body` as the raw bytes after a `Transfer-Encoding: chunked` head and
/// returns the answer's status line and body.
async fn post_chunked(port: u16, path: &str, key: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-api-key: {key}\r\n\
         content-type: application/json\r\naccept: {ACCEPT}\r\ntransfer-encoding: chunked\r\n\
         connection: close\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    sock.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_chunked_body_over_the_cap_gets_413_and_a_broken_one_400_naming_the_body() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(config(json!({"demo": {"url": up.mcp_url}}))).await;
    let key = api_key(&b).await;
    let cap = mcp_auth_broker::gateway::proxy::MAX_BODY;
    let mut over = format!("{:x}\r\n", cap + 1).into_bytes();
    over.extend(std::iter::repeat_n(b'x', cap + 1));
    over.extend_from_slice(b"\r\n0\r\n\r\n");
    let broken = b"7\r\n{\"a\":1}\r\nzz\r\n";
    for path in ["/demo/mcp", "/mcp"] {
        let answer = post_chunked(b.port, path, &key, &over).await;
        assert!(answer.starts_with("HTTP/1.1 413 "), "{path}: {answer}");
        let answer = post_chunked(b.port, path, &key, broken).await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{path}: {answer}");
        assert!(answer.contains("request body"), "{path}: {answer}");
    }
    assert_eq!(up.recorder().to_path("/mcp").len(), 0);
}
