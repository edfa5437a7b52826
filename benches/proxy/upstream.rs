//! A fast MCP upstream for the benchmark: JSON-RPC over Streamable HTTP with one `echo` tool,
//! sessions, JSON bodies; an SSE stream of timestamped events; a counting token endpoint.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

pub struct Upstream {
    pub base: String,
    pub token_requests: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct St {
    epoch: Instant,
    token_requests: Arc<AtomicUsize>,
}

pub async fn start(epoch: Instant) -> Upstream {
    let token_requests = Arc::new(AtomicUsize::new(0));
    let st = St {
        epoch,
        token_requests: token_requests.clone(),
    };
    let app = Router::new()
        .route("/mcp", post(mcp).get(sse))
        .route("/token", post(token))
        .with_state(st);
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
    }
}

async fn mcp(headers: HeaderMap, Json(msg): Json<Value>) -> Response {
    if headers.get(header::AUTHORIZATION).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Some(id) = msg.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response();
    };
    match msg["method"].as_str() {
        Some("initialize") => {
            let result = json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": {"name": "bench", "version": "1"}});
            ([("mcp-session-id", "bench-session")], Json(json!({"jsonrpc": "2.0", "id": id, "result": result}))).into_response()
        }
        Some("tools/list") => Json(json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}})).into_response(),
        Some("tools/call") => {
            let text = msg["params"]["arguments"]["text"].clone();
            Json(json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": text}]}})).into_response()
        }
        _ => Json(json!({"jsonrpc": "2.0", "id": id, "result": {}})).into_response(),
    }
}

/// `GET /mcp`: 200 events, one per millisecond, each carrying its send time (ns since epoch).
async fn sse(State(st): State<St>, headers: HeaderMap) -> Response {
    if headers.get(header::AUTHORIZATION).is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let stream = futures_util::stream::unfold(0u32, move |i| async move {
        if i >= super::SSE_EVENTS {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        let sent = st.epoch.elapsed().as_nanos();
        let frame = format!("id: {i}\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{{\"sent_ns\":{sent}}}}}\n\n");
        Some((Ok::<_, std::convert::Infallible>(frame), i + 1))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn token(State(st): State<St>) -> Json<Value> {
    st.token_requests.fetch_add(1, Ordering::SeqCst);
    // A little work on the token endpoint makes a missing single-flight visible.
    tokio::time::sleep(Duration::from_millis(20)).await;
    Json(
        json!({"access_token": format!("m2m-{}", rand_suffix()), "token_type": "Bearer", "expires_in": 3600}),
    )
}

fn rand_suffix() -> u64 {
    rand::random()
}
