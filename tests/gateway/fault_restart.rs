//! The broker restarted (same data dir, keychain and port) after a sign-in and during one:
//! sign-ins, API keys and registrations survive; a sign-in left pending fails cleanly; and
//! under churn (upstream tokens living 2 s with rotating refresh tokens, clients on
//! `/{server}/mcp` and `/mcp`, a restart mid-run) no call fails.

use crate::gateway_common;
use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gateway_common::{initialize, post};
use mcp_auth_broker::broker::{Broker, Settings};
use mcp_auth_broker::config::ServerName;
use mcp_auth_broker::gateway;
use mcp_auth_broker::opener::Opener;
use mcp_auth_broker::vault::{MemoryStore, TokenStore};
use serde_json::{json, Value};
use support::*;
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(20);

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
    let resp = post(
        &format!("http://127.0.0.1:{port}/demo/mcp"),
        &key,
        None,
        &initialize(),
    )
    .await;
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

// ---- churn: short-lived upstream tokens, rotating refresh tokens, a restart mid-run ----

/// A broker access token for `audience` (a server, or `mcp` for the aggregate), issued through
/// the issuer's own bookkeeping as `/token` would.
fn broker_token(broker: &Broker, audience: &str) -> String {
    use mcp_auth_broker::clock::unix_now;
    use mcp_auth_broker::issuer::{CodeRequest, RegistrationRequest};
    let redirect = "http://127.0.0.1:9/cb";
    let client = broker
        .issuer()
        .register(
            RegistrationRequest {
                redirect_uris: vec![redirect.into()],
                client_name: Some(format!("churn {audience}")),
                ..Default::default()
            },
            unix_now(),
        )
        .unwrap()
        .unwrap();
    let code = broker.issuer().issue_code(
        CodeRequest {
            client_id: client.client_id.clone(),
            server: audience.into(),
            redirect_uri: redirect.into(),
            code_challenge: gateway_common::CHALLENGE.into(),
            scope: None,
        },
        unix_now(),
    );
    let tokens = broker.issuer().exchange_code(
        code.expose(),
        &client.client_id,
        Some(redirect),
        Some(gateway_common::VERIFIER),
        None,
        unix_now(),
    );
    tokens.unwrap().unwrap().access_token.expose().to_string()
}

/// One `tools/call` of `echo` in the 2026-07-28 era (stateless: nothing to lose in a restart).
/// `Err` only when no HTTP answer came (the broker is down or closed the connection); any
/// answer that is not the echo panics: that call failed.
async fn modern_echo(url: &str, token: &str, tool: &str, text: &str) -> Result<(), reqwest::Error> {
    use mcp_auth_broker::protocol::{headers, MODERN_VERSION};
    let body = support::wire::modern_request(
        1,
        "tools/call",
        json!({"name": tool, "arguments": {"text": text}}),
        false,
    );
    let mut req = gateway_common::http()
        .post(url)
        .bearer_auth(token)
        .header("accept", gateway_common::ACCEPT)
        .header(headers::PROTOCOL_VERSION, MODERN_VERSION);
    for (name, value) in headers::standard(&body) {
        req = req.header(name, value.as_ref());
    }
    let resp = req.json(&body).send().await?;
    let status = resp.status();
    assert_eq!(
        status,
        200,
        "{url}: {}",
        resp.text().await.unwrap_or_default()
    );
    let answer = support::wire::read_message(resp).await;
    assert_eq!(
        answer["result"]["content"][0]["text"], text,
        "{url}: {answer}"
    );
    Ok(())
}

/// A 2025-11-25 session opened with a broker token.
async fn legacy_session(url: &str, token: &str) -> String {
    let send = |body: Value, sid: Option<String>| {
        let mut req = gateway_common::http()
            .post(url)
            .bearer_auth(token)
            .header("accept", gateway_common::ACCEPT)
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(sid) = sid {
            req = req.header("mcp-session-id", sid);
        }
        req.json(&body).send()
    };
    let r = send(gateway_common::initialize(), None).await.unwrap();
    assert_eq!(r.status(), 200);
    let sid = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let _ = r.text().await;
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(send(note, Some(sid.clone())).await.unwrap().status(), 202);
    sid
}

/// One `tools/call` of `echo` in a 2025-11-25 session; `Err` and panics as [`modern_echo`].
async fn legacy_echo(url: &str, token: &str, sid: &str, text: &str) -> Result<(), reqwest::Error> {
    let resp = gateway_common::http()
        .post(url)
        .bearer_auth(token)
        .header("accept", gateway_common::ACCEPT)
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", sid)
        .json(&gateway_common::tool_call(2, "echo", json!({"text": text})))
        .send()
        .await?;
    assert_eq!(
        resp.status(),
        200,
        "{url}: {}",
        resp.text().await.unwrap_or_default()
    );
    let answer = support::wire::read_message(resp).await;
    assert_eq!(
        answer["result"]["content"][0]["text"], text,
        "{url}: {answer}"
    );
    Ok(())
}

/// One client's loop: calls until `stop`, waiting for `alive` when the broker is away; counts
/// its answered calls in `done` (and wakes `progress`).
async fn churn_client(
    call: impl Fn(u64) -> futures_util::future::BoxFuture<'static, Result<(), reqwest::Error>>,
    alive: tokio::sync::watch::Receiver<bool>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    done: Arc<std::sync::atomic::AtomicU64>,
    progress: Arc<tokio::sync::Notify>,
) {
    use std::sync::atomic::Ordering;
    let mut alive = alive;
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        if call(n).await.is_err() {
            // The broker is restarting: wait until the test says it is back, then call again.
            alive.wait_for(|up| *up).await.unwrap();
            continue;
        }
        n += 1;
        done.fetch_add(1, Ordering::SeqCst);
        progress.notify_waiters();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn churn_with_two_second_upstream_tokens_and_a_restart_fails_no_call() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let mut options = UpstreamOptions::oauth().with_era(UpstreamEra::Dual);
    options.auth_server.expires_in = json!(2);
    let up = TestUpstream::start(options).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::default());
    let config = json!({"mcp_servers": {"demo": {"url": up.mcp_url}}});
    let browser = Browser::default();
    let first = broker_at(dir.path(), &config, store.clone(), 0, browser.opener()).await;
    let port = first.settings().port;
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
    let (demo_token, mcp_token) = (broker_token(&first, "demo"), broker_token(&first, "mcp"));
    // The sign-in's discovery probe was refused without credentials; nothing after it may be.
    let probed = count(&up.counters().unauthorized);

    let (alive_tx, alive) = tokio::sync::watch::channel(true);
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(tokio::sync::Notify::new());
    let mut counts = Vec::new();
    let mut clients = Vec::new();
    let demo_url = format!("http://127.0.0.1:{port}/demo/mcp");
    for c in 0..10 {
        // Modern clients on /demo/mcp and /mcp; two 2025-11-25 clients on /demo/mcp whose
        // sessions (the upstream's) outlive the restart.
        let session = match c {
            8.. => Some(legacy_session(&demo_url, &demo_token).await),
            _ => None,
        };
        let (url, token, tool) = if c % 2 == 0 || session.is_some() {
            (demo_url.clone(), demo_token.clone(), "echo")
        } else {
            (
                format!("http://127.0.0.1:{port}/mcp"),
                mcp_token.clone(),
                "demo__echo",
            )
        };
        let call = move |n: u64| -> futures_util::future::BoxFuture<'static, _> {
            let (url, token, session) = (url.clone(), token.clone(), session.clone());
            Box::pin(async move {
                let text = format!("client {c} call {n}");
                match session {
                    Some(sid) => legacy_echo(&url, &token, &sid, &text).await,
                    None => modern_echo(&url, &token, tool, &text).await,
                }
            })
        };
        let done = Arc::new(AtomicU64::new(0));
        counts.push(done.clone());
        clients.push(tokio::spawn(churn_client(
            call,
            alive.clone(),
            stop.clone(),
            done,
            progress.clone(),
        )));
    }
    // Each phase lasts until every client was answered a few times and the upstream token was
    // refreshed twice (its refresh token rotating each time): events, not a fixed time.
    let refreshed =
        |n: usize| move |r: &[Recorded]| r.iter().filter(|r| r.path == "/token").count() >= n;
    let all_answered = |at_least: u64| {
        let (counts, progress) = (counts.clone(), progress.clone());
        async move {
            loop {
                let woken = progress.notified();
                if counts.iter().all(|c| c.load(Ordering::SeqCst) >= at_least) {
                    return;
                }
                woken.await;
            }
        }
    };
    let tokens_so_far = up.oauth().recorder.to_path("/token").len();
    tokio::time::timeout(
        WAIT,
        up.oauth().recorder.wait_until(refreshed(tokens_so_far + 2)),
    )
    .await
    .unwrap();
    tokio::time::timeout(WAIT, all_answered(5)).await.unwrap();

    // The restart: same data dir, keychain and port.
    alive_tx.send_replace(false);
    first.stop().await;
    let before: Vec<u64> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    let second = broker_at(
        dir.path(),
        &config,
        store,
        port,
        Opener::Custom(Arc::new(|_| panic!("no browser after a restart"))),
    )
    .await;
    alive_tx.send_replace(true);
    let tokens_so_far = up.oauth().recorder.to_path("/token").len();
    tokio::time::timeout(
        WAIT,
        up.oauth().recorder.wait_until(refreshed(tokens_so_far + 2)),
    )
    .await
    .unwrap();
    tokio::time::timeout(WAIT, all_answered(before.iter().max().unwrap() + 5))
        .await
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.expect("no call failed");
    }
    let facts = second.upstream().token_facts(&server.name).await;
    assert!(facts.has_token, "the sign-in survived");
    assert!(
        facts.last_refresh.is_some_and(|r| r.ok),
        "the refresh chain never broke (no invalid_grant)"
    );
    assert_eq!(
        count(&up.counters().unauthorized),
        probed,
        "no upstream call carried an expired token"
    );
    let calls: u64 = counts.iter().map(|c| c.load(Ordering::SeqCst)).sum();
    println!(
        "churn: {calls} calls, {} upstream token requests",
        up.oauth().recorder.to_path("/token").len()
    );
    second.stop().await;
}
