//! `cargo bench --no-default-features --bench proxy`: what the broker adds over a bare Rust
//! pass-through proxy, measured in one run against the same fast upstream. Prints a table of
//! figures and ratios (see README "Performance").

mod alloc;
mod floor;
mod process;
mod report;
mod upstream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

use process::{api_key, config, rss_kib, spawn_serve};

use mcp_auth_broker::broker::{Broker, Settings};
use mcp_auth_broker::opener::Opener;
use mcp_auth_broker::vault::MemoryStore;

pub const SSE_EVENTS: u32 = 200;
pub const ROUNDS: usize = 5;
pub const LATENCY_CALLS: usize = 5000;
pub const THROUGHPUT_CALLS: usize = 4000;
pub const BURST: usize = 1000;
const ALLOC_CALLS: usize = 1000;

#[global_allocator]
static COUNTING: alloc::Counting = alloc::Counting;

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

/// Sequential latencies, interleaved call by call (direct, floor, broker, then the next call,
/// the order rotating so none always follows another): a pause of the machine, however short,
/// hits all three alike instead of one target's stretch of calls.
async fn latencies(c: &reqwest::Client, targets: &[Target]) -> Vec<Vec<Duration>> {
    let mut all = vec![Vec::with_capacity(LATENCY_CALLS); targets.len()];
    for i in 0..LATENCY_CALLS {
        for j in 0..targets.len() {
            let k = (i + j) % targets.len();
            let start = Instant::now();
            call(c, &targets[k], i).await.unwrap();
            all[k].push(start.elapsed());
        }
    }
    for v in &mut all {
        v.sort();
    }
    all
}

/// Heap allocations per sequential call, whole process: client, upstream and proxy together, so
/// a proxy's own share is its row minus the direct row.
async fn allocations_per_call(c: &reqwest::Client, t: &Target) -> f64 {
    let before = alloc::count();
    for i in 0..ALLOC_CALLS {
        call(c, t, i).await.unwrap();
    }
    (alloc::count() - before) as f64 / ALLOC_CALLS as f64
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

    // `BENCH_PROFILE=direct|floor|broker`: only sequential calls to that target, for a profiler
    // (e.g. `valgrind --tool=callgrind`) to count what one call costs through it.
    if let Ok(name) = std::env::var("BENCH_PROFILE") {
        let t = targets
            .iter()
            .find(|t| t.name == name)
            .expect("BENCH_PROFILE: direct, floor or broker");
        println!(
            "{name}: {:.0} heap allocations per call",
            allocations_per_call(&c, t).await
        );
        return;
    }
    let lat = latencies(&c, &targets).await;
    let mut allocs = Vec::new();
    for t in &targets {
        allocs.push(allocations_per_call(&c, t).await);
    }
    // Throughput, interleaved round by round like the latencies; each target's median round.
    let mut rounds = vec![Vec::new(); targets.len()];
    for _ in 0..ROUNDS {
        for (k, t) in targets.iter().enumerate() {
            rounds[k].push(throughput(&c, t, 32).await);
        }
    }
    let rps: Vec<f64> = rounds
        .iter_mut()
        .map(|r| {
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        })
        .collect();
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

    report::print(&report::Figures {
        latencies: &lat,
        rps: &rps,
        allocs: &allocs,
        sse: [sse_direct, sse_floor, sse_broker],
        token_requests,
        failed,
        rss_kib: (idle_rss, peak_rss),
        first_call,
    });
}
