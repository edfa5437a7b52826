//! The broker restarted (same data dir, keychain and port) after a sign-in and during one:
//! sign-ins, API keys and registrations survive; a sign-in left pending fails cleanly.

mod gateway_common;
mod support;

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
