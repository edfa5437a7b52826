//! An in-process broker for tests: real gateway on `127.0.0.1:0`, config file in a tempdir,
//! in-memory secret store, and a "browser" that follows redirects over HTTP.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use mcp_auth_broker::broker::{Broker, Settings};
use mcp_auth_broker::gateway;
use mcp_auth_broker::opener::Opener;
use mcp_auth_broker::vault::{MemoryStore, TokenStore};
use serde_json::Value;
use tokio::sync::Notify;
use url::Url;

/// The end of one followed redirect chain.
#[derive(Debug, Clone)]
pub struct Followed {
    pub opened: Url,
    /// Every URL requested, in order (the last one answered without a redirect).
    pub hops: Vec<Url>,
    /// Status and body of the last response, or the transport error.
    pub outcome: Result<(u16, String), String>,
}

/// A browser stand-in: records every URL the broker opens and follows its redirect chain
/// (AS `/authorize` → broker `/oauth/callback`) with plain HTTP requests.
#[derive(Clone, Default)]
pub struct Browser {
    opened: Arc<Mutex<Vec<Url>>>,
    followed: Arc<Mutex<Vec<Followed>>>,
    changed: Arc<Notify>,
}

impl Browser {
    /// The URLs the broker asked to open (a probe must never add one).
    pub fn opened(&self) -> Vec<Url> {
        self.opened.lock().unwrap().clone()
    }

    pub fn followed(&self) -> Vec<Followed> {
        self.followed.lock().unwrap().clone()
    }

    /// Waits until `n` redirect chains finished (wrap in `tokio::time::timeout`).
    pub async fn wait_followed(&self, n: usize) -> Vec<Followed> {
        loop {
            let notified = self.changed.notified();
            let done = self.followed();
            if done.len() >= n {
                return done;
            }
            notified.await;
        }
    }

    pub fn opener(&self) -> Opener {
        let browser = self.clone();
        Opener::Custom(Arc::new(move |url: Url| {
            browser.opened.lock().unwrap().push(url.clone());
            let b = browser.clone();
            let task = async move {
                let done = follow(url).await;
                b.followed.lock().unwrap().push(done);
                b.changed.notify_waiters();
            };
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(task);
                }
                Err(_) => {
                    std::thread::spawn(move || {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .unwrap()
                            .block_on(task)
                    });
                }
            }
        }))
    }
}

async fn follow(opened: Url) -> Followed {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut hops = vec![];
    let mut url = opened.clone();
    for _ in 0..10 {
        hops.push(url.clone());
        let response = match client.get(url.clone()).send().await {
            Ok(r) => r,
            Err(e) => {
                return Followed {
                    opened,
                    hops,
                    outcome: Err(e.to_string()),
                }
            }
        };
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url.join(l).ok());
        match location {
            Some(next) if status.is_redirection() => url = next,
            _ => {
                let body = response.text().await.unwrap_or_default();
                return Followed {
                    opened,
                    hops,
                    outcome: Ok((status.as_u16(), body)),
                };
            }
        }
    }
    Followed {
        opened,
        hops,
        outcome: Err("more than 10 redirects".into()),
    }
}

/// How to start a [`TestBroker`].
pub struct BrokerOptions {
    /// Start the config watcher and health monitors (`Broker::start_background`).
    pub background: bool,
    pub store: Arc<dyn TokenStore>,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            background: false,
            store: Arc::new(MemoryStore::default()),
        }
    }
}

/// A running broker; dropping it shuts it down (gateway, monitors, watcher).
pub struct TestBroker {
    pub broker: Broker,
    pub port: u16,
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base_url: String,
    pub config_path: PathBuf,
    pub browser: Browser,
    pub dir: tempfile::TempDir,
}

impl TestBroker {
    /// A broker over `config` (the JSON config file's content), without background tasks.
    pub async fn start(config: Value) -> TestBroker {
        Self::start_with(config, BrokerOptions::default()).await
    }

    pub async fn start_with(config: Value, options: BrokerOptions) -> TestBroker {
        Self::start_in(config, options, None).await
    }

    /// [`TestBroker::start_with`] over the data dir `data_dir` (default: `data` in the broker's
    /// own tempdir): a restart test passes the same one to the next broker.
    pub async fn start_in(
        config: Value,
        options: BrokerOptions,
        data_dir: Option<PathBuf>,
    ) -> TestBroker {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("config.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let listener = gateway::bind(0)
            .await
            .expect("bind the gateway on 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let browser = Browser::default();
        let settings = Settings {
            port,
            config_path: config_path.clone(),
            data_dir: data_dir.unwrap_or_else(|| dir.path().join("data")),
            opener: browser.opener(),
        };
        let broker =
            Broker::new(settings, options.store).expect("broker starts over the test config");
        let stop = broker.shutdown_token();
        tokio::spawn(gateway::serve(
            listener,
            broker.clone(),
            stop.cancelled_owned(),
        ));
        if options.background {
            broker.start_background().expect("background tasks start");
        }
        TestBroker {
            broker,
            port,
            base_url: format!("http://127.0.0.1:{port}"),
            config_path,
            browser,
            dir,
        }
    }

    /// Signs `server` in for real: the broker opens the AS's authorize URL and the test browser
    /// follows the redirects to the gateway's `/oauth/callback`.
    pub async fn sign_in(&self, server: &str) {
        let config = self.broker.server(server).unwrap();
        let started = self
            .broker
            .upstream()
            .sign_in(&config, &self.broker.settings().opener)
            .await
            .expect("sign-in starts");
        tokio::time::timeout(super::SIGN_IN_WAIT, started.done)
            .await
            .expect("the callback arrives")
            .expect("sign-in completes")
            .expect("sign-in succeeds");
    }

    /// What `auth` knows of the token the broker now holds for `server` (`None`: not a token
    /// `auth` issued, or one its API does not take).
    pub async fn issued(
        &self,
        server: &str,
        auth: &super::auth_server::AsState,
    ) -> Option<super::auth_server::IssuedToken> {
        let cfg = self.broker.server(server).unwrap();
        let credential = self.broker.upstream().credential(&cfg).await.unwrap();
        auth.validate(credential.bearer.expect("a bearer token").expose())
    }

    /// `http://127.0.0.1:PORT/{server}/mcp`.
    pub fn client_url(&self, server: &str) -> String {
        format!("{}/{server}/mcp", self.base_url)
    }

    /// Replaces the config file and reloads it (does not wait for the file watcher).
    pub async fn write_config(&self, config: Value) {
        std::fs::write(
            &self.config_path,
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        self.broker
            .reload()
            .await
            .expect("the new test config is valid");
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.broker.shutdown();
    }
}
