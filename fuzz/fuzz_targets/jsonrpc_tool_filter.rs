//! JSON-RPC framing at the gateway, both ways, for a server with tool lists: a client's POSTed
//! body (one message, a batch or anything) planned by `toolfilter::plan`, and the upstream's
//! answer (JSON or an event stream, in chunks of any size) rewritten by `Lists::rewrite`, or
//! passed as a GET stream through `filter_stream`.
//!
//! Input: `[flags][body length: u16 LE][client body][upstream answer]`; flags bit 0 picks the
//! allow-list or the deny-list server, bit 1 an event stream, bit 2 the GET stream, the rest the
//! chunk size.
//!
//! Checked, not just run: a planned body calls no hidden tool, and no answer a client gets lists
//! one, read as a JavaScript client reads it (ids `1` and `1.0` are one number; a message with a
//! tool list goes out re-serialised, so no duplicated key can hide anything).
#![no_main]
use std::sync::OnceLock;

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, Response};
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::config::{file, validate, ServerConfig};
use mcp_auth_broker::gateway::toolfilter::{filter_stream, plan};
use mcp_auth_broker::protocol::sse::SseParser;
use serde_json::Value;

const CONFIG: &str = r#"{"mcp_servers": {
    "allow": {"url": "https://a.example/mcp", "allowed_tools": ["echo", "add"]},
    "deny": {"url": "https://d.example/mcp", "disallowed_tools": ["secret", "rm"]}
}}"#;

fn servers() -> &'static Vec<ServerConfig> {
    static SERVERS: OnceLock<Vec<ServerConfig>> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let raw = file::parse(std::path::Path::new("fuzz.json"), CONFIG).expect("config parses");
        let config = validate(&raw).expect("config is valid").config;
        config.servers.into_values().collect()
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    })
}

fn messages(message: &Value) -> &[Value] {
    match message {
        Value::Array(items) => items,
        one => std::slice::from_ref(one),
    }
}

fn same_id(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// One message the client receives: when it is (or holds) a response with a tool list that
/// `filtered` says must be filtered, it lists no hidden tool and is in canonical form.
fn check(cfg: &ServerConfig, data: &str, filtered: &dyn Fn(&Value) -> bool) {
    let Ok(message) = serde_json::from_str::<Value>(data) else {
        return;
    };
    let mut carried = false;
    for m in messages(&message) {
        let Some(tools) = m.pointer("/result/tools").and_then(Value::as_array) else {
            continue;
        };
        if m.get("method").is_some() || !m.get("id").is_some_and(filtered) {
            continue;
        }
        carried = true;
        for tool in tools {
            let name = tool.get("name").and_then(Value::as_str);
            assert!(
                name.is_some_and(|n| cfg.permits_tool(n)),
                "a hidden or nameless tool reached the client: {tool}"
            );
        }
    }
    if carried {
        assert_eq!(data, message.to_string(), "a tool list goes out re-serialised");
    }
}

fn check_stream(cfg: &ServerConfig, bytes: &[u8], filtered: &dyn Fn(&Value) -> bool) {
    for event in SseParser::default().push(bytes) {
        if event.event == "message" {
            check(cfg, &event.data, filtered);
        }
    }
}

fn collect(response: Response<Body>) -> Option<Bytes> {
    runtime()
        .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let Some((len, rest)) = rest.split_first_chunk::<2>() else { return };
    let (body, answer) = rest.split_at(usize::from(u16::from_le_bytes(*len)).min(rest.len()));
    let cfg = &servers()[usize::from(flags & 1)];
    let sse = flags & 2 != 0;
    let chunk = usize::from(flags >> 3) + 1;
    let upstream = || {
        let kind = if sse { "text/event-stream" } else { "application/json" };
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            answer.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        Response::builder()
            .header(CONTENT_TYPE, kind)
            .body(Body::from_stream(futures_util::stream::iter(chunks)))
            .expect("a response")
    };

    if flags & 4 != 0 {
        // A GET stream: every list, whatever it answers, is filtered.
        let streamed = runtime().block_on(async { filter_stream(cfg, &Method::GET, upstream()) });
        if let (true, Some(bytes)) = (sse, collect(streamed)) {
            check_stream(cfg, &bytes, &|_| true);
        }
    }

    let body = Bytes::copy_from_slice(body);
    let parsed = serde_json::from_slice::<Value>(&body).ok();
    let calls_hidden = parsed.as_ref().is_some_and(|m| {
        messages(m).iter().any(|m| {
            m.get("method").and_then(Value::as_str) == Some("tools/call")
                && !m
                    .pointer("/params/name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| cfg.permits_tool(n))
        })
    });
    let Ok(lists) = plan(cfg, &Method::POST, &body) else {
        return;
    };
    assert!(!calls_hidden, "a body calling a hidden tool would be forwarded");
    let Some(lists) = lists else { return };
    let awaited: Vec<Value> = parsed
        .as_ref()
        .map(|m| {
            messages(m)
                .iter()
                .filter(|m| m.get("method").and_then(Value::as_str) == Some("tools/list"))
                .filter_map(|m| m.get("id").filter(|id| !id.is_null()).cloned())
                .collect()
        })
        .unwrap_or_default();
    let filtered = |id: &Value| awaited.iter().any(|a| same_id(a, id));
    let Ok(rewritten) = runtime().block_on(lists.rewrite(cfg, upstream())) else {
        return;
    };
    let Some(bytes) = collect(rewritten) else { return };
    if sse {
        check_stream(cfg, &bytes, &filtered);
    } else if let Ok(text) = std::str::from_utf8(&bytes) {
        check(cfg, text, &filtered);
    }
});
