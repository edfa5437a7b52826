//! The benchmark's MCP client, in either era: a legacy one opens a session with `initialize`; a
//! modern one is stateless and puts `_meta` and the standard headers (`MCP-Protocol-Version`,
//! `Mcp-Method`, `Mcp-Name`) on every request, built with the broker's own protocol constants.

use std::time::Duration;

use mcp_auth_broker::protocol::{headers, meta, MODERN_VERSION};
use serde_json::{json, Value};

const LEGACY_VERSION: &str = "2025-11-25";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Era {
    Legacy,
    Modern,
}

impl Era {
    pub fn name(self) -> &'static str {
        match self {
            Era::Legacy => "2025-11-25",
            Era::Modern => "2026-07-28",
        }
    }

    /// What the era adds to a route's name: `direct`, `direct-modern`.
    pub fn suffix(self) -> &'static str {
        match self {
            Era::Legacy => "",
            Era::Modern => "-modern",
        }
    }
}

/// One way to reach the `echo` tool.
#[derive(Clone)]
pub struct Target {
    /// Also the `BENCH_PROFILE` value that selects it.
    pub name: &'static str,
    pub era: Era,
    pub url: String,
    pub auth: String,
    /// The legacy session, once opened.
    pub session: String,
    /// `echo`, or `SERVER__echo` through the aggregate.
    pub tool: String,
}

impl Target {
    pub fn new(name: &'static str, era: Era, url: String, auth: &str, tool: &str) -> Target {
        Target {
            name,
            era,
            url,
            auth: auth.to_string(),
            session: String::new(),
            tool: tool.to_string(),
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A request of `method` in the target's era (`_meta` added for a modern one).
pub fn message(era: Era, id: usize, method: &str, params: Value) -> Value {
    let mut params = params;
    if era == Era::Modern {
        params["_meta"] = json!({
            meta::PROTOCOL_VERSION: MODERN_VERSION,
            meta::CLIENT_CAPABILITIES: {},
            meta::CLIENT_INFO: {"name": "bench", "version": "1"},
        });
    }
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// POSTs `body` with the headers its era needs; a non-2xx answer is an error naming it.
pub async fn post(
    c: &reqwest::Client,
    t: &Target,
    body: &Value,
) -> Result<reqwest::Response, String> {
    let mut req = c
        .post(&t.url)
        .header("authorization", &t.auth)
        .header("accept", "application/json, text/event-stream")
        .json(body);
    match t.era {
        Era::Legacy if !t.session.is_empty() => {
            req = req
                .header(headers::SESSION_ID, &t.session)
                .header(headers::PROTOCOL_VERSION, LEGACY_VERSION);
        }
        Era::Legacy => {}
        Era::Modern => {
            req = req.header(headers::PROTOCOL_VERSION, MODERN_VERSION);
            for (name, value) in headers::standard(body) {
                req = req.header(name, value.as_ref());
            }
        }
    }
    let resp = req.send().await.map_err(|e| format!("{}: {e}", t.name))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let text: String = text.chars().take(300).collect();
        return Err(format!("{} answered {status}: {text}", t.name));
    }
    Ok(resp)
}

/// POSTs `body` and reads the whole answer (JSON or an event stream) as text.
pub async fn exchange(c: &reqwest::Client, t: &Target, body: &Value) -> Result<String, String> {
    let resp = post(c, t, body).await?;
    resp.text().await.map_err(|e| format!("{}: {e}", t.name))
}

/// Opens the target: a legacy `initialize` (and `notifications/initialized`) that yields the
/// session, or a modern `server/discover` that must name 2026-07-28.
pub async fn open(c: &reqwest::Client, mut t: Target) -> Result<Target, String> {
    match t.era {
        Era::Legacy => {
            let params = json!({"protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}});
            let init = message(Era::Legacy, 0, "initialize", params);
            let resp = post(c, &t, &init).await?;
            t.session = resp
                .headers()
                .get(headers::SESSION_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            resp.bytes().await.map_err(|e| e.to_string())?;
            let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
            post(c, &t, &done).await?;
        }
        Era::Modern => {
            let answer = exchange(
                c,
                &t,
                &message(Era::Modern, 0, "server/discover", json!({})),
            )
            .await?;
            if !answer.contains(MODERN_VERSION) {
                return Err(format!("{}: server/discover answered {answer}", t.name));
            }
        }
    }
    Ok(t)
}

/// One `tools/call` of `echo` with id `i`; the answer must carry the text back.
pub async fn call(c: &reqwest::Client, t: &Target, i: usize) -> Result<(), String> {
    let params = json!({"name": t.tool, "arguments": {"text": "hello"}});
    let body = exchange(c, t, &message(t.era, i, "tools/call", params)).await?;
    if !body.contains("\"hello\"") || body.contains("\"error\":{") {
        return Err(format!("unexpected answer via {}: {body}", t.name));
    }
    Ok(())
}

/// `tools/list`: how many tools the answer names.
pub async fn list(c: &reqwest::Client, t: &Target, i: usize) -> Result<usize, String> {
    let body = exchange(c, t, &message(t.era, i, "tools/list", json!({}))).await?;
    Ok(body.matches("\"inputSchema\"").count())
}

/// `ping`: whether the target (a legacy session) still answers, and not with 404.
pub async fn ping(c: &reqwest::Client, t: &Target) -> Result<(), String> {
    exchange(c, t, &message(t.era, 9, "ping", json!({})))
        .await
        .map(drop)
}

/// Whether an error is the 404 that tells a legacy client its session is gone (the client then
/// initializes again, as the protocol expects).
pub fn session_gone(error: &str) -> bool {
    error.contains(" answered 404 ")
}
