//! Each kind from a real failure on 127.0.0.1 (a port nothing listens on, a listener that never
//! answers, a plain-HTTP listener spoken to in TLS) and a failed lookup through the resolver's
//! own error type.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use super::*;
use crate::upstream::dns::GuardedResolver;

/// The broker's upstream client as `upstream` builds it (the guarded resolver), with `timeout`.
fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver))
        .timeout(timeout)
        .build()
        .unwrap()
}

/// A port that was just free: bound, then released, so connecting to it is refused.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_port_nothing_listens_on_is_a_refused_connection() {
    let port = closed_port().await;
    let e = client(Duration::from_secs(10))
        .get(format!("http://127.0.0.1:{port}/mcp"))
        .send()
        .await
        .unwrap_err();
    let cause = Cause::of(&e);
    assert_eq!(cause.kind, CauseKind::Refused);
    assert_eq!(cause.text, "connection refused");
}

#[tokio::test]
async fn a_listener_that_never_answers_is_a_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and holds the connection, never writing a byte.
    let held = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
        drop(socket);
    });
    let e = client(Duration::from_millis(300))
        .get(format!("http://127.0.0.1:{port}/mcp"))
        .send()
        .await
        .unwrap_err();
    held.abort();
    assert_eq!(Cause::of(&e), Cause::new(CauseKind::Timeout, "timed out"));
}

#[tokio::test]
async fn a_server_that_does_not_speak_tls_is_a_tls_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let plain = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let answer = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        let _ = socket.write_all(answer).await;
    });
    let e = client(Duration::from_secs(10))
        .get(format!("https://127.0.0.1:{port}/mcp"))
        .send()
        .await
        .unwrap_err();
    plain.await.unwrap();
    let cause = Cause::of(&e);
    assert_eq!(cause.kind, CauseKind::Tls, "{}", cause.text);
    assert!(cause.text.starts_with("TLS failed: "), "{}", cause.text);
}

/// What the guarded resolver answers when the system lookup fails.
struct NoSuchName;

impl reqwest::dns::Resolve for NoSuchName {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let failed = LookupFailed {
            host: name.as_str().to_string(),
            source: io::Error::other("Name or service not known"),
        };
        Box::pin(async move { Err(Box::new(failed) as Box<dyn StdError + Send + Sync>) })
    }
}

#[tokio::test]
async fn a_failed_lookup_is_a_dns_failure_naming_the_host() {
    let client = reqwest::Client::builder()
        .dns_resolver(Arc::new(NoSuchName))
        .build()
        .unwrap();
    let e = client
        .get("https://mcp.example.invalid/mcp")
        .send()
        .await
        .unwrap_err();
    let cause = Cause::of(&e);
    assert_eq!(cause.kind, CauseKind::Dns);
    assert_eq!(
        cause.text,
        "mcp.example.invalid could not be resolved: Name or service not known"
    );
}

#[test]
fn words_without_a_kind_are_other_and_context_keeps_the_kind() {
    let said: Cause = "the server answered HTTP 503".into();
    assert_eq!(said.kind, CauseKind::Other);
    let refused = Cause::new(CauseKind::Refused, "connection refused");
    let wrapped = refused.map_text(|t| format!("{t} (the company identity provider)"));
    assert_eq!(wrapped.kind, CauseKind::Refused);
    assert_eq!(
        wrapped.to_string(),
        "connection refused (the company identity provider)"
    );
}
