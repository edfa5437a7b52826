//! The benchmark's output: a table of what each route measured, then every figure a target is
//! about, with the target and whether it is met (README "Performance").

use std::time::Duration;

use super::headless::Headless;
use super::measure::{self, pct};
use super::scale::{Phase, Scale};
use super::{counts, Route};

/// What one route measured.
#[derive(Clone)]
pub struct Measured {
    /// Sorted sequential latencies.
    pub latencies: Vec<Duration>,
    /// Median requests per second at concurrency 32.
    pub rps: f64,
    /// Heap allocations per call, whole process.
    pub allocs: f64,
}

/// What one run measured; `measured[k]` belongs to `routes[k]` (`None`: it failed).
pub struct Figures<'a> {
    pub routes: &'a [Route],
    pub measured: &'a [Option<Measured>],
    /// Median delay of an SSE event: direct, floor, broker.
    pub sse: [Duration; 3],
    /// Token requests in the cold M2M burst, and its failed calls.
    pub token_requests: usize,
    pub failed: usize,
    pub headless: &'a Headless,
    pub scale: &'a Scale,
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn label(name: &str) -> &'static str {
    match name.trim_end_matches("-modern") {
        "direct" => "direct",
        "floor" => "floor (bare proxy)",
        "broker" => "`/{server}/mcp`",
        "bridge" => "`/mcp` to a server spoken to in 2026-07-28 (bridged)",
        _ => "`/mcp` (aggregate)",
    }
}

/// A failure cut to one table cell.
fn short(why: &str) -> String {
    let one_line = why.replace(['\n', '|'], " ");
    let mut cut: String = one_line.chars().take(160).collect();
    if cut.len() < one_line.len() {
        cut.push('…');
    }
    cut
}

fn yes(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "**no**"
    }
}

/// The index of the route `name` in the run's order.
fn index(f: &Figures, name: &str) -> usize {
    f.routes.iter().position(|r| r.target.name == name).unwrap()
}

fn calls_table(f: &Figures) {
    let c = counts();
    println!("\nmcp-auth-broker benchmark ({} calls per route at c=1, interleaved call by call; at c=32 the median of {} interleaved rounds of {} calls)", c.latency_calls, c.rounds, c.throughput_calls);
    println!("| route | era | p50 ms | p99 ms | added p50 ms | added p99 ms | req/s at c=32 | heap allocations per call (added) |");
    println!("|---|---|---|---|---|---|---|---|");
    for (k, route) in f.routes.iter().enumerate() {
        let t = &route.target;
        let direct = index(f, &format!("direct{}", t.era.suffix()));
        let (Some(m), Some(d)) = (&f.measured[k], &f.measured[direct]) else {
            let why = route.failure.as_deref().unwrap_or("direct call failed");
            println!(
                "| {} | {} | failed: {} | | | | | |",
                label(t.name),
                t.era.name(),
                short(why)
            );
            continue;
        };
        let (p50, p99) = (pct(&m.latencies, 0.5), pct(&m.latencies, 0.99));
        let added50 = p50.saturating_sub(pct(&d.latencies, 0.5));
        let added99 = p99.saturating_sub(pct(&d.latencies, 0.99));
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {:.0} (+{:.0}) |",
            label(t.name),
            t.era.name(),
            ms(p50),
            ms(p99),
            ms(added50),
            ms(added99),
            m.rps,
            m.allocs,
            m.allocs - d.allocs
        );
    }
}

/// The two comparisons with the floor of `route`'s era: added p50 and throughput.
fn versus_floor(f: &Figures, name: &str, rows: &mut Vec<[String; 4]>) {
    let k = index(f, name);
    let era = f.routes[k].target.era;
    let suffix = era.suffix();
    let what = format!("{}, {}", label(name), era.name());
    let floor = &f.measured[index(f, &format!("floor{suffix}"))];
    let direct = &f.measured[index(f, &format!("direct{suffix}"))];
    let (Some(m), Some(fl), Some(d)) = (&f.measured[k], floor, direct) else {
        let why = f.routes[k]
            .failure
            .as_deref()
            .unwrap_or("its floor or direct call failed");
        let cell = format!("not measured: {}", short(why));
        rows.push([
            format!("{what}: added p50 vs the floor's"),
            cell.clone(),
            "≤ 1.3×".into(),
            yes(false).into(),
        ]);
        rows.push([
            format!("{what}: req/s at c=32 vs the floor's"),
            cell,
            "≥ 0.8×".into(),
            yes(false).into(),
        ]);
        return;
    };
    let [a, b, ratio] = measure::added_vs_floor(&m.latencies, &fl.latencies, &d.latencies);
    rows.push([
        format!("{what}: added p50 vs the floor's"),
        format!("{ratio:.2}× ({:.3} / {:.3} ms)", a * 1e3, b * 1e3),
        "≤ 1.3×".into(),
        yes(ratio <= 1.3).into(),
    ]);
    let ratio = m.rps / fl.rps;
    rows.push([
        format!("{what}: req/s at c=32 vs the floor's"),
        format!("{ratio:.2}× ({:.0} / {:.0})", m.rps, fl.rps),
        "≥ 0.8×".into(),
        yes(ratio >= 0.8).into(),
    ]);
}

fn process_rows(f: &Figures, rows: &mut Vec<[String; 4]>) {
    let sse_added = f.sse[2].saturating_sub(f.sse[0]);
    rows.push([
        "`/{server}/mcp`: SSE event delay added over direct (p50)".into(),
        format!(
            "{} ms (direct {}, floor {})",
            ms(sse_added),
            ms(f.sse[0]),
            ms(f.sse[1])
        ),
        "< 1 ms".into(),
        yes(sse_added < Duration::from_millis(1)).into(),
    ]);
    rows.push([
        format!("M2M cold burst of {}: token requests", counts().burst),
        format!("{} ({} calls failed)", f.token_requests, f.failed),
        "exactly 1, none failed".into(),
        yes(f.token_requests == 1 && f.failed == 0).into(),
    ]);
    let (idle, load) = f.headless.rss_kib;
    rows.push([
        "headless process RSS idle (under load), MiB".into(),
        format!("{:.1} ({:.1})", idle as f64 / 1024.0, load as f64 / 1024.0),
        "≤ 15 idle".into(),
        yes(idle <= 15 * 1024).into(),
    ]);
    rows.push([
        "process start → first proxied call".into(),
        format!("{} ms", ms(f.headless.first_call)),
        "≤ 300 ms".into(),
        yes(f.headless.first_call <= Duration::from_millis(300)).into(),
    ]);
}

/// RSS growth per client a phase left behind, in KB: legacy, per session the broker still
/// holds; modern, per client.
fn per_client_kb(p: &Phase) -> f64 {
    let kept = if p.held > 0 { p.held } else { p.clients };
    (p.rss_after_kib as f64 - p.rss_before_kib as f64) * 1.024 / kept as f64
}

fn phase_row(p: &Phase, servers: usize, what: &str) -> [String; 4] {
    let kb = per_client_kb(p);
    let mut value = format!(
        "{kb:.1} KB ({:.1} → {:.1} MiB",
        p.rss_before_kib as f64 / 1024.0,
        p.rss_after_kib as f64 / 1024.0
    );
    if p.held > 0 {
        value += &format!(", {} of {} sessions held", p.held, p.clients);
    }
    value += &format!("; {} tools listed)", p.tools_min);
    if let Some(why) = &p.first_failure {
        value += &format!("; {} of {} failed: {}", p.failed, p.clients, short(why));
    }
    let met = kb <= 50.0 && p.failed == 0 && p.tools_min == servers;
    [
        format!("scale, {servers} servers × {} {what}", p.clients),
        value,
        format!("≤ 50 KB, {servers} tools listed, none failed"),
        yes(met).into(),
    ]
}

fn scale_rows(s: &Scale, rows: &mut Vec<[String; 4]>) {
    let n = s.per_kind;
    let head = format!("scale, {} servers", 2 * n);
    let what = "legacy client sessions: broker RSS growth per idle session it holds";
    rows.push(phase_row(&s.legacy, 2 * n, what));
    let what = "modern clients: broker RSS growth per client";
    rows.push(phase_row(&s.modern, 2 * n, what));
    let (l, d) = (&s.legacy_up, &s.dual_up);
    let count_rows = [
        (
            "upstream sessions opened at the legacy-only servers",
            l.sessions_opened,
            format!("{} open at the end", l.sessions_open),
            n,
        ),
        (
            "upstream sessions opened at the dual-era servers",
            d.sessions_opened,
            format!("{} open at the end", d.sessions_open),
            0,
        ),
        (
            "GET streams held open at the legacy-only servers",
            l.gets_open,
            format!("{} refused past the cap", l.gets_refused),
            n,
        ),
        (
            "GET streams held open at the dual-era servers",
            d.gets_open,
            format!("{} refused past the cap", d.gets_refused),
            0,
        ),
        (
            "`subscriptions/listen` streams held open at the dual-era servers",
            d.listens_open,
            String::new(),
            n,
        ),
    ];
    for (what, value, note, limit) in count_rows {
        let note = if note.is_empty() {
            note
        } else {
            format!(" ({note})")
        };
        let target = match limit {
            0 => "0".to_string(),
            _ => format!("≤ {limit}"),
        };
        rows.push([
            format!("{head}: {what}"),
            format!("{value}{note}"),
            target,
            yes(value <= limit).into(),
        ]);
    }
}

pub fn print(f: &Figures) {
    calls_table(f);
    let mut rows = Vec::new();
    for name in ["broker", "aggregate", "broker-modern", "aggregate-modern"] {
        versus_floor(f, name, &mut rows);
    }
    process_rows(f, &mut rows);
    scale_rows(f.scale, &mut rows);
    println!("\n| figure | value | target | met |");
    println!("|---|---|---|---|");
    for [what, value, target, met] in &rows {
        println!("| {what} | {value} | {target} | {met} |");
    }
    let met = rows.iter().filter(|r| r[3] == "yes").count();
    println!("\n{met} of {} targets met.", rows.len());
    let s = f.scale;
    println!(
        "scale: a broker process with {} legacy-only and {} dual-era servers; {} legacy sessions in {:.1} s ({} still held at the end, {} initialized again after a 404 while in use), {} modern clients in {:.1} s; health at start: {}",
        s.per_kind,
        s.per_kind,
        s.legacy.clients,
        s.legacy.elapsed.as_secs_f64(),
        s.legacy.held,
        s.legacy.reopened,
        s.modern.clients,
        s.modern.elapsed.as_secs_f64(),
        s.health.join(", ")
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
    let quick = if counts().quick {
        " (BENCH_QUICK: reduced counts, not a measurement)"
    } else {
        ""
    };
    println!("machine: {cores} cores, {cpu}{quick}");
}
