//! How each figure is taken: sequential latencies interleaved call by call, heap allocations per
//! call, throughput at a concurrency in interleaved rounds, and the delay of SSE events.

use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::alloc;
use super::client::{call, Target};
use super::counts;

pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Sequential latencies, interleaved call by call (each target in turn, then the next call, the
/// order rotating so none always follows another): a pause of the machine, however short, hits
/// every target alike instead of one target's stretch of calls.
pub async fn latencies(c: &reqwest::Client, targets: &[Target]) -> Vec<Vec<Duration>> {
    let n = counts().latency_calls;
    let mut all = vec![Vec::with_capacity(n); targets.len()];
    for i in 0..n {
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

/// `target`'s p50 beside `direct`'s, interleaved call by call, and what it adds.
pub async fn added_p50(c: &reqwest::Client, direct: Target, target: Target) -> String {
    let name = target.name;
    let lat = latencies(c, &[direct, target]).await;
    let p50 = |v: &[Duration]| pct(v, 0.5).as_secs_f64() * 1e6;
    let (d, t) = (p50(&lat[0]), p50(&lat[1]));
    // The deciles show whether the p50 sits between two modes (where it jumps run to run).
    let deciles = |v: &[Duration]| -> Vec<String> {
        (1..10)
            .map(|i| format!("{:.0}", pct(v, i as f64 / 10.0).as_secs_f64() * 1e6))
            .collect()
    };
    format!(
        "p50: direct {d:.1} µs, {name} {t:.1} µs, added {:.1} µs\ndeciles µs: direct {:?}\n  {name} {:?}",
        t - d,
        deciles(&lat[0]),
        deciles(&lat[1]),
    )
}

/// What a route and the floor each add at p50 over the direct call (seconds), and the ratio of
/// the two: the figure the latency targets are about.
pub fn added_vs_floor(route: &[Duration], floor: &[Duration], direct: &[Duration]) -> [f64; 3] {
    let d50 = pct(direct, 0.5);
    let added = |x: &[Duration]| pct(x, 0.5).saturating_sub(d50).as_secs_f64();
    let (a, b) = (added(route), added(floor));
    [a, b, if b > 0.0 { a / b } else { f64::INFINITY }]
}

/// Each route's added p50 over the direct call of its era, and its ratio to the floor's.
pub fn added_ratios(targets: &[Target], lat: &[Vec<Duration>]) -> String {
    let of = |name: &str| Some(&lat[targets.iter().position(|t| t.name == name)?]);
    let mut out = String::new();
    for t in targets {
        let suffix = t.era.suffix();
        let (Some(d), Some(f), Some(p)) = (
            of(&format!("direct{suffix}")),
            of(&format!("floor{suffix}")),
            of(t.name),
        ) else {
            continue;
        };
        let [added, _, ratio] = added_vs_floor(p, f, d);
        out += &format!(
            "{:>17}: added {:6.1} µs, {ratio:.2}× the floor's\n",
            t.name,
            added * 1e6
        );
    }
    out
}

/// Heap allocations per sequential call, whole process: client, upstream and proxy together, so
/// a proxy's own share is its row minus the direct row of its era.
pub async fn allocations_per_call(c: &reqwest::Client, t: &Target) -> f64 {
    let calls = counts().alloc_calls;
    let before = alloc::count();
    for i in 0..calls {
        call(c, t, i).await.unwrap();
    }
    (alloc::count() - before) as f64 / calls as f64
}

/// Calls per second with `concurrency` tasks calling in a loop.
pub async fn throughput(c: &reqwest::Client, t: &Target, concurrency: usize) -> f64 {
    let start = Instant::now();
    let per_task = counts().throughput_calls / concurrency;
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

/// Throughput at c=32, interleaved round by round like the latencies; each target's median round.
pub async fn median_throughput(c: &reqwest::Client, targets: &[Target]) -> Vec<f64> {
    let mut rounds = vec![Vec::new(); targets.len()];
    for _ in 0..counts().rounds {
        for (k, t) in targets.iter().enumerate() {
            rounds[k].push(throughput(c, t, 32).await);
        }
    }
    rounds
        .iter_mut()
        .map(|r| {
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        })
        .collect()
}

/// Median delay from the upstream sending an SSE event to the client reading it (a legacy
/// target's GET stream).
pub async fn sse_delay(c: &reqwest::Client, t: &Target, epoch: Instant) -> Duration {
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
        super::SSE_EVENTS as usize,
        "every SSE event must arrive via {}",
        t.name
    );
    delays.sort();
    pct(&delays, 0.5)
}
