//! What `/mcp` costs as clients come: an idle legacy client session holds a few kilobytes in the
//! broker (the target is at most 50 KB), and neither legacy sessions nor stateless modern
//! clients open upstream links beyond one per server. Heap bytes are counted by this test
//! binary's allocator on the threads of the runtime the broker (and the test's client) run on;
//! the upstream fixtures run on a runtime of their own, so what they record of each request is
//! not counted.

use crate::gateway_common;
use crate::support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

use gateway_common::*;
use mcp_auth_broker::protocol::meta;
use serde_json::{json, Value};
use support::*;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// Set on the threads whose allocations count (the broker's runtime).
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count_bytes(delta: isize) {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_bytes(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count_bytes(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_bytes(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Sessions opened for the measurement.
const SESSIONS: usize = 100;
/// The most an idle client session may cost (issue 29's target).
const BUDGET: isize = 50 * 1024;

/// One JSON-RPC exchange with `/mcp` on the test's one HTTP client (one kept-alive
/// connection, so the measurement is not of connections opening and closing).
async fn rpc(
    http: &reqwest::Client,
    b: &TestBroker,
    key: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> reqwest::Response {
    let mut req = http
        .post(format!("{}/mcp", b.base_url))
        .header("x-api-key", key)
        .header("accept", "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let r = req.json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200, "{body}");
    r
}

/// A legacy client session that lists tools and calls one, then stays open and idle.
async fn idle_session(http: &reqwest::Client, b: &TestBroker, key: &str, n: u64) -> String {
    let r = rpc(http, b, key, &[], initialize()).await;
    let sid = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let _ = r.bytes().await.unwrap();
    let h = [("mcp-session-id", sid.as_str())];
    let list: Value = rpc(http, b, key, &h, TOOLS_LIST(n))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tool_names(&list).len(), 8, "{list}");
    let call = tool_call(n + 1, "old__echo", json!({"text": "x"}));
    let answer: Value = rpc(http, b, key, &h, call).await.json().await.unwrap();
    assert_eq!(answer["result"]["content"][0]["text"], "x", "{answer}");
    sid
}

#[test]
fn an_idle_client_session_costs_the_broker_a_few_kilobytes_and_no_upstream_link() {
    let fixtures = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let broker = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(|| COUNTED.set(true))
        .build()
        .unwrap();
    let old = fixtures.block_on(TestUpstream::start(UpstreamOptions::default()));
    let modern = UpstreamOptions::default().with_era(UpstreamEra::Modern);
    let new = fixtures.block_on(TestUpstream::start(modern));
    broker.block_on(measure(&old, &new));
}

/// Runs on the broker's runtime (`block_on` runs it on this thread, which counts too).
async fn measure(old: &TestUpstream, new: &TestUpstream) {
    COUNTED.set(true);
    let b = TestBroker::start(json!({"mcp_servers": {
        "old": {"url": old.mcp_url}, "m": {"url": new.mcp_url}}}))
    .await;
    let key = api_key(&b).await;
    let http = http();
    // Warm up: links, connection pools, the first session's one-time costs.
    let mut kept = vec![idle_session(&http, &b, &key, 1).await];
    let before = LIVE.load(Ordering::SeqCst);
    for i in 0..SESSIONS as u64 {
        kept.push(idle_session(&http, &b, &key, 10 + 2 * i).await);
    }
    let after = LIVE.load(Ordering::SeqCst);
    let each = (after - before) / SESSIONS as isize;
    eprintln!("an idle legacy client session: {each} bytes");
    assert!(
        each <= BUDGET,
        "an idle client session costs {each} bytes (budget {BUDGET})"
    );
    assert_eq!(count(&old.counters().initialize), 1, "one upstream session");
    assert_eq!(count(&new.counters().discover), 1, "one discovery");
    assert_eq!(kept.len(), SESSIONS + 1);

    // Stateless modern clients keep nothing at all.
    let caps = json!({"elicitation": {}});
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list",
        "params": meta::with_modern_meta(json!({}), &caps)});
    let modern = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/list"),
    ];
    let _ = rpc(&http, &b, &key, &modern, list.clone())
        .await
        .bytes()
        .await;
    let before = LIVE.load(Ordering::SeqCst);
    for _ in 0..SESSIONS {
        let _ = rpc(&http, &b, &key, &modern, list.clone())
            .await
            .bytes()
            .await;
    }
    let each = (LIVE.load(Ordering::SeqCst) - before) / SESSIONS as isize;
    eprintln!("a stateless modern request: {each} bytes left behind");
    assert!(
        each <= BUDGET / 10,
        "a stateless request left {each} bytes behind"
    );
    assert_eq!(count(&new.counters().discover), 1, "still one discovery");
}
