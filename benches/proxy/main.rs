//! `cargo bench --no-default-features --bench proxy`: what the broker adds over a bare Rust
//! pass-through proxy, measured in one run against the same fast upstream, in both MCP eras
//! (2025-11-25 sessions, 2026-07-28 stateless) and on both endpoints (`/{server}/mcp` and the
//! aggregate `/mcp`); then a headless broker process, and one with many servers and client
//! sessions on `/mcp` (the scale row). Prints the figures, each target and whether it is met
//! (see README "Performance"). `BENCH_QUICK=1` runs reduced counts, for development.

mod alloc;
mod client;
mod floor;
mod headless;
mod measure;
mod modern;
mod process;
mod report;
mod scale;
mod upstream;

use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use client::{call, client, open, Era, Target};
use mcp_auth_broker::broker::{Broker, Settings};
use mcp_auth_broker::opener::Opener;
use mcp_auth_broker::vault::MemoryStore;

pub const SSE_EVENTS: u32 = 200;

/// How much each measurement does; `BENCH_QUICK=1` makes every count small.
pub struct Counts {
    pub quick: bool,
    pub latency_calls: usize,
    pub throughput_calls: usize,
    pub rounds: usize,
    pub burst: usize,
    /// Fixed: `scripts/bench-instructions.sh` divides by it.
    pub alloc_calls: usize,
    pub warmup: usize,
    pub scale_servers: usize,
    pub scale_sessions: usize,
}

pub fn counts() -> &'static Counts {
    static COUNTS: OnceLock<Counts> = OnceLock::new();
    COUNTS.get_or_init(|| {
        let quick = std::env::var_os("BENCH_QUICK").is_some_and(|v| v != "0");
        let (latency_calls, throughput_calls, rounds, burst, scale_sessions) = if quick {
            (300, 640, 3, 200, 100)
        } else {
            (5000, 4000, 5, 1000, 1000)
        };
        Counts {
            quick,
            latency_calls,
            throughput_calls,
            rounds,
            burst,
            // `BENCH_PROFILE_CALLS=N`: another number of sequential calls (development, e.g. for
            // `perf stat` where set-up would otherwise dominate).
            alloc_calls: std::env::var("BENCH_PROFILE_CALLS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1000),
            warmup: 200,
            scale_servers: 20,
            // `BENCH_SCALE_SESSIONS=N`: another number of scale clients (development).
            scale_sessions: std::env::var("BENCH_SCALE_SESSIONS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(scale_sessions),
        }
    })
}

#[global_allocator]
static COUNTING: alloc::Counting = alloc::Counting;

/// One way to call `echo`, and why it cannot be measured if it cannot.
pub struct Route {
    pub target: Target,
    pub failure: Option<String>,
}

/// Opens the route and warms it up; a route that fails is reported, not measured.
async fn prepare(c: &reqwest::Client, target: Target) -> Route {
    let opened = match open(c, target.clone()).await {
        Ok(t) => t,
        Err(e) => {
            return Route {
                target,
                failure: Some(e),
            }
        }
    };
    for i in 0..counts().warmup {
        if let Err(e) = call(c, &opened, i).await {
            return Route {
                target: opened,
                failure: Some(e),
            };
        }
    }
    Route {
        target: opened,
        failure: None,
    }
}

/// The broker, in process: same runtime as the floor, so the comparison is like for like.
async fn start_in_process(upstream: &str) -> (Broker, u16, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    // Plus `legacy`, 2025-11-25 only: the server `/mcp` of that era calls ([`aggregated`]).
    let mut config = process::config(upstream);
    config["mcp_servers"]["legacy"] = serde_json::json!({"url": format!("{upstream}/legacy/mcp"),
        "auth_type": "bearer_token", "auth_value": "os.environ/BENCH_UPSTREAM_TOKEN"});
    let config = config.to_string();
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let auth = process::api_key(&dir.path().join("data"), port);
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
    (broker, port, auth, dir)
}

/// The tool `/mcp` of `era` calls: one of a server of that era, so every hop speaks the era the
/// direct and floor calls speak (`legacy` is 2025-11-25 only; the broker speaks 2026-07-28 to the
/// dual-era `bench`).
fn aggregated(era: Era) -> &'static str {
    match era {
        Era::Legacy => "legacy__echo",
        Era::Modern => "bench__echo",
    }
}

/// Every route, legacy then modern: direct, floor, `/bench/mcp`, `/mcp`; then the bridge.
fn targets(upstream: &str, floor: &str, broker: &str, auth: &str) -> Vec<Target> {
    let names = [
        ["direct", "floor", "broker", "aggregate"],
        [
            "direct-modern",
            "floor-modern",
            "broker-modern",
            "aggregate-modern",
        ],
    ];
    let mut out = Vec::new();
    for (era, names) in [Era::Legacy, Era::Modern].into_iter().zip(names) {
        let t = |name, url: String, auth: &str, tool| Target::new(name, era, url, auth, tool);
        out.extend([
            t(
                names[0],
                format!("{upstream}/mcp"),
                "Bearer upstream-token",
                "echo",
            ),
            t(names[1], format!("{floor}/mcp"), "Bearer x", "echo"),
            t(names[2], format!("{broker}/bench/mcp"), auth, "echo"),
            t(names[3], format!("{broker}/mcp"), auth, aggregated(era)),
        ]);
    }
    // A 2025-11-25 client on `/mcp` calling the dual-era server, which the broker speaks
    // 2026-07-28 to: the bridge. Reported without a target: the upstream does the modern era's
    // work (its headers and `_meta`), which the direct and floor calls of the client's era do not.
    let url = format!("{broker}/mcp");
    out.push(Target::new("bridge", Era::Legacy, url, auth, "bench__echo"));
    out
}

/// Cold M2M cache, one burst of concurrent calls: how many token requests, how many failed calls.
/// No initialize first: that would warm the cache. The bench upstream needs no session.
async fn m2m_burst(
    c: &reqwest::Client,
    up: &upstream::Upstream,
    port: u16,
    auth: &str,
) -> (usize, usize) {
    let url = format!("http://127.0.0.1:{port}/m2m/mcp");
    let m2m = Target::new("m2m", Era::Legacy, url, auth, "echo");
    let before = up.token_requests.load(SeqCst);
    let burst: Vec<_> = (0..counts().burst)
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
    (up.token_requests.load(SeqCst) - before, failed)
}

#[tokio::main]
async fn main() {
    std::env::set_var("BENCH_UPSTREAM_TOKEN", "upstream-token");
    std::env::set_var("BENCH_CLIENT_SECRET", "bench-secret");
    let epoch = Instant::now();
    let up = upstream::start(epoch).await;
    let floor = floor::start(up.base.clone()).await;
    let (broker, port, auth, _dir) = start_in_process(&up.base).await;
    let c = client();
    let base = format!("http://127.0.0.1:{port}");
    let mut routes = Vec::new();
    for t in targets(&up.base, &floor, &base, &auth) {
        routes.push(prepare(&c, t).await);
    }

    // `BENCH_PROFILE=<target name>`: only sequential calls to that target, for a profiler (e.g.
    // `valgrind --tool=callgrind`) to count what one call costs through it. The set-up above is
    // the same whichever target is named, so totals can be subtracted.
    if let Ok(name) = std::env::var("BENCH_PROFILE") {
        let route = routes.iter().find(|r| r.target.name == name);
        let route = route.unwrap_or_else(|| panic!("BENCH_PROFILE: no target named {name}"));
        if let Some(why) = &route.failure {
            panic!("BENCH_PROFILE: {name} cannot be called: {why}");
        }
        let per_call = measure::allocations_per_call(&c, &route.target).await;
        println!("{name}: {per_call:.0} heap allocations per call");
        // `BENCH_PROFILE_P50=1`: also the target's p50 beside the direct call's, interleaved (a
        // quick look at one route's latency while changing it).
        if std::env::var_os("BENCH_PROFILE_P50").is_some() {
            let direct = routes.iter().find(|r| r.target.name == "direct");
            let direct = direct.expect("the direct target").target.clone();
            println!(
                "{}",
                measure::added_p50(&c, direct, route.target.clone()).await
            );
        }
        return;
    }
    let live: Vec<usize> = (0..routes.len())
        .filter(|&k| routes[k].failure.is_none())
        .collect();
    let live_targets: Vec<Target> = live.iter().map(|&k| routes[k].target.clone()).collect();
    let lat = measure::latencies(&c, &live_targets).await;
    // `BENCH_LATENCY_ONLY=1`: only the interleaved latencies, each route's added p50 against its
    // era's floor (a quick look at the latency rows while changing a route).
    if std::env::var_os("BENCH_LATENCY_ONLY").is_some() {
        println!("{}", measure::added_ratios(&live_targets, &lat));
        return;
    }
    let mut allocs = Vec::new();
    for t in &live_targets {
        allocs.push(measure::allocations_per_call(&c, t).await);
    }
    let rps = measure::median_throughput(&c, &live_targets).await;
    let sse = [0, 1, 2].map(|k| routes[k].target.clone());
    let mut sse_delays = Vec::new();
    for t in &sse {
        sse_delays.push(measure::sse_delay(&c, t, epoch).await);
    }
    let (token_requests, failed) = m2m_burst(&c, &up, port, &auth).await;
    broker.shutdown();

    let headless = headless::run(&c, &up.base).await;
    let scale = scale::run(&c, &up).await;

    let mut measured = vec![None; routes.len()];
    for (j, &k) in live.iter().enumerate() {
        measured[k] = Some(report::Measured {
            latencies: lat[j].clone(),
            rps: rps[j],
            allocs: allocs[j],
        });
    }
    report::print(&report::Figures {
        routes: &routes,
        measured: &measured,
        sse: [sse_delays[0], sse_delays[1], sse_delays[2]],
        token_requests,
        failed,
        headless: &headless,
        scale: &scale,
    });
}
