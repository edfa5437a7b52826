//! Starting the core (config, broker, gateway, monitors) — shared by `serve` and the desktop app.

use std::process::ExitCode;

use tokio::task::JoinHandle;

use super::{exit, Paths};
use crate::broker::{Broker, BrokerError, Settings};
use crate::config::file;
use crate::gateway::{self, BindError};
use crate::opener::Opener;
use crate::vault::VaultError;

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

pub fn run_headless(paths: Paths) -> ExitCode {
    let _log = crate::logging::init(Some(&crate::logging::default_log_dir()), "info");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    runtime.block_on(async {
        // Registered before the gateway announces itself, so an early SIGTERM is not fatal.
        let stop = stop_signal();
        let core = match start(&paths, Opener::Print).await {
            Ok(core) => core,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(e.exit_code());
            }
        };
        let broker = core.broker.clone();
        tokio::spawn(async move {
            stop.await;
            tracing::info!("shutting down");
            broker.shutdown();
        });
        let stopped = core.gateway.await;
        core.broker.flush_secrets().await;
        match stopped {
            Ok(Ok(())) => ExitCode::from(exit::OK),
            Ok(Err(e)) => {
                eprintln!("error: the gateway stopped: {e}");
                ExitCode::from(exit::FAILURE)
            }
            Err(e) => {
                eprintln!("error: the gateway task failed: {e}");
                ExitCode::from(exit::FAILURE)
            }
        }
    })
}

/// Registers for Ctrl-C and, on Unix, SIGTERM (what service managers and `kill` send) right
/// away; the returned future resolves when either arrives.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = ctrl_c.await;
    }
}
