//! The benchmark's table: figures for direct, floor and broker, with the broker-vs-floor ratios
//! the targets are about (README "Performance").

use std::time::Duration;

use super::{pct, BURST, LATENCY_CALLS, ROUNDS, THROUGHPUT_CALLS};

/// What one run measured; `[direct, floor, broker]` wherever there are three.
pub struct Figures<'a> {
    /// Sorted sequential latencies per target.
    pub latencies: &'a [Vec<Duration>],
    /// Median requests per second at concurrency 32.
    pub rps: &'a [f64],
    /// Heap allocations per call, whole process.
    pub allocs: &'a [f64],
    /// Median delay of an SSE event.
    pub sse: [Duration; 3],
    /// Token requests in the cold M2M burst, and its failed calls.
    pub token_requests: usize,
    pub failed: usize,
    /// Headless process RSS, idle and at its peak under load.
    pub rss_kib: (u64, u64),
    /// Process start to the first proxied call.
    pub first_call: Duration,
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "n/a".into()
    }
}

pub fn print(f: &Figures) {
    let lat = f.latencies;
    let (d50, f50, b50) = (pct(&lat[0], 0.5), pct(&lat[1], 0.5), pct(&lat[2], 0.5));
    let (d99, f99, b99) = (pct(&lat[0], 0.99), pct(&lat[1], 0.99), pct(&lat[2], 0.99));
    let added = |x: Duration, base: Duration| x.saturating_sub(base);
    let secs = |x: Duration, base: Duration| added(x, base).as_secs_f64();
    let (rps, allocs, sse) = (f.rps, f.allocs, f.sse);
    println!("\nmcp-auth-broker benchmark ({LATENCY_CALLS} calls per target at c=1, interleaved call by call; at c=32 the median of {ROUNDS} interleaved rounds of {THROUGHPUT_CALLS} calls)");
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
        ratio(secs(b50, d50), secs(f50, d50))
    );
    println!(
        "| added p99, ms | 0 | {} | {} | {} | |",
        ms(added(f99, d99)),
        ms(added(b99, d99)),
        ratio(secs(b99, d99), secs(f99, d99))
    );
    println!(
        "| req/s at c=32 | {:.0} | {:.0} | {:.0} | {} | ≥ 0.8× |",
        rps[0],
        rps[1],
        rps[2],
        ratio(rps[2], rps[1])
    );
    println!(
        "| heap allocations per call, whole process | {:.0} | {:.0} (+{:.0}) | {:.0} (+{:.0}) | {} of the added | |",
        allocs[0],
        allocs[1],
        allocs[1] - allocs[0],
        allocs[2],
        allocs[2] - allocs[0],
        ratio(allocs[2] - allocs[0], allocs[1] - allocs[0])
    );
    println!(
        "| SSE event delay p50, ms | {} | {} | {} | added {} ms | < 1 ms added |",
        ms(sse[0]),
        ms(sse[1]),
        ms(sse[2]),
        ms(added(sse[2], sse[0]))
    );
    println!(
        "| M2M cold burst of {BURST}: token requests | | | {} ({} calls failed) | | exactly 1 |",
        f.token_requests, f.failed
    );
    println!(
        "| headless process RSS idle / under load, MiB | | | {:.1} / {:.1} | | ≤ 15 idle |",
        f.rss_kib.0 as f64 / 1024.0,
        f.rss_kib.1 as f64 / 1024.0
    );
    println!(
        "| process start → first proxied call, ms | | | {} | | ≤ 300 |",
        ms(f.first_call)
    );
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("\nmachine: {cores} cores, {cpu}");
}
