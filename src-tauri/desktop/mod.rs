//! The desktop shell: tray, dashboard window, notifications.
//!
//! Architecture Invariant: only `desktop` imports tauri.

use std::process::ExitCode;

use crate::cli::Paths;

pub fn run(paths: Paths) -> ExitCode {
    crate::cli::serve::run_headless(paths)
}
