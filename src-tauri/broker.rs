//! The [`Broker`]: one cheap `Clone` handle over everything the gateway, the desktop shell and
//! the CLI share. State changes are published on channels; nothing polls.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{broadcast, watch, Mutex};
use tokio_util::sync::CancellationToken;
use url::Url;

use std::time::Duration;

use crate::config::file::{self, ConfigFileError, Loaded};
use crate::config::watch::ConfigWatcher;
use crate::config::{Config, RawConfig, ServerConfig};
use crate::events::Event;
use crate::health::{self, Health, StatusMap};
use crate::issuer::Issuer;
use crate::opener::Opener;
use crate::secret::Secret;
use crate::upstream::{Upstream, UpstreamDeps};
use crate::vault::{TokenStore, Vault};

/// Quiet time after the last file event before the config is re-read.
const RELOAD_SETTLE: Duration = Duration::from_millis(150);

/// How this broker instance runs. Fixed for its lifetime.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The port the gateway is bound to (after binding, so a test's port 0 is resolved).
    pub port: u16,
    pub config_path: PathBuf,
    /// Where non-secret state lives (broker token hashes, upstream registrations).
    pub data_dir: PathBuf,
    /// How a sign-in reaches the person: the system browser, a printed URL, or a test's hook.
    pub opener: Opener,
}

impl Settings {
    /// The gateway's root URL: the issuer of broker tokens and the base of every client URL.
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("http://127.0.0.1:{}", self.port)).expect("loopback URL parses")
    }

    /// The one redirect URI registered with every upstream authorization server.
    pub fn upstream_redirect_uri(&self) -> Url {
        self.base_url()
            .join("/oauth/callback")
            .expect("callback URL parses")
    }

    /// The URL a local client is given for `server`: `http://127.0.0.1:PORT/{server}/mcp`.
    pub fn client_url(&self, server: &str) -> String {
        format!("http://127.0.0.1:{}/{server}/mcp", self.port)
    }

    /// The URL of the aggregate endpoint, every server in one: `http://127.0.0.1:PORT/mcp`.
    pub fn aggregate_url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(transparent)]
    Config(#[from] ConfigFileError),
    #[error("cannot open the broker's data directory {path}: {message}")]
    DataDir { path: PathBuf, message: String },
    #[error("no server named \"{0}\" in the config; run `mcp-auth-broker list` to see the configured names")]
    UnknownServer(String),
}

/// The shared handle. Clone it freely; all clones see the same state.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    /// The running config: readers borrow the latest, the file watcher and editors publish.
    config: watch::Sender<Arc<Config>>,
    /// Why the file on disk was rejected, while it is (`None` when the file is good).
    config_problem: watch::Sender<Option<String>>,
    /// The file as written, so edits from the UI/CLI keep unknown fields; the lock also
    /// serialises read-modify-write cycles.
    raw: Mutex<RawConfig>,
    /// Broadcast of [`Event`]s; lagging receivers lose old events, never block senders.
    events: broadcast::Sender<Event>,
    /// One signal that stops the gateway, monitors and watchers.
    shutdown: CancellationToken,
    vault: Vault,
    upstream: Upstream,
    issuer: Issuer,
    health: Health,
    /// Authenticates the local admin API (CLI `login`, `logout`, `check`); new on every start,
    /// readable only by this user in `<data dir>/admin.token`.
    admin_token: Secret,
}

impl Broker {
    /// Builds a broker over the config file at `settings.config_path` and the given secret store.
    /// Starts nothing; call [`Broker::start_background`] for the watcher and monitors.
    pub fn new(settings: Settings, store: Arc<dyn TokenStore>) -> Result<Broker, BrokerError> {
        let Loaded { raw, validated } = file::read(&settings.config_path)?;
        for warning in &validated.warnings {
            tracing::warn!("config: {warning}");
        }
        crate::fsutil::create_private_dir(&settings.data_dir).map_err(|e| {
            BrokerError::DataDir {
                path: settings.data_dir.clone(),
                message: e.to_string(),
            }
        })?;
        let vault = Vault::new(store);
        let (events, _) = broadcast::channel(256);
        let (config, _) = watch::channel(Arc::new(validated.config));
        let upstream = Upstream::new(UpstreamDeps {
            vault: vault.clone(),
            redirect_uri: settings.upstream_redirect_uri(),
            data_dir: settings.data_dir.clone(),
            events: events.clone(),
        });
        let issuer = Issuer::open(&settings.data_dir, settings.base_url()).map_err(|e| {
            BrokerError::DataDir {
                path: settings.data_dir.clone(),
                message: e.to_string(),
            }
        })?;
        let health = Health::new(&config.borrow());
        let admin_token =
            write_admin_token(&settings.data_dir).map_err(|e| BrokerError::DataDir {
                path: settings.data_dir.clone(),
                message: e.to_string(),
            })?;
        Ok(Broker {
            inner: Arc::new(Inner {
                settings,
                config,
                config_problem: watch::channel(None).0,
                raw: Mutex::new(raw),
                events,
                shutdown: CancellationToken::new(),
                vault,
                upstream,
                issuer,
                health,
                admin_token,
            }),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The current config (cheap: an `Arc` clone).
    pub fn config(&self) -> Arc<Config> {
        self.inner.config.borrow().clone()
    }

    pub fn server(&self, name: &str) -> Result<ServerConfig, BrokerError> {
        self.config()
            .server(name)
            .cloned()
            .ok_or_else(|| BrokerError::UnknownServer(name.to_string()))
    }

    pub fn subscribe_config(&self) -> watch::Receiver<Arc<Config>> {
        self.inner.config.subscribe()
    }

    pub fn subscribe_config_problem(&self) -> watch::Receiver<Option<String>> {
        self.inner.config_problem.subscribe()
    }

    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    pub fn emit(&self, event: Event) {
        tracing::info!(?event, "event");
        let _ = self.inner.events.send(event);
    }

    pub fn vault(&self) -> &Vault {
        &self.inner.vault
    }

    pub fn upstream(&self) -> &Upstream {
        &self.inner.upstream
    }

    pub fn issuer(&self) -> &Issuer {
        &self.inner.issuer
    }

    pub fn health(&self) -> &Health {
        &self.inner.health
    }

    pub fn status(&self) -> watch::Receiver<StatusMap> {
        self.inner.health.subscribe()
    }

    /// True when `presented` is this run's admin token (constant-time).
    pub fn is_admin_token(&self, presented: &str) -> bool {
        Secret::new(presented) == self.inner.admin_token
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// Before the process exits: one last try to write refreshed tokens the keychain refused
    /// while it was locked. What still cannot be written is logged, as those servers may need a
    /// new sign-in after the restart.
    pub async fn flush_secrets(&self) {
        let vault = self.vault();
        if vault.has_unsaved() {
            if let Err(e) = vault.save_unsaved().await {
                tracing::warn!(error = %e, "refreshed tokens could not be written to the keychain before exit; a server may need a new sign-in after the restart");
            }
        }
    }

    /// Re-reads the config file. A broken file keeps the last good config running and publishes
    /// why; returns the error too.
    pub async fn reload(&self) -> Result<(), ConfigFileError> {
        let mut raw = self.inner.raw.lock().await;
        match file::read(&self.inner.settings.config_path) {
            Ok(loaded) => {
                for warning in &loaded.validated.warnings {
                    tracing::warn!("config: {warning}");
                }
                *raw = loaded.raw;
                self.publish_config(loaded.validated.config);
                self.inner.config_problem.send_replace(None);
                self.emit(Event::ConfigReloaded);
                Ok(())
            }
            Err(e) => {
                tracing::error!("config file rejected, keeping the last good config: {e}");
                self.inner.config_problem.send_replace(Some(e.to_string()));
                self.emit(Event::ConfigRejected {
                    reason: e.to_string(),
                });
                Err(e)
            }
        }
    }

    /// Applies an edit to the raw config, validates it, writes the file atomically and publishes
    /// the result. An invalid edit changes nothing and returns every problem.
    pub async fn edit_config(
        &self,
        edit: impl FnOnce(&mut RawConfig),
    ) -> Result<(), ConfigFileError> {
        let mut raw = self.inner.raw.lock().await;
        let mut next = raw.clone();
        edit(&mut next);
        let validated = file::write(&self.inner.settings.config_path, &next)?;
        *raw = next;
        self.publish_config(validated.config);
        self.inner.config_problem.send_replace(None);
        Ok(())
    }

    fn publish_config(&self, config: Config) {
        self.inner.config.send_if_modified(|current| {
            if **current == config {
                false
            } else {
                *current = Arc::new(config);
                true
            }
        });
    }

    /// Starts the config-file watcher and the health monitors; they stop on shutdown.
    pub fn start_background(&self) -> Result<(), ConfigFileError> {
        let mut changes = ConfigWatcher::new(&self.inner.settings.config_path)?;
        let broker = self.clone();
        let stop = self.shutdown_token();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    change = changes.changed() => {
                        if change.is_none() { break; }
                        // Editors often truncate then write: let a burst of events settle so a
                        // half-written file is not mistaken for the new config.
                        while let Ok(Some(())) = tokio::time::timeout(RELOAD_SETTLE, changes.changed()).await {}
                        let _ = broker.reload().await;
                    }
                }
            }
        });
        self.start_health();
        Ok(())
    }

    /// Starts the health monitors (once; [`Broker::start_background`] does it) on what they
    /// follow: the upstream client, the running config, the events and the shutdown.
    pub fn start_health(&self) {
        self.inner.health.start(health::Inputs {
            upstream: self.upstream().clone(),
            config: self.subscribe_config(),
            events: self.events(),
            stop: self.shutdown_token(),
        });
    }
}

/// The file holding the admin token of the running broker.
pub fn admin_token_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("admin.token")
}

/// Creates a fresh random admin token and writes it where only this user can read it.
fn write_admin_token(data_dir: &std::path::Path) -> std::io::Result<Secret> {
    use base64::Engine;
    let token = Secret::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()),
    );
    crate::fsutil::write_private(&admin_token_path(data_dir), token.expose().as_bytes())?;
    Ok(token)
}
