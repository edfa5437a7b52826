//! `serve`: the core ([`crate::startup::start`], which the desktop app starts too) run headless
//! until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use super::{exit, Paths};
use crate::opener::Opener;
use crate::startup::start;

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
