//! The installed desktop binary hands every command that opens no window (`serve`, the CLI
//! verbs, a start without a display) to the headless binary installed next to it. Linking the
//! desktop shell maps WebKitGTK and GTK at process start, about 46 MiB of RSS before `main`;
//! `exec` replaces the process (same pid, arguments, environment and stdio, so service managers
//! and pipes see no difference) with one that never linked them.

/// The headless binary's file name, next to the desktop binary in every package.
pub const HEADLESS_BIN: &str = "mcp-auth-broker-headless";

/// Replaces this process with the headless binary next to it, same arguments. Returns only
/// when there is nothing to hand to — a development build (`cargo build`, whose neighbour may be
/// stale) or a package without it — or it cannot be started; the command then runs here.
pub fn to_headless() {
    if tauri::is_dev() {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let Ok(me) = std::env::current_exe() else {
            return;
        };
        let headless = me.with_file_name(HEADLESS_BIN);
        if !headless.is_file() {
            return;
        }
        let err = std::process::Command::new(&headless)
            .args(std::env::args_os().skip(1))
            .exec();
        eprintln!(
            "warning: cannot start {} ({err}); running the command in the desktop binary",
            headless.display()
        );
    }
}
