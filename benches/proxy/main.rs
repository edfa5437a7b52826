//! `cargo bench --no-default-features --bench proxy`: what the broker adds over a bare Rust
//! pass-through proxy, measured in one run against the same fast upstream. Prints a table of
//! figures and ratios (see README "Performance").

mod floor;
mod upstream;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

use mcp_auth_broker::broker::{Broker, Settings};
use mcp_auth_broker::issuer::Issuer;
use mcp_auth_broker::opener::Opener;
use mcp_auth_broker::vault::MemoryStore;

pub const SSE_EVENTS: u32 = 200;
const ROUNDS: usize = 5;
const CALLS_PER_ROUND: usize = 400;
const THROUGHPUT_CALLS: usize = 4000;
const BURST: usize = 1000;

#[derive(Clone)]
struct Target {
    name: &'static str,
    url: String,
    auth: String,
    session: String,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

async fn rpc(c: &reqwest::Client, t: &Target, body: Value) -> Result<reqwest::Response, String> {
    let mut req = c
        .post(&t.url)
        .header("authorization", &t.auth)
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if !t.session.is_empty() {
        req = req
            .header("mcp-session-id", &t.session)
            .header("mcp-protocol-version", "2025-11-25");
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("{} answered {}", t.url, resp.status()));
    }
    Ok(resp)
}

async fn initialize(c: &reqwest::Client, mut t: Target) -> Target {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}});
    let resp = rpc(c, &t, init)
        .await
        .unwrap_or_else(|e| panic!("initialize via {}: {e}", t.name));
    t.session = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let _ = resp.bytes().await;
    t
}

async fn call(c: &reqwest::Client, t: &Target, i: usize) -> Result<(), String> {
    let resp = rpc(c, t, json!({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hello"}}})).await?;
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if !body.windows(5).any(|w| w == b"hello") {
        return Err(format!(
            "unexpected answer via {}: {}",
            t.name,
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

/// Sequential latencies, interleaved round by round so drift hits every target alike.
async fn latencies(c: &reqwest::Client, targets: &[Target]) -> Vec<Vec<Duration>> {
    let mut all = vec![Vec::new(); targets.len()];
    for _ in 0..ROUNDS {
        for (k, t) in targets.iter().enumerate() {
            for i in 0..CALLS_PER_ROUND {
                let start = Instant::now();
                call(c, t, i).await.unwrap();
                all[k].push(start.elapsed());
            }
        }
    }
    for v in &mut all {
        v.sort();
    }
    all
}

async fn throughput(c: &reqwest::Client, t: &Target, concurrency: usize) -> f64 {
    let start = Instant::now();
    let per_task = THROUGHPUT_CALLS / concurrency;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (c, t) = (c.clone(), t.clone());
            tokio::spawn(async move {
                for i in 0..per_task {
                    call(&c, &t, i).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (per_task * concurrency) as f64 / start.elapsed().as_secs_f64()
}

/// Median delay from the upstream sending an SSE event to the client reading it.
async fn sse_delay(c: &reqwest::Client, t: &Target, epoch: Instant) -> Duration {
    let mut req = c
        .get(&t.url)
        .header("authorization", &t.auth)
        .header("accept", "text/event-stream");
    if !t.session.is_empty() {
        req = req
            .header("mcp-session-id", &t.session)
            .header("mcp-protocol-version", "2025-11-25");
    }
    let resp = req.send().await.unwrap();
    assert!(
        resp.status().is_success(),
        "SSE via {}: {}",
        t.name,
        resp.status()
    );
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut delays = Vec::new();
    while let Some(chunk) = stream.next().await {
        let now = epoch.elapsed().as_nanos();
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            if let Some(at) = frame.find("\"sent_ns\":") {
                let digits: String = frame[at + 10..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                let sent: u128 = digits.parse().unwrap();
                delays.push(Duration::from_nanos((now - sent) as u64));
            }
        }
    }
    assert_eq!(
        delays.len(),
        SSE_EVENTS as usize,
        "every SSE event must arrive via {}",
        t.name
    );
    delays.sort();
    pct(&delays, 0.5)
}

fn config(upstream: &str) -> Value {
    json!({"mcp_servers": {
        "bench": {"url": format!("{upstream}/mcp"), "auth_type": "bearer_token", "auth_value": "os.environ/BENCH_UPSTREAM_TOKEN"},
        "m2m": {"url": format!("{upstream}/mcp"), "auth_type": "oauth2", "oauth_flow": "client_credentials",
                "client_id": "bench", "client_secret": "os.environ/BENCH_CLIENT_SECRET", "token_url": format!("{upstream}/token")}
    }})
}

fn api_key(data_dir: &Path, port: u16) -> String {
    std::fs::create_dir_all(data_dir).unwrap();
    let issuer = Issuer::open(
        data_dir,
        url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
    )
    .unwrap();
    let (_, key) = issuer.create_api_key("bench", None).unwrap();
    format!("Bearer {}", key.expose())
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn spawn_serve(dir: &Path, port: u16) -> Child {
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

#[tokio::main]
async fn main() {
    std::env::set_var("BENCH_UPSTREAM_TOKEN", "upstream-token");
    std::env::set_var("BENCH_CLIENT_SECRET", "bench-secret");
    let epoch = Instant::now();
    let up = upstream::start(epoch).await;
    let floor = floor::start(up.base.clone()).await;

    // The broker, in process: same runtime as the floor, so the comparison is like for like.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), config(&up.base).to_string()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let auth = api_key(&dir.path().join("data"), port);
    let settings = Settings {
        port,
        config_path: dir.path().join("config.json"),
        data_dir: dir.path().join("data"),
        opener: Opener::Print,
    };
    let broker = Broker::new(settings, Arc::new(MemoryStore::default())).unwrap();
    let stop = broker.shutdown_token();
    tokio::spawn(mcp_auth_broker::gateway::serve(
        listener,
        broker.clone(),
        async move { stop.cancelled().await },
    ));

    let c = client();
    let direct = initialize(
        &c,
        Target {
            name: "direct",
            url: format!("{}/mcp", up.base),
            auth: "Bearer upstream-token".into(),
            session: String::new(),
        },
    )
    .await;
    let floor_t = initialize(
        &c,
        Target {
            name: "floor",
            url: format!("{floor}/mcp"),
            auth: "Bearer x".into(),
            session: String::new(),
        },
    )
    .await;
    let broker_t = initialize(
        &c,
        Target {
            name: "broker",
            url: format!("http://127.0.0.1:{port}/bench/mcp"),
            auth: auth.clone(),
            session: String::new(),
        },
    )
    .await;
    let targets = [direct.clone(), floor_t.clone(), broker_t.clone()];
    for t in &targets {
        for i in 0..200 {
            call(&c, t, i).await.unwrap(); // warm-up
        }
    }

    let lat = latencies(&c, &targets).await;
    let (d50, f50, b50) = (pct(&lat[0], 0.5), pct(&lat[1], 0.5), pct(&lat[2], 0.5));
    let (d99, f99, b99) = (pct(&lat[0], 0.99), pct(&lat[1], 0.99), pct(&lat[2], 0.99));
    let added = |x: Duration, base: Duration| x.saturating_sub(base);
    let mut rps = Vec::new();
    for t in &targets {
        rps.push(throughput(&c, t, 32).await);
    }
    let sse_direct = sse_delay(&c, &direct, epoch).await;
    let sse_broker = sse_delay(&c, &broker_t, epoch).await;
    let sse_floor = sse_delay(&c, &floor_t, epoch).await;

    // Cold M2M cache, one burst of concurrent calls: how many token requests?
    // No initialize first: that would warm the cache. The bench upstream needs no session.
    let m2m = Target {
        name: "m2m",
        url: format!("http://127.0.0.1:{port}/m2m/mcp"),
        auth: auth.clone(),
        session: String::new(),
    };
    let before = up.token_requests.load(std::sync::atomic::Ordering::SeqCst);
    let burst: Vec<_> = (0..BURST)
        .map(|i| {
            let (c, t) = (c.clone(), m2m.clone());
            tokio::spawn(async move { call(&c, &t, i).await })
        })
        .collect();
    let mut failed = 0;
    for b in burst {
        if b.await.unwrap().is_err() {
            failed += 1;
        }
    }
    let token_requests = up.token_requests.load(std::sync::atomic::Ordering::SeqCst) - before;
    broker.shutdown();

    // The headless broker as a process: start to first proxied call, RSS idle and under load.
    let pdir = tempfile::tempdir().unwrap();
    std::fs::write(
        pdir.path().join("config.json"),
        config(&up.base).to_string(),
    )
    .unwrap();
    let pport = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pauth = api_key(&pdir.path().join("data"), pport);
    let started = Instant::now();
    let mut child = spawn_serve(pdir.path(), pport);
    let proc_t = Target {
        name: "process",
        url: format!("http://127.0.0.1:{pport}/bench/mcp"),
        auth: pauth,
        session: String::new(),
    };
    let first_call = loop {
        if rpc(&c, &proc_t, json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hello"}}})).await.is_ok() {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the broker process never answered"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let proc_t = initialize(&c, proc_t).await;
    let idle_rss = rss_kib(child.id());
    let load = tokio::spawn({
        let (c, t) = (c.clone(), proc_t.clone());
        async move { throughput(&c, &t, 32).await }
    });
    let mut peak_rss = idle_rss;
    while !load.is_finished() {
        peak_rss = peak_rss.max(rss_kib(child.id()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = load.await;
    let _ = child.kill();
    let _ = child.wait();

    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.2}×", a / b)
        } else {
            "n/a".into()
        }
    };
    let f_add = added(f50, d50).as_secs_f64();
    let b_add = added(b50, d50).as_secs_f64();
    println!("\nmcp-auth-broker benchmark ({} calls per target at c=1 in {ROUNDS} interleaved rounds; {THROUGHPUT_CALLS} calls at c=32)", ROUNDS * CALLS_PER_ROUND);
    println!("| measure | direct | floor (bare proxy) | broker | broker vs floor | target |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| p50 latency, ms | {} | {} | {} | | |",
        ms(d50),
        ms(f50),
        ms(b50)
    );
    println!(
        "| p99 latency, ms | {} | {} | {} | | |",
        ms(d99),
        ms(f99),
        ms(b99)
    );
    println!(
        "| added p50, ms | 0 | {} | {} | {} | ≤ 1.3× |",
        ms(added(f50, d50)),
        ms(added(b50, d50)),
        ratio(b_add, f_add)
    );
    println!(
        "| added p99, ms | 0 | {} | {} | {} | |",
        ms(added(f99, d99)),
        ms(added(b99, d99)),
        ratio(added(b99, d99).as_secs_f64(), added(f99, d99).as_secs_f64())
    );
    println!(
        "| req/s at c=32 | {:.0} | {:.0} | {:.0} | {} | ≥ 0.8× |",
        rps[0],
        rps[1],
        rps[2],
        ratio(rps[2], rps[1])
    );
    println!(
        "| SSE event delay p50, ms | {} | {} | {} | added {} ms | < 1 ms added |",
        ms(sse_direct),
        ms(sse_floor),
        ms(sse_broker),
        ms(added(sse_broker, sse_direct))
    );
    println!("| M2M cold burst of {BURST}: token requests | | | {token_requests} ({failed} calls failed) | | exactly 1 |");
    println!(
        "| headless process RSS idle / under load, MiB | | | {:.1} / {:.1} | | ≤ 15 idle |",
        idle_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
    println!(
        "| process start → first proxied call, ms | | | {} | | ≤ 300 |",
        ms(first_call)
    );
    println!(
        "\nmachine: {} cores, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_string())
            )
            .unwrap_or_default()
    );
}
