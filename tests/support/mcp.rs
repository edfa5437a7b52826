//! The test upstream's Streamable HTTP endpoint (`/mcp`) and its protected resource metadata.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub(crate) use super::mcp_stream::{delete, get, priming_frame, reply, sse_body, sse_frame};
use super::random_token;
use super::upstream::{McpFault, Requires, ResponseMode, UpstreamEra, UpstreamState};

/// The protocol versions the test upstream speaks, newest first.
pub const VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// The default tool list: `echo`, `add`, `slow_stream`.
pub fn default_tools() -> Vec<Value> {
    vec![
        json!({"name": "echo", "description": "Returns its text", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}),
        json!({"name": "add", "description": "Adds two numbers", "inputSchema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}}),
        json!({"name": "slow_stream", "description": "Sends `steps` progress notifications, each released by the test", "inputSchema": {"type": "object", "properties": {"steps": {"type": "integer"}}}}),
    ]
}

pub(crate) async fn prm(State(s): State<Arc<UpstreamState>>) -> Response {
    if s.bare_401 {
        return StatusCode::NOT_FOUND.into_response();
    }
    Json(json!({
        "resource": s.mcp_url,
        "authorization_servers": [s.authorization_server.lock().unwrap().clone()],
        "scopes_supported": s.scope.as_deref().map(|sc| sc.split(' ').collect::<Vec<_>>()).unwrap_or_default(),
        "bearer_methods_supported": ["header"],
    }))
    .into_response()
}

/// `Ok` when the request carries what the upstream's [`Requires`] demands; else the 401.
/// `request` is the method and path, for a DPoP-bound token's proof (`htm`, `htu`).
pub(crate) fn check_auth(
    s: &UpstreamState,
    request: (&str, &str),
    headers: &HeaderMap,
) -> Result<(), Box<Response>> {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    let bearer = authorization.and_then(|v| v.strip_prefix("Bearer "));
    if let Some(token) = authorization.and_then(|v| v.strip_prefix("DPoP ")) {
        return bound(s, request, headers, token);
    }
    let (ok, error) = match &s.auth {
        Requires::None => (true, None),
        Requires::Static(expected) => (bearer == Some(expected.as_str()), Some("invalid_token")),
        Requires::Header(name, expected) => (
            headers.get(name.as_str()).and_then(|v| v.to_str().ok()) == Some(expected.as_str()),
            None,
        ),
        Requires::OAuth => match bearer {
            None => (false, None),
            // A DPoP-bound token is taken only with its proof (RFC 9449 §7.1).
            Some(token) => (
                s.auth_server
                    .validate(token)
                    .is_some_and(|t| t.jkt.is_none()),
                Some("invalid_token"),
            ),
        },
    };
    if ok {
        return Ok(());
    }
    s.counters.unauthorized.fetch_add(1, Ordering::SeqCst);
    if s.bare_401 {
        return Err(Box::new(StatusCode::UNAUTHORIZED.into_response()));
    }
    let mut challenge = format!(
        "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
        s.base
    );
    if let Some(scope) = &s.scope {
        challenge.push_str(&format!(", scope=\"{scope}\""));
    }
    if let (Some(error), Some(_)) = (error, bearer) {
        challenge.push_str(&format!(", error=\"{error}\""));
    }
    Err((
        StatusCode::UNAUTHORIZED,
        [("www-authenticate", challenge)],
        Json(json!({"error": "unauthorized"})),
    )
        .into_response()
        .into())
}

/// `Authorization: DPoP <token>`: a token the AS bound to a key, with a proof of that key for
/// this request (`htm`, `htu`, `ath`, fresh `jti`); else 401.
fn bound(
    s: &UpstreamState,
    (htm, path): (&str, &str),
    headers: &HeaderMap,
    token: &str,
) -> Result<(), Box<Response>> {
    let htu = format!("{}{path}", s.base);
    let expect = super::dpop::Expect {
        htm,
        htu: &htu,
        token: Some(token),
    };
    let proof = headers.get("dpop").and_then(|v| v.to_str().ok());
    let issued = s.auth_server.validate(token);
    let checked = match (proof, issued.as_ref().and_then(|t| t.jkt.as_deref())) {
        (Some(proof), Some(jkt)) => s.auth_server.check_proof(proof, &expect).and_then(|got| {
            (got == jkt)
                .then_some(())
                .ok_or_else(|| "the proof's key is not the token's".into())
        }),
        (None, _) => Err("no DPoP proof".to_string()),
        (_, None) => Err("not a DPoP-bound token".to_string()),
    };
    let Err(why) = checked else {
        return Ok(());
    };
    s.counters.unauthorized.fetch_add(1, Ordering::SeqCst);
    let challenge =
        format!("DPoP algs=\"ES256\", error=\"invalid_token\", error_description=\"{why}\"");
    Err(Box::new(
        (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", challenge)],
            Json(json!({"error": "invalid_token", "error_description": why})),
        )
            .into_response(),
    ))
}

pub(crate) fn session_ok(s: &UpstreamState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    match headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) {
        None => Err(Box::new(
            (StatusCode::BAD_REQUEST, "Mcp-Session-Id header is required").into_response(),
        )),
        Some(id) if s.sessions.lock().unwrap().contains(id) => Ok(()),
        Some(_) => Err(Box::new(
            (StatusCode::NOT_FOUND, "unknown session").into_response(),
        )),
    }
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

pub(crate) fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub(crate) async fn post(
    State(s): State<Arc<UpstreamState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = check_auth(&s, ("POST", "/mcp"), &headers) {
        return *r;
    }
    let fault = s.fault.lock().unwrap().clone();
    match fault {
        McpFault::None => {}
        McpFault::Status(code) => {
            return (
                StatusCode::from_u16(code).unwrap(),
                "test upstream failing on purpose",
            )
                .into_response()
        }
        McpFault::Html => {
            return (
                StatusCode::OK,
                [("content-type", "text/html")],
                "<html>maintenance</html>",
            )
                .into_response()
        }
        McpFault::BadJsonRpc => return Json(json!({"hello": "world"})).into_response(),
    }
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(rpc_error(&Value::Null, -32700, "parse error")),
        )
            .into_response();
    };
    s.messages.lock().unwrap().push(msg.clone());
    if super::modern::serves(&s, &msg) {
        return super::modern::post(&s, &headers, msg);
    }
    let method = msg
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string);
    let id = msg.get("id").cloned();
    let mode = *s.response.lock().unwrap();
    let Some(method) = method else {
        // A response from the client (to a server request): accepted.
        super::streams::answered(&s, &msg);
        return StatusCode::ACCEPTED.into_response();
    };
    if method == "initialize" {
        s.counters.initialize.fetch_add(1, Ordering::SeqCst);
        let asked = msg
            .pointer("/params/protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let version = VERSIONS
            .iter()
            .find(|v| **v == asked)
            .copied()
            .unwrap_or(VERSIONS[0]);
        let session = random_token();
        s.sessions.lock().unwrap().insert(session.clone());
        let init = json!({
            "protocolVersion": version,
            "capabilities": capabilities(&s),
            "serverInfo": {"name": "test-upstream", "version": "1.0.0"},
        });
        return reply(
            mode,
            result(id.as_ref().unwrap_or(&Value::Null), init),
            Some(&session),
        );
    }
    if let Err(r) = session_ok(&s, &headers) {
        return *r;
    }
    let Some(id) = id else {
        s.counters.notifications.fetch_add(1, Ordering::SeqCst);
        return StatusCode::ACCEPTED.into_response();
    };
    if let Some(refusal) = scope_refusal(&s, &headers, &msg) {
        return refusal;
    }
    if method == "tools/call"
        && msg.pointer("/params/name").and_then(Value::as_str) == Some("slow_stream")
    {
        s.counters.tools_call.fetch_add(1, Ordering::SeqCst);
        let steps = msg
            .pointer("/params/arguments/steps")
            .and_then(Value::as_u64)
            .unwrap_or(3);
        return super::streams::slow_stream(s.clone(), id, &msg, steps, false);
    }
    if method == "tools/call"
        && msg.pointer("/params/name").and_then(Value::as_str) == Some("ask_client")
    {
        s.counters.tools_call.fetch_add(1, Ordering::SeqCst);
        return super::streams::ask_client(s.clone(), id, &msg);
    }
    if method == "tools/call"
        && msg.pointer("/params/name").and_then(Value::as_str) == Some("ask_user")
    {
        s.counters.tools_call.fetch_add(1, Ordering::SeqCst);
        return super::listen::legacy_ask_user(s.clone(), id, &msg);
    }
    let message = answer(&s, &method, &id, &msg);
    reply(mode, message, None)
}

/// What the server declares (`initialize`, `server/discover`): tools with `listChanged`, and the
/// catalog's capabilities when it has one.
pub(crate) fn capabilities(s: &UpstreamState) -> Value {
    let mut capabilities = json!({"tools": {"listChanged": true}});
    if let Some(label) = &s.catalog {
        capabilities.as_object_mut().unwrap().extend(
            super::catalog::capabilities(label)
                .as_object()
                .unwrap()
                .clone(),
        );
    }
    capabilities
}

/// 403 `insufficient_scope` for a call of the scoped tool with a token that lacks its scope.
pub(crate) fn scope_refusal(
    s: &UpstreamState,
    headers: &HeaderMap,
    msg: &Value,
) -> Option<Response> {
    let (tool, scope) = s.scoped_tool.as_ref()?;
    if msg["method"] != "tools/call"
        || msg.pointer("/params/name").and_then(Value::as_str) != Some(tool)
    {
        return None;
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let granted = s
        .auth_server
        .validate(token)
        .and_then(|t| t.scope)
        .unwrap_or_default();
    if granted.split_whitespace().any(|g| g == scope) {
        return None;
    }
    let challenge = format!(
        "Bearer error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", error_description=\"{tool} needs {scope}\"",
        s.base
    );
    Some(
        (
            StatusCode::FORBIDDEN,
            [("www-authenticate", challenge)],
            Json(json!({"error": "insufficient_scope"})),
        )
            .into_response(),
    )
}

/// The answer to a request other than `initialize` (shared with the legacy transport).
pub(crate) fn answer(s: &UpstreamState, method: &str, id: &Value, msg: &Value) -> Value {
    match method {
        "ping" => result(id, json!({})),
        "tools/list" => {
            s.counters.tools_list.fetch_add(1, Ordering::SeqCst);
            let tools = s.tools.lock().unwrap().clone();
            let Some(size) = s.page_size else {
                return result(id, json!({"tools": tools}));
            };
            // Pages of `size`; the cursor is the index of the next page's first tool.
            let start: usize = msg
                .pointer("/params/cursor")
                .and_then(Value::as_str)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let end = (start + size).min(tools.len());
            let mut page = json!({"tools": tools.get(start..end).unwrap_or_default()});
            if end < tools.len() {
                page["nextCursor"] = json!(end.to_string());
            }
            result(id, page)
        }
        "tools/call" => {
            s.counters.tools_call.fetch_add(1, Ordering::SeqCst);
            let name = msg
                .pointer("/params/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let args = msg
                .pointer("/params/arguments")
                .cloned()
                .unwrap_or(json!({}));
            match name {
                "echo" => result(id, text_result(args["text"].as_str().unwrap_or_default())),
                // Unlisted: the request's `_meta` as this server received it.
                "meta" => result(id, text_result(&msg["params"]["_meta"].to_string())),
                // Unlisted: the request's id as this server received it.
                "request_id" => result(id, text_result(&id.to_string())),
                "add" => {
                    let sum = args["a"].as_f64().unwrap_or(0.0) + args["b"].as_f64().unwrap_or(0.0);
                    result(id, text_result(&sum.to_string()))
                }
                other => rpc_error(id, -32602, &format!("unknown tool {other}")),
            }
        }
        other => super::catalog::answer(s, other, id, msg)
            .unwrap_or_else(|| rpc_error(id, -32601, &format!("method not found: {other}"))),
    }
}

pub(crate) fn text_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": false})
}
