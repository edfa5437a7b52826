//! The broker as the user runs it: its config, an API key minted in its data dir, the headless
//! `serve` process, that process's resident memory, and when its servers have been probed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// The scale row's servers: `leg01…` on the legacy-only endpoint, `mod01…` on the dual-era one,
/// `per_kind` of each; health probes once at start and then not again during the run.
pub fn scale_config(upstream: &str, per_kind: usize) -> Value {
    let mut servers = serde_json::Map::new();
    for i in 1..=per_kind {
        for (prefix, path) in [("leg", "legacy"), ("mod", "dual")] {
            servers.insert(
                format!("{prefix}{i:02}"),
                json!({"url": format!("{upstream}/{path}/mcp"), "auth_type": "bearer_token", "auth_value": "os.environ/BENCH_UPSTREAM_TOKEN"}),
            );
        }
    }
    json!({"mcp_servers": servers, "health_interval_secs": 86_400})
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

/// A free port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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

/// A headless broker process and what a client needs to reach it.
pub struct Proc {
    pub child: Child,
    pub port: u16,
    /// `Bearer …` with an API key for every server and `/mcp`.
    pub auth: String,
    /// When the process was spawned (after its config and key were written).
    pub spawned: Instant,
    _dir: tempfile::TempDir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a broker process over `config`, in a fresh config and data dir.
pub fn start_broker(config: &Value) -> Proc {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let port = free_port();
    let auth = api_key(&dir.path().join("data"), port);
    let spawned = Instant::now();
    let child = spawn_serve(dir.path(), port);
    Proc {
        child,
        port,
        auth,
        spawned,
        _dir: dir,
    }
}

/// Waits until the broker on `port` answers `/api/status` with every server probed once, and
/// returns each server's state (`name: state era`), so probes do not mix with what is measured.
pub async fn probed(c: &reqwest::Client, port: u16) -> Result<Vec<String>, String> {
    let started = Instant::now();
    loop {
        let url = format!("http://127.0.0.1:{port}/api/status");
        if let Ok(resp) = c.get(&url).send().await {
            let status: Value = resp.json().await.map_err(|e| e.to_string())?;
            let servers = status["servers"].as_object().cloned().unwrap_or_default();
            let state = |s: &Value| s["state"]["state"].as_str().unwrap_or("").to_string();
            let pending = |s: &Value| matches!(state(s).as_str(), "unknown" | "checking");
            if !servers.is_empty() && !servers.values().any(pending) {
                return Ok(servers
                    .iter()
                    .map(|(name, s)| {
                        let era = s["state"]["era"].as_str().unwrap_or("");
                        format!("{name} {} {era}", state(s))
                    })
                    .collect());
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err("the broker's servers were not all probed within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
