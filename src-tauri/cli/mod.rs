//! Command-line entry: raw arguments parsed by clap, then turned into validated settings.
//! `main` is a thin call into [`run`].

mod bridgekey;
pub mod company;
pub mod connect;
pub mod import;
pub mod key;
pub mod keys;
pub mod login;
pub mod probe;
pub mod remote;
pub mod serve;
pub mod servers;
mod signin;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The start-up inputs and exit codes live with the start-up the desktop app shares; the
/// commands here reach them as `super::{exit, Paths}`.
pub use crate::startup::{exit, Paths};
use crate::upstream::SignInKind;
use crate::vault::StoreKind;

#[derive(Debug, Parser)]
#[command(
    name = "mcp-auth-broker",
    version,
    about = "A local MCP auth broker: sign in to each remote MCP server once, use it from every client."
)]
pub struct Cli {
    /// Gateway port on 127.0.0.1 (default: the config's "port", else 47823).
    #[arg(long, global = true)]
    pub port: Option<u16>,
    /// Config file (default: <OS config dir>/mcp-auth-broker/config.json).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Directory for non-secret state (default: <OS data dir>/mcp-auth-broker).
    #[arg(long, global = true, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
    /// Where upstream tokens are kept: "keychain" (the OS keychain, default) or "file" (encrypted
    /// files under the data dir, for hosts without a keychain; key from MCP_AUTH_BROKER_STORE_KEY
    /// or --store-key-file). Overrides the config's "token_store".
    #[arg(long, global = true, value_name = "keychain|file", value_parser = StoreKind::parse)]
    pub store: Option<StoreKind>,
    /// The file store's key file: base64 of 32 random bytes, owner-only (chmod 600).
    /// Overrides the config's "token_store_key_file".
    #[arg(long, global = true, value_name = "PATH")]
    pub store_key_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker headless (no tray, no window).
    Serve,
    /// Show each server's flow, health and token expiry (from the running broker); with NAME,
    /// that server's flow evidence and auth timeline too.
    Status {
        name: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Sign in to a server (the running broker keeps the tokens). When its authorization server
    /// offers device sign-in, shows a code to confirm on any device; else opens the browser once.
    Login {
        /// The server to sign in to (not with --enterprise).
        #[arg(required_unless_present = "enterprise", conflicts_with = "enterprise")]
        name: Option<String>,
        /// Sign in to the company identity provider (the config's "enterprise" block): one
        /// sign-in for every server with oauth_flow "enterprise".
        #[arg(long, conflicts_with = "device")]
        enterprise: bool,
        /// Print the sign-in address instead of opening a browser, and take back the address
        /// the browser ended on, pasted into the terminal.
        #[arg(long)]
        no_browser: bool,
        /// Sign in with a code confirmed on any device (RFC 8628); an error when not offered.
        #[arg(long, conflicts_with = "browser")]
        device: bool,
        /// Sign in in the browser even when device sign-in is offered.
        #[arg(long)]
        browser: bool,
    },
    /// Sign out of a server: revoke upstream tokens where offered and delete them locally.
    Logout {
        #[arg(required_unless_present = "enterprise", conflicts_with = "enterprise")]
        name: Option<String>,
        /// Sign out of the company identity provider instead of a server.
        #[arg(long)]
        enterprise: bool,
    },
    /// Ask the running broker to check a server's health now.
    Check { name: String },
    /// Print the public key (JWK Set) of a `private_key_jwt` server, to register with the
    /// provider; the key is generated on first need and its private half never leaves the store.
    Key {
        name: String,
        /// Print one JWK instead of a JWK Set.
        #[arg(long)]
        jwk: bool,
    },
    /// Local OAuth clients and their grants: list or revoke.
    Clients {
        #[command(subcommand)]
        command: keys::ClientsCommand,
    },
    /// Local API keys for scripts and clients that cannot do OAuth.
    ApiKey {
        #[command(subcommand)]
        command: keys::ApiKeyCommand,
    },
    /// Discover an upstream's auth and classify its flow, with the evidence; saves nothing.
    Probe(Box<probe::ProbeArgs>),
    /// Bridge a stdio MCP client to a server through the running broker (no browser).
    Connect { name: String },
    /// Import remote servers from Claude Code, Cursor, VS Code or LiteLLM config files.
    Import(import::ImportArgs),
    /// List the configured servers and their client URLs.
    List,
    /// Add a server to the config.
    Add(Box<servers::AddArgs>),
    /// Remove a server from the config (and the secrets typed in for it).
    Remove { name: String },
    /// Print the snippet that points a client at a server through the broker.
    ClientConfig {
        name: String,
        /// claude, cursor or vscode.
        #[arg(long = "for", value_name = "CLIENT")]
        client: String,
    },
}

impl Cli {
    pub fn paths(&self) -> Paths {
        Paths {
            config: self
                .config
                .clone()
                .unwrap_or_else(crate::config::file::default_path),
            data_dir: self.data_dir.clone().unwrap_or_else(|| {
                dirs::data_dir()
                    .unwrap_or_else(std::env::temp_dir)
                    .join("mcp-auth-broker")
            }),
            port_flag: self.port,
            store: self.store,
            store_key_file: self.store_key_file.clone(),
        }
    }
}

/// True when a desktop session is available for the tray and window.
pub fn display_available() -> bool {
    if cfg!(any(target_os = "macos", target_os = "windows")) {
        return true;
    }
    std::env::var_os("DISPLAY").is_some_and(|v| !v.is_empty())
        || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|v| !v.is_empty())
}

/// Whether this start opens the desktop shell: no command, and a display to open it on.
/// Everything else runs headless (and the installed desktop binary hands it to the headless one).
pub fn opens_window(cli: &Cli, display: bool) -> bool {
    cli.command.is_none() && display
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    if cli.port == Some(0) {
        eprintln!("error: --port 0 is not allowed: the port must be fixed so client URLs and redirect URIs stay stable; pick one from 1024 to 65535");
        return ExitCode::from(exit::USAGE);
    }
    #[cfg(feature = "desktop")]
    if !opens_window(&cli, display_available()) {
        crate::desktop::handoff::to_headless();
    }
    let paths = cli.paths();
    match cli.command {
        Some(Command::Serve) => serve::run_headless(paths),
        Some(Command::Status { name, json }) => remote::status(&paths, name.as_deref(), json),
        Some(Command::Login {
            name,
            enterprise,
            no_browser,
            device,
            browser,
        }) => {
            let kind = match (device, browser) {
                (true, _) => SignInKind::Device,
                (_, true) => SignInKind::Browser,
                _ => SignInKind::Auto,
            };
            login::login(&paths, &company::target(name, enterprise), no_browser, kind)
        }
        Some(Command::Logout { name, enterprise }) => {
            login::logout(&paths, &company::target(name, enterprise))
        }
        Some(Command::Check { name }) => login::check(&paths, &name),
        Some(Command::Key { name, jwk }) => key::key(&paths, &name, jwk),
        Some(Command::Clients { command }) => keys::clients(&paths, command),
        Some(Command::ApiKey { command }) => keys::api_key(&paths, command),
        Some(Command::Probe(args)) => probe::probe(&paths, *args),
        Some(Command::Connect { name }) => connect::connect(&paths, &name),
        Some(Command::Import(args)) => import::import(&paths, args),
        Some(Command::List) => servers::list(&paths),
        Some(Command::Add(args)) => servers::add(&paths, *args),
        Some(Command::Remove { name }) => servers::remove(&paths, &name),
        Some(Command::ClientConfig { name, client }) => {
            servers::client_config(&paths, &name, &client)
        }
        None => run_app(paths),
    }
}

#[cfg(feature = "desktop")]
fn run_app(paths: Paths) -> ExitCode {
    if display_available() {
        crate::desktop::run(paths)
    } else {
        eprintln!("No display found (DISPLAY/WAYLAND_DISPLAY unset): running headless, as `mcp-auth-broker serve`.");
        serve::run_headless(paths)
    }
}

#[cfg(not(feature = "desktop"))]
fn run_app(paths: Paths) -> ExitCode {
    eprintln!("This build has no desktop shell (built without the `desktop` feature): running headless, as `mcp-auth-broker serve`.");
    serve::run_headless(paths)
}
