//! Answers for a local client when the upstream cannot be used: never a 500, never an empty tool
//! list. A JSON-RPC request gets a JSON-RPC error naming the server and what to do (a
//! `tools/call` gets a result with `isError: true`, which models show to the person).

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::host::ClientOrigin;
use super::resource;
use crate::aggregate::{signin, Aggregate};
use crate::config::ServerConfig;
use crate::issuer::{unix_now, Principal};
use crate::upstream::{FailureKind, UpstreamError};

fn error_code(kind: FailureKind) -> (i64, &'static str) {
    match kind {
        FailureKind::NeedsSignIn => (-32001, "needs_sign_in"),
        FailureKind::Unreachable => (-32002, "unreachable"),
        FailureKind::AuthRejected => (-32003, "auth_rejected"),
        FailureKind::Protocol => (-32004, "upstream_protocol"),
        FailureKind::Setup => (-32005, "setup"),
    }
}

/// The `id` and `method` of a JSON-RPC message (only read on this failure path).
fn id_and_method(body: &Bytes) -> (Option<Value>, Option<String>) {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => (
            map.get("id").filter(|v| !v.is_null()).cloned(),
            map.get("method")
                .and_then(Value::as_str)
                .map(str::to_string),
        ),
        _ => (None, None),
    }
}

/// Whether a request body declares URL-mode elicitation in `initialize` (a byte search first, so
/// other bodies are not parsed).
pub fn declares_url_elicitation(body: &[u8]) -> bool {
    const KEY: &[u8] = b"\"elicitation\"";
    if !body.windows(KEY.len()).any(|w| w == KEY) {
        return false;
    }
    serde_json::from_slice::<Value>(body).is_ok_and(|m| {
        m["method"] == "initialize" && m["params"]["capabilities"]["elicitation"]["url"].is_object()
    })
}

/// The answer for a request the upstream could not serve. `links` is given when the client's
/// session declared URL-mode elicitation: a request that needs a sign-in then gets `-32042`
/// with a one-time sign-in link ([`crate::aggregate::signin`]).
pub fn failure(
    err: UpstreamError,
    cfg: &ServerConfig,
    method: &Method,
    body: &Bytes,
    principal: &Principal,
    origin: &ClientOrigin,
    links: Option<&Aggregate>,
) -> Response {
    if let (FailureKind::NeedsSignIn, Some(aggregate), true) =
        (err.kind(), links, method == Method::POST)
    {
        if let (Some(id), _) = id_and_method(body) {
            let (url, eid) = aggregate.sign_in_link(&cfg.name, &origin.0, unix_now());
            return Json(json!({"jsonrpc": "2.0", "id": id, "error": {
                "code": signin::URL_ELICITATION_REQUIRED,
                "message": format!("{err}; open the sign-in link, then try again"),
                "data": signin::elicitation(&url, &eid, cfg.name.as_str()),
            }}))
            .into_response();
        }
    }
    // `Event::NeedsSignIn` (the desktop notification) is sent by `upstream`, once per change.
    if err.kind() == FailureKind::NeedsSignIn && principal.is_api_key() {
        let server = cfg.name.as_str();
        return resource::sign_in_challenge(origin, server, err.to_string()).into_response();
    }
    answer(err, cfg, method, body)
}

/// The JSON-RPC answer for a failure, whoever the client is.
pub fn answer(err: UpstreamError, cfg: &ServerConfig, method: &Method, body: &Bytes) -> Response {
    let server = cfg.name.as_str();
    let kind = err.kind();
    let message = err.to_string();
    tracing::warn!(server, %method, "upstream not usable: {message}");
    let (code, reason) = error_code(kind);
    let (id, rpc_method) = if method == Method::POST {
        id_and_method(body)
    } else {
        (None, None)
    };
    match id {
        Some(id) if rpc_method.as_deref() == Some("tools/call") => Json(json!({
            "jsonrpc": "2.0",
            "id": id,
            "result": { "content": [{ "type": "text", "text": message }], "isError": true },
        }))
        .into_response(),
        Some(id) => Json(json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": { "code": code, "message": message, "data": { "server": server, "reason": reason } },
        }))
        .into_response(),
        None => {
            let status = if kind == FailureKind::Unreachable { StatusCode::BAD_GATEWAY } else { StatusCode::SERVICE_UNAVAILABLE };
            (status, Json(json!({ "jsonrpc": "2.0", "id": null, "error": { "code": code, "message": message, "data": { "server": server, "reason": reason } } }))).into_response()
        }
    }
}

/// A session owned by another local client is answered as unknown (the client re-initializes).
pub fn session_not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "jsonrpc": "2.0", "id": null, "error": { "code": -32001, "message": "session not found" } }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_initialize_with_url_elicitation_declares_it() {
        let init = |caps: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"capabilities":{caps}}}}}"#
            )
        };
        assert!(declares_url_elicitation(
            init(r#"{"elicitation":{"url":{}}}"#).as_bytes()
        ));
        assert!(!declares_url_elicitation(
            init(r#"{"elicitation":{"form":{}}}"#).as_bytes()
        ));
        assert!(!declares_url_elicitation(init("{}").as_bytes()));
        let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x","arguments":{"elicitation":{"url":{}}}}}"#;
        assert!(!declares_url_elicitation(call.as_bytes()));
        assert!(!declares_url_elicitation(b"\"elicitation\" not json"));
    }
}
