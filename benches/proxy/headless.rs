//! The headless broker as a process: start to the first proxied call, resident memory idle and
//! at its peak under load at c=32.

use std::time::Duration;

use serde_json::json;

use super::client::{message, open, post, Era, Target};
use super::measure::throughput;
use super::process::{config, rss_kib, start_broker};

pub struct Headless {
    pub first_call: Duration,
    /// RSS in KiB, idle and at its peak under load.
    pub rss_kib: (u64, u64),
}

pub async fn run(c: &reqwest::Client, upstream: &str) -> Headless {
    let proc = start_broker(&config(upstream));
    let started = proc.spawned;
    let url = format!("http://127.0.0.1:{}/bench/mcp", proc.port);
    let t = Target::new("process", Era::Legacy, url, &proc.auth, "echo");
    let call = message(
        Era::Legacy,
        1,
        "tools/call",
        json!({"name": "echo", "arguments": {"text": "hello"}}),
    );
    let first_call = loop {
        if post(c, &t, &call).await.is_ok() {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the broker process never answered"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let t = open(c, t).await.unwrap();
    let idle = rss_kib(proc.child.id());
    let load = tokio::spawn({
        let (c, t) = (c.clone(), t.clone());
        async move { throughput(&c, &t, 32).await }
    });
    let mut peak = idle;
    while !load.is_finished() {
        peak = peak.max(rss_kib(proc.child.id()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = load.await;
    Headless {
        first_call,
        rss_kib: (idle, peak),
    }
}
