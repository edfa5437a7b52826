//! The broker as the user runs it: its config, an API key minted in its data dir, the headless
//! `serve` process, and that process's resident memory.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use mcp_auth_broker::issuer::Issuer;
use serde_json::{json, Value};

/// Two servers on the bench upstream: `bench` (static token) and `m2m` (client credentials).
pub fn config(upstream: &str) -> Value {
    json!({"mcp_servers": {
        "bench": {"url": format!("{upstream}/mcp"), "auth_type": "bearer_token", "auth_value": "os.environ/BENCH_UPSTREAM_TOKEN"},
        "m2m": {"url": format!("{upstream}/mcp"), "auth_type": "oauth2", "oauth_flow": "client_credentials",
                "client_id": "bench", "client_secret": "os.environ/BENCH_CLIENT_SECRET", "token_url": format!("{upstream}/token")}
    }})
}

/// A client API key, written to `data_dir` before the broker starts.
pub fn api_key(data_dir: &Path, port: u16) -> String {
    std::fs::create_dir_all(data_dir).unwrap();
    let issuer = Issuer::open(
        data_dir,
        url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
    )
    .unwrap();
    let (_, key) = issuer.create_api_key("bench", None).unwrap();
    format!("Bearer {}", key.expose())
}

/// Resident set size of `pid` in KiB, from `/proc` (0 when unreadable).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Starts `mcp-auth-broker serve` headless over the config and data dir in `dir`.
pub fn spawn_serve(dir: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mcp-auth-broker"))
        .args(["serve", "--port", &port.to_string(), "--config"])
        .arg(dir.join("config.json"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}
