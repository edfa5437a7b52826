//! A fast MCP upstream for the benchmark, one `echo` tool on three endpoints:
//! - `/mcp` speaks both eras and is lenient (any or no `Mcp-Session-Id`); its GET is an SSE
//!   stream of timestamped events. The latency and throughput rows all go to it.
//! - `/legacy/mcp` speaks only 2025-11-25, with real sessions (a request without a live session
//!   is refused, as the 1.x SDK does), and holds every GET stream open.
//! - `/dual/mcp` speaks both eras, with real sessions in the legacy one, holds GET streams and
//!   `subscriptions/listen` streams open.
//!
//! The scale row reads what each endpoint counts: sessions opened and ended, streams held open.
//! Plus a counting token endpoint for the M2M burst. The modern face is in `modern.rs`.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use mcp_auth_broker::protocol::{headers, meta};
use serde_json::{json, Value};

use super::modern;

/// Streams held open at once, at most, per endpoint: a broker that opens one per client session
/// would otherwise run the benchmark out of file descriptors. Past it, GETs are answered 405
/// (which a legacy server may do) and counted as refused.
pub const MAX_HELD: usize = 2000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// `/mcp`: both eras, no session checks, timed SSE.
    Bench,
    /// `/legacy/mcp`: 2025-11-25 only.
    Legacy,
    /// `/dual/mcp`: both eras.
    Dual,
}

/// What one endpoint saw.
#[derive(Default, Debug)]
pub struct Counters {
    pub initialize: AtomicUsize,
    pub deleted: AtomicUsize,
    /// GET streams held open now, and those refused past [`MAX_HELD`].
    pub gets_open: Arc<AtomicUsize>,
    pub gets_refused: AtomicUsize,
    /// `subscriptions/listen` streams held open now.
    pub listens_open: Arc<AtomicUsize>,
    /// Requests served in the modern era.
    pub modern: AtomicUsize,
    live: Mutex<HashSet<String>>,
}

impl Counters {
    pub fn sessions_open(&self) -> usize {
        self.live.lock().unwrap().len()
    }
}

pub struct Upstream {
    pub base: String,
    pub token_requests: Arc<AtomicUsize>,
    pub legacy: Arc<Counters>,
    pub dual: Arc<Counters>,
}

#[derive(Clone)]
pub(crate) struct St {
    pub epoch: Instant,
    pub kind: Kind,
    pub counters: Arc<Counters>,
    token_requests: Arc<AtomicUsize>,
}

pub async fn start(epoch: Instant) -> Upstream {
    let token_requests = Arc::new(AtomicUsize::new(0));
    let st = |kind| St {
        epoch,
        kind,
        counters: Arc::default(),
        token_requests: token_requests.clone(),
    };
    let (bench, legacy, dual) = (st(Kind::Bench), st(Kind::Legacy), st(Kind::Dual));
    let (legacy_counters, dual_counters) = (legacy.counters.clone(), dual.counters.clone());
    let endpoint = |s: St| post(mcp).get(get).delete(delete).with_state(s);
    let app = Router::new()
        .route("/mcp", endpoint(bench.clone()))
        .route("/legacy/mcp", endpoint(legacy))
        .route("/dual/mcp", endpoint(dual))
        .route("/token", post(token).with_state(bench));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use axum::serve::ListenerExt;
        let l = listener.tap_io(|t| {
            let _ = t.set_nodelay(true);
        });
        axum::serve(l, app).await.unwrap()
    });
    Upstream {
        base,
        token_requests,
        legacy: legacy_counters,
        dual: dual_counters,
    }
}

fn session(h: &HeaderMap) -> Option<&str> {
    h.get(headers::SESSION_ID).and_then(|v| v.to_str().ok())
}

/// Whether a message is for the modern face: a modern `_meta` version or header, on an endpoint
/// that speaks the modern era (a legacy-only server knows nothing of either).
fn is_modern(kind: Kind, h: &HeaderMap, msg: &Value) -> bool {
    kind != Kind::Legacy
        && msg["method"] != "initialize"
        && (meta::declared_version(msg).is_some()
            || h.get(headers::PROTOCOL_VERSION)
                .is_some_and(|v| v == mcp_auth_broker::protocol::MODERN_VERSION))
}

async fn mcp(State(st): State<St>, h: HeaderMap, Json(msg): Json<Value>) -> Response {
    if h.get(header::AUTHORIZATION).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if is_modern(st.kind, &h, &msg) {
        st.counters.modern.fetch_add(1, SeqCst);
        return modern::serve(&st, &h, &msg);
    }
    if msg["method"] == "initialize" {
        return initialize(&st, &msg);
    }
    if st.kind != Kind::Bench
        && !session(&h).is_some_and(|s| st.counters.live.lock().unwrap().contains(s))
    {
        // What the 1.x SDK answers a request outside a live session.
        let error = json!({"code": -32000, "message": "Bad Request: No valid session ID provided"});
        let body = json!({"jsonrpc": "2.0", "id": null, "error": error});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let Some(id) = msg.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response();
    };
    let result = match msg["method"].as_str() {
        Some("tools/list") => json!({"tools": [echo_tool()]}),
        Some("tools/call") => echo(&msg),
        _ => json!({}),
    };
    Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

fn initialize(st: &St, msg: &Value) -> Response {
    let n = st.counters.initialize.fetch_add(1, SeqCst);
    let sid = if st.kind == Kind::Bench {
        "bench-session".to_string()
    } else {
        let sid = format!("s{n}");
        st.counters.live.lock().unwrap().insert(sid.clone());
        sid
    };
    let result = json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {"listChanged": true}}, "serverInfo": {"name": "bench", "version": "1"}});
    let body = json!({"jsonrpc": "2.0", "id": msg["id"], "result": result});
    ([(headers::SESSION_ID, sid)], Json(body)).into_response()
}

pub fn echo_tool() -> Value {
    json!({"name": "echo", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}})
}

/// The `echo` tool's result: the `text` argument back.
pub fn echo(msg: &Value) -> Value {
    json!({"content": [{"type": "text", "text": msg["params"]["arguments"]["text"]}]})
}

async fn delete(State(st): State<St>, h: HeaderMap) -> StatusCode {
    let ended = session(&h).is_some_and(|s| st.counters.live.lock().unwrap().remove(s));
    if ended {
        st.counters.deleted.fetch_add(1, SeqCst);
    }
    if ended || st.kind == Kind::Bench {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn get(State(st): State<St>, h: HeaderMap) -> Response {
    if h.get(header::AUTHORIZATION).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if st.kind == Kind::Bench {
        return timed_events(st.epoch);
    }
    if !session(&h).is_some_and(|s| st.counters.live.lock().unwrap().contains(s)) {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let gauge = &st.counters.gets_open;
    if gauge.load(SeqCst) >= MAX_HELD {
        st.counters.gets_refused.fetch_add(1, SeqCst);
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    sse(held(": open\n\n".into(), gauge.clone()))
}

pub fn sse(body: Body) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    (headers, body).into_response()
}

/// Decrements its gauge when the stream holding it is dropped (the client went away).
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// An SSE body that sends `first` and then stays open, counted in `gauge` while it lives.
pub fn held(first: String, gauge: Arc<AtomicUsize>) -> Body {
    gauge.fetch_add(1, SeqCst);
    let state = (Some(first), Open(gauge));
    Body::from_stream(futures_util::stream::unfold(
        state,
        |(first, open)| async move {
            match first {
                Some(frame) => Some((Ok::<_, Infallible>(frame), (None, open))),
                None => {
                    std::future::pending::<()>().await;
                    None
                }
            }
        },
    ))
}

/// `GET /mcp`: `SSE_EVENTS` events, one per millisecond, each carrying its send time (ns since
/// epoch).
fn timed_events(epoch: Instant) -> Response {
    let stream = futures_util::stream::unfold(0u32, move |i| async move {
        if i >= super::SSE_EVENTS {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        let sent = epoch.elapsed().as_nanos();
        let frame = format!("id: {i}\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{{\"sent_ns\":{sent}}}}}\n\n");
        Some((Ok::<_, Infallible>(frame), i + 1))
    });
    sse(Body::from_stream(stream))
}

async fn token(State(st): State<St>) -> Json<Value> {
    st.token_requests.fetch_add(1, SeqCst);
    // A little work on the token endpoint makes a missing single-flight visible.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let suffix: u64 = rand::random();
    Json(
        json!({"access_token": format!("m2m-{suffix}"), "token_type": "Bearer", "expires_in": 3600}),
    )
}
