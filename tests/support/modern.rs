//! The test upstream's 2026-07-28 ("modern") face, for `UpstreamEra::Modern` and the modern
//! half of `UpstreamEra::Dual`: stateless requests with `_meta`, `server/discover`, the
//! header/body validation of the Streamable HTTP transport (`-32020`), `-32022` for versions it
//! does not serve, 404 `-32601` for unknown methods, results with `resultType` and cache hints,
//! MRTR (`ask_user`) and `subscriptions/listen`. Written from the spec, independently of the
//! broker's own modern code, so a test proves the broker against the spec and not against
//! itself; only the Base64 sentinel and `x-mcp-header` walk come from `protocol::headers`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mcp_auth_broker::protocol::{codes, envelope, headers, meta, MODERN_VERSION};
use serde_json::{json, Value};

use super::mcp::{self, reply, text_result, VERSIONS};
use super::upstream::{UpstreamEra, UpstreamState};

/// `_meta` key naming the `subscriptions/listen` request a stream message belongs to.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
/// The key of `ask_user`'s one input request.
pub const ASK_KEY: &str = "confirm";

/// `lookup`: `{region, key}` → text `"{key}@{region}"`; `region` is annotated
/// `x-mcp-header: "Region"`, so a modern call must carry `Mcp-Param-Region`.
pub fn lookup_tool() -> Value {
    json!({"name": "lookup", "description": "Looks a key up in a region", "inputSchema": {"type": "object", "properties": {
        "region": {"type": "string", "description": "Mirrored into Mcp-Param-Region", "x-mcp-header": "Region"},
        "key": {"type": "string"}}, "required": ["region", "key"]}})
}

/// `ask_user`: asks the person one question (`elicitation/create`, form mode, field `answer`);
/// the result's text is `"{action}: {answer}"` (`"accept: yes"`) or `"{action}"` without one.
/// Modern: an `input_required` result, completed by the retry (MRTR). Legacy session: an
/// `elicitation/create` request on the call's SSE stream.
pub fn ask_user_tool() -> Value {
    json!({"name": "ask_user", "description": "Asks the person a question and returns the answer", "inputSchema": {"type": "object", "properties": {"question": {"type": "string"}}}})
}

/// The tools of a Modern or Dual upstream: [`mcp::default_tools`], `lookup`, `ask_user`.
pub fn default_tools() -> Vec<Value> {
    let mut tools = mcp::default_tools();
    tools.extend([lookup_tool(), ask_user_tool()]);
    tools
}

/// The elicitation `ask_user` sends (the value of `inputRequests.confirm`).
pub fn ask_user_request(question: &str) -> Value {
    json!({"method": "elicitation/create", "params": {"mode": "form", "message": question,
        "requestedSchema": {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}}})
}

/// Whether this message is served by the modern code: always on a Modern upstream; on a Dual
/// one when it is not `initialize` and its `_meta` names a protocol version.
pub(crate) fn serves(s: &UpstreamState, msg: &Value) -> bool {
    match s.era {
        UpstreamEra::Legacy => false,
        UpstreamEra::Modern => true,
        UpstreamEra::Dual => {
            msg["method"] != "initialize"
                && msg["params"]["_meta"].get(meta::PROTOCOL_VERSION).is_some()
        }
    }
}

/// GET and DELETE on a modern-only server.
pub(crate) fn not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, [("allow", "POST")]).into_response()
}

fn supported(s: &UpstreamState) -> Vec<&'static str> {
    let mut v = vec![MODERN_VERSION];
    if s.era == UpstreamEra::Dual {
        v.extend(VERSIONS);
    }
    v
}

fn refuse(status: StatusCode, message: Value) -> Response {
    (status, Json(message)).into_response()
}

/// One POSTed message on the modern path (auth and faults were checked by the caller).
pub(crate) fn post(s: &Arc<UpstreamState>, h: &HeaderMap, msg: Value) -> Response {
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = msg["method"].as_str().map(str::to_string) else {
        let e = "this 2026-07-28 server takes no JSON-RPC responses from clients";
        return refuse(
            StatusCode::BAD_REQUEST,
            envelope::error(id, codes::INVALID_REQUEST, e, None),
        );
    };
    if method == "initialize" {
        let text = format!("This server speaks only MCP {MODERN_VERSION} (supported versions: {MODERN_VERSION}); initialize is not part of it: send each request with _meta instead");
        let data = json!({"supported": [MODERN_VERSION]});
        return refuse(
            StatusCode::BAD_REQUEST,
            envelope::error(id, codes::INVALID_REQUEST, text, Some(data)),
        );
    }
    if id.is_null() {
        s.counters.notifications.fetch_add(1, Ordering::SeqCst);
        return StatusCode::ACCEPTED.into_response();
    }
    if let Err(r) = validate(s, h, &msg, &id) {
        return *r;
    }
    if let Some(refusal) = mcp::scope_refusal(s, h, &msg) {
        return refusal;
    }
    let mode = *s.response.lock().unwrap();
    let message = match method.as_str() {
        "server/discover" => {
            s.counters.discover.fetch_add(1, Ordering::SeqCst);
            envelope::result(id, discover(s))
        }
        "subscriptions/listen" => return super::listen::listen(s, id, &msg),
        "tools/list" => complete(s, mcp::answer(s, "tools/list", &id, &msg), true),
        "tools/call" => match call(s, &id, &msg) {
            Ok(message) => message,
            Err(r) => return *r,
        },
        "ping" | "logging/setLevel" | "resources/subscribe" | "resources/unsubscribe" => {
            return unknown(id, &method)
        }
        other => match super::catalog::answer(s, other, &id, &msg) {
            Some(answer) => complete(
                s,
                answer,
                other.ends_with("/list") || other == "resources/read",
            ),
            None => return unknown(id, other),
        },
    };
    reply(mode, message, None)
}

fn unknown(id: Value, method: &str) -> Response {
    let e = envelope::error(
        id,
        codes::METHOD_NOT_FOUND,
        format!("method not found: {method}"),
        None,
    );
    refuse(StatusCode::NOT_FOUND, e)
}

/// The `server/discover` result.
fn discover(s: &UpstreamState) -> Value {
    json!({
        "resultType": "complete",
        "supportedVersions": supported(s),
        "capabilities": mcp::capabilities(s),
        "_meta": {meta::SERVER_INFO: {"name": "test-upstream", "version": "1.0.0"}},
        "ttlMs": s.cache_ttl_ms,
        "cacheScope": s.cache_scope,
    })
}

/// A legacy answer made modern: `resultType`, cache hints when `cacheable`, and "not found"
/// as `-32602`.
fn complete(s: &UpstreamState, mut message: Value, cacheable: bool) -> Value {
    if let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) {
        result.insert("resultType".into(), json!("complete"));
        if cacheable {
            result.insert("ttlMs".into(), json!(s.cache_ttl_ms));
            result.insert("cacheScope".into(), json!(s.cache_scope));
        }
    } else if message["error"]["code"] == -32002 {
        message["error"]["code"] = json!(codes::INVALID_PARAMS);
    }
    message
}

/// The version and header checks every modern request passes first.
fn validate(
    s: &UpstreamState,
    h: &HeaderMap,
    msg: &Value,
    id: &Value,
) -> Result<(), Box<Response>> {
    let body_version = meta::declared_version(msg);
    let header_version = h
        .get(headers::PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok());
    if let Some(v) = body_version.or(header_version) {
        if v != MODERN_VERSION {
            let data = json!({"supported": supported(s), "requested": v});
            let e = envelope::error(
                id.clone(),
                codes::UNSUPPORTED_PROTOCOL_VERSION,
                "Unsupported protocol version",
                Some(data),
            );
            return Err(Box::new(refuse(StatusCode::BAD_REQUEST, e)));
        }
    }
    let checked = if header_version.is_none() {
        Err("Header mismatch: the MCP-Protocol-Version header is missing".to_string())
    } else if body_version != header_version {
        Err(format!("Header mismatch: MCP-Protocol-Version header {header_version:?} does not match _meta {body_version:?}"))
    } else {
        headers::check_standard(msg, |n| h.get(n).map(|v| v.as_bytes()))
            .map_err(|e| format!("Header mismatch: {e}"))
            .and_then(|()| check_params(s, h, msg))
    };
    checked.map_err(|text| {
        s.counters.header_mismatch.fetch_add(1, Ordering::SeqCst);
        let e = envelope::error(id.clone(), codes::HEADER_MISMATCH, text, None);
        Box::new(refuse(StatusCode::BAD_REQUEST, e))
    })
}

/// The `Mcp-Param-*` headers of a `tools/call` against the listed tool's `x-mcp-header`s.
fn check_params(s: &UpstreamState, h: &HeaderMap, msg: &Value) -> Result<(), String> {
    if msg["method"] != "tools/call" {
        return Ok(());
    }
    let name = msg["params"]["name"].as_str().unwrap_or_default();
    let schema = match s.tools.lock().unwrap().iter().find(|t| t["name"] == name) {
        Some(tool) => tool["inputSchema"].clone(),
        None => return Ok(()),
    };
    let expected = headers::params(&schema, &msg["params"]["arguments"]);
    for (_, param) in headers::valid_annotations(&schema).unwrap_or_default() {
        let header = format!("{}{}", headers::PARAM_PREFIX, param.to_ascii_lowercase());
        let want = expected.iter().find(|(n, _)| *n == param).map(|(_, v)| v);
        let got = match h.get(header.as_str()) {
            None if want.is_some() => {
                return Err(format!(
                    "Header mismatch: the Mcp-Param-{param} header is missing"
                ))
            }
            None => continue,
            Some(raw) => headers::decode_value(raw.as_bytes()).ok_or_else(|| {
                format!("Header mismatch: the Mcp-Param-{param} header is malformed")
            })?,
        };
        let Some(want) = want.map(|w| headers::decode_value(w.as_bytes()).unwrap_or(w.clone()))
        else {
            continue;
        };
        let numeric = matches!((got.parse::<f64>(), want.parse::<f64>()), (Ok(a), Ok(b)) if a == b);
        if got != want && !numeric {
            return Err(format!("Header mismatch: Mcp-Param-{param} header value '{got}' does not match body value '{want}'"));
        }
    }
    Ok(())
}

/// A modern `tools/call`: the JSON-RPC answer, or (`Err`) an HTTP response to send as it is
/// (a refusal, or `slow_stream`'s event stream).
fn call(s: &Arc<UpstreamState>, id: &Value, msg: &Value) -> Result<Value, Box<Response>> {
    let args = &msg["params"]["arguments"];
    match msg["params"]["name"].as_str().unwrap_or_default() {
        "lookup" => {
            s.counters.tools_call.fetch_add(1, Ordering::SeqCst);
            let text = format!(
                "{}@{}",
                args["key"].as_str().unwrap_or_default(),
                args["region"].as_str().unwrap_or_default()
            );
            Ok(complete(s, mcp::result(id, text_result(&text)), false))
        }
        "ask_user" => ask_user(s, id, msg),
        "slow_stream" => {
            s.counters.tools_call.fetch_add(1, Ordering::SeqCst);
            let steps = args["steps"].as_u64().unwrap_or(3);
            let stream = super::streams::slow_stream(s.clone(), id.clone(), msg, steps, true);
            Err(Box::new(stream))
        }
        // Server→client requests do not exist in 2026-07-28 (MRTR replaces them).
        "ask_client" => Ok(envelope::error(
            id.clone(),
            codes::INVALID_PARAMS,
            "ask_client sends server-to-client requests, which need a legacy session",
            None,
        )),
        _ => Ok(complete(s, mcp::answer(s, "tools/call", id, msg), false)),
    }
}

/// `ask_user` as MRTR: `input_required` until the retry carries `inputResponses.confirm` and
/// a `requestState` this server issued (base64url of `ask_user:{n}`).
fn ask_user(s: &UpstreamState, id: &Value, msg: &Value) -> Result<Value, Box<Response>> {
    if !meta::declared_capabilities(msg)["elicitation"].is_object() {
        let data = json!({"requiredCapabilities": {"elicitation": {}}});
        let e = envelope::error(
            id.clone(),
            codes::MISSING_REQUIRED_CLIENT_CAPABILITY,
            "Server requires the elicitation capability for this request",
            Some(data),
        );
        return Err(Box::new(refuse(StatusCode::BAD_REQUEST, e)));
    }
    s.counters.tools_call.fetch_add(1, Ordering::SeqCst);
    let params = &msg["params"];
    if let Some(state) = params.get("requestState") {
        let ours = state
            .as_str()
            .and_then(|st| URL_SAFE_NO_PAD.decode(st).ok())
            .is_some_and(|b| b.starts_with(b"ask_user:"));
        if !ours {
            let e = "the requestState was not issued by this server";
            return Ok(envelope::error(id.clone(), codes::INVALID_PARAMS, e, None));
        }
        let answer = &params["inputResponses"][ASK_KEY];
        if answer.is_object() {
            return Ok(complete(
                s,
                mcp::result(id, text_result(&super::listen::answer_text(answer))),
                false,
            ));
        }
    }
    let n = s.counters.input_required.fetch_add(1, Ordering::SeqCst);
    let question = params["arguments"]["question"]
        .as_str()
        .unwrap_or("Please confirm");
    Ok(envelope::result(
        id.clone(),
        json!({
            "resultType": "input_required",
            "inputRequests": {ASK_KEY: ask_user_request(question)},
            "requestState": URL_SAFE_NO_PAD.encode(format!("ask_user:{n}")),
        }),
    ))
}
