//! Starting the core: what the headless `serve` command and the desktop app share, so that
//! neither depends on the other. [`Paths`] are the start-up inputs after defaults, [`start`]
//! reads the config, opens the token store, binds the port, builds the broker and starts the
//! gateway and monitors; [`exit`] the exit codes both report.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::broker::{Broker, BrokerError, Settings};
use crate::config::{file, Config, DEFAULT_PORT};
use crate::gateway::{self, BindError};
use crate::opener::Opener;
use crate::vault::{StoreChoice, StoreKind, TokenStore, VaultError};

/// Exit codes scripts can rely on.
pub mod exit {
    pub const OK: u8 = 0;
    /// Something failed at run time (upstream, keychain, network).
    pub const FAILURE: u8 = 1;
    /// Bad usage or bad config: fix the command line or the file.
    pub const USAGE: u8 = 2;
    /// The gateway port is taken.
    pub const PORT_IN_USE: u8 = 3;
}

/// Paths and port after defaults are applied.
#[derive(Debug, Clone)]
pub struct Paths {
    pub config: PathBuf,
    pub data_dir: PathBuf,
    pub port_flag: Option<u16>,
    /// `--store` and `--store-key-file`, when given.
    pub store: Option<StoreKind>,
    pub store_key_file: Option<PathBuf>,
}

impl Paths {
    /// `--port` wins, then the config's `port`, then the default.
    pub fn port(&self, config_port: Option<u16>) -> u16 {
        self.port_flag.or(config_port).unwrap_or(DEFAULT_PORT)
    }

    /// The token store: `--store` / `--store-key-file` win over the config's `token_store` /
    /// `token_store_key_file`; neither set means the keychain.
    pub fn store_choice(&self, config: &Config) -> StoreChoice {
        StoreChoice {
            kind: self.store.or(config.token_store).unwrap_or_default(),
            key_file: self
                .store_key_file
                .clone()
                .or_else(|| config.token_store_key_file.clone()),
        }
    }

    /// Opens the chosen store over this data dir (a file store's key is checked here).
    pub fn open_store(&self, config: &Config) -> Result<Arc<dyn TokenStore>, VaultError> {
        crate::vault::open_store(&self.store_choice(config), &self.data_dir)
    }

    /// [`Paths::open_store`] for commands that have not read the config file yet.
    pub fn configured_store(&self) -> Result<Arc<dyn TokenStore>, String> {
        let loaded = crate::config::file::read(&self.config).map_err(|e| e.to_string())?;
        self.open_store(&loaded.validated.config)
            .map_err(|e| e.to_string())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] file::ConfigFileError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Store(#[from] VaultError),
}

impl StartError {
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Config(_) => exit::USAGE,
            StartError::Bind(BindError::HeldByBroker { .. } | BindError::InUse { .. }) => {
                exit::PORT_IN_USE
            }
            // A missing, exposed or wrong key: fix the command line, the environment or the file.
            StartError::Store(VaultError::StoreKey(_)) => exit::USAGE,
            StartError::Bind(BindError::Other { .. })
            | StartError::Broker(_)
            | StartError::Store(_) => exit::FAILURE,
        }
    }
}

/// The running core: the broker and the gateway task.
pub struct Core {
    pub broker: Broker,
    pub gateway: JoinHandle<std::io::Result<()>>,
}

/// Reads the config, binds the port, builds the broker and starts the gateway and monitors.
pub async fn start(paths: &Paths, opener: Opener) -> Result<Core, StartError> {
    let loaded = file::read(&paths.config)?;
    let port = paths.port(loaded.validated.config.port);
    // Before the port: a wrong or missing key stops the start with nothing bound or touched.
    let store = paths.open_store(&loaded.validated.config)?;
    let listener = gateway::bind(port).await?;
    let settings = Settings {
        port,
        config_path: paths.config.clone(),
        data_dir: paths.data_dir.clone(),
        opener,
    };
    let broker = Broker::new(settings, store)?;
    broker.start_background()?;
    let stop = broker.shutdown_token();
    let gateway = tokio::spawn(gateway::serve(listener, broker.clone(), async move {
        stop.cancelled().await
    }));
    tracing::info!(
        "gateway listening on http://127.0.0.1:{port} (config {}; tokens in {})",
        paths.config.display(),
        broker.vault().info().description
    );
    Ok(Core { broker, gateway })
}
