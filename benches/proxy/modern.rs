//! The bench upstream's 2026-07-28 face: stateless requests carrying `_meta`, the standard
//! headers checked against the body (`-32020`, as the transport requires of a server), `-32022`
//! for another version, `server/discover`, results with `resultType` (lists with cache hints),
//! `subscriptions/listen` streams held open and counted, `-32601` with 404 for the rest.

use std::sync::atomic::Ordering::SeqCst;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mcp_auth_broker::protocol::{codes, headers, meta, MODERN_VERSION};
use serde_json::{json, Value};

use super::upstream::{echo, echo_tool, held, sse, Kind, St, MAX_HELD};

/// `_meta` key naming the `subscriptions/listen` request a stream message belongs to.
const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

pub(crate) fn serve(st: &St, h: &HeaderMap, msg: &Value) -> Response {
    let Some(id) = msg.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response();
    };
    if let Err((code, why)) = check(h, msg) {
        let data = (code == codes::UNSUPPORTED_PROTOCOL_VERSION)
            .then(|| json!({"supported": supported(st.kind)}));
        return error(StatusCode::BAD_REQUEST, id, code, why, data);
    }
    let result = match msg["method"].as_str().unwrap_or("") {
        "server/discover" => json!({
            "resultType": "complete",
            "supportedVersions": supported(st.kind),
            "capabilities": {"tools": {"listChanged": true}},
            "_meta": {meta::SERVER_INFO: {"name": "bench", "version": "1"}},
            "ttlMs": 3_600_000, "cacheScope": "public",
        }),
        "tools/list" => json!({
            "resultType": "complete", "tools": [echo_tool()], "ttlMs": 60_000, "cacheScope": "public",
        }),
        "tools/call" => {
            let mut result = echo(msg);
            result["resultType"] = json!("complete");
            result
        }
        "subscriptions/listen" => return listen(st, id, msg),
        other => {
            let why = format!("method \"{other}\" not found");
            return error(
                StatusCode::NOT_FOUND,
                id,
                codes::METHOD_NOT_FOUND,
                why,
                None,
            );
        }
    };
    Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

fn supported(kind: Kind) -> Vec<&'static str> {
    match kind {
        Kind::Legacy => vec!["2025-11-25"],
        Kind::Bench | Kind::Dual => vec![MODERN_VERSION, "2025-11-25"],
    }
}

/// The version in `_meta` and the header, then the standard headers against the body.
fn check(h: &HeaderMap, msg: &Value) -> Result<(), (i64, String)> {
    let version = meta::declared_version(msg);
    if version != Some(MODERN_VERSION) {
        let why = format!("protocol version {version:?} is not supported");
        return Err((codes::UNSUPPORTED_PROTOCOL_VERSION, why));
    }
    if h.get(headers::PROTOCOL_VERSION).map(|v| v.as_bytes()) != Some(MODERN_VERSION.as_bytes()) {
        let why = "the MCP-Protocol-Version header is missing or differs from _meta".to_string();
        return Err((codes::HEADER_MISMATCH, why));
    }
    headers::check_standard(msg, |name| h.get(name).map(|v| v.as_bytes()))
        .map_err(|why| (codes::HEADER_MISMATCH, why))
}

fn error(
    status: StatusCode,
    id: Value,
    code: i64,
    message: String,
    data: Option<Value>,
) -> Response {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    (
        status,
        Json(json!({"jsonrpc": "2.0", "id": id, "error": error})),
    )
        .into_response()
}

/// `subscriptions/listen`: the acknowledgement (only `toolsListChanged` is honoured), then the
/// stream stays open. Past [`MAX_HELD`] open streams the subscription ends at once, gracefully.
fn listen(st: &St, id: Value, msg: &Value) -> Response {
    let gauge = &st.counters.listens_open;
    if gauge.load(SeqCst) >= MAX_HELD {
        let result = json!({"resultType": "complete", "_meta": {SUBSCRIPTION_ID: id}});
        return Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response();
    }
    let mut agreed = json!({});
    if msg["params"]["notifications"]["toolsListChanged"] == true {
        agreed["toolsListChanged"] = json!(true);
    }
    let ack = json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
        "params": {"_meta": {SUBSCRIPTION_ID: id}, "notifications": agreed}});
    sse(held(format!("data: {ack}\n\n"), gauge.clone()))
}
