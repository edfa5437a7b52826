//! `mcp-auth-broker-headless`: the CLI and `serve` without the desktop shell. The installed
//! desktop binary maps WebKitGTK and GTK at start (~46 MiB) even for `serve`; it hands every
//! command that opens no window to this binary, installed next to it (see ARCHITECTURE.md).

#[cfg(feature = "desktop")]
compile_error!("build the headless binary without the desktop feature: cargo build --no-default-features --features headless --bin mcp-auth-broker-headless");

fn main() -> std::process::ExitCode {
    mcp_auth_broker::cli::run()
}
