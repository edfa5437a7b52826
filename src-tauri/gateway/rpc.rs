//! Answers the broker writes itself on `/{server}/mcp`, in the era the client speaks
//! ([`meta::client_era`], decided per request from the `MCP-Protocol-Version` header and the
//! body's `_meta`): never a 500, never an empty tool list, never an OAuth error body where a
//! client reads JSON-RPC.
//!
//! - An upstream that cannot be used: a JSON-RPC error naming the server and what to do (a
//!   `tools/call` gets a result with `isError: true`, which models show to the person; for a
//!   modern client with `resultType`).
//! - A needed sign-in, for a client that declared URL-mode elicitation: a one-time sign-in link
//!   ([`crate::aggregate::signin`]) — a `-32042` error for a 2025 client, an `input_required`
//!   result with a URL-mode elicitation for a modern one (only on `tools/call`, `prompts/get` and
//!   `resources/read`, the requests that may carry one); the client opens it and retries. The
//!   retry's `inputResponses` go upstream untouched: a server ignores responses it did not ask for.
//! - A server the broker does not serve (unknown, disabled): for a modern client a 404 with a
//!   JSON-RPC `-32601` error (the code the transport reserves for "nothing here answers this"; a
//!   recognised modern error, so a client does not fall back to `initialize` and read the same
//!   404 again); a 2025 client keeps the gateway's plain 404.
//! - A protocol version the broker does not speak: 400 with `-32022` listing those it does.

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::host::ClientOrigin;
use super::resource;
use crate::aggregate::session::failure_code as error_code;
use crate::aggregate::{signin, Aggregate};
use crate::clock::unix_now;
use crate::config::ServerConfig;
use crate::issuer::Principal;
use crate::protocol::{codes, envelope, era, meta, mrtr, Era, SUPPORTED_VERSIONS};
use crate::upstream::{FailureKind, UpstreamError};

/// The client's request as the broker's own answers read it. Nothing here is parsed until an
/// answer needs it (the forwarding path never does).
#[derive(Clone, Copy)]
pub struct Asked<'a> {
    pub method: &'a Method,
    pub body: &'a Bytes,
    /// The `MCP-Protocol-Version` header, when it is text.
    pub version: Option<&'a str>,
}

/// What an answer needs of the request: its id, method and era.
struct Read {
    id: Option<Value>,
    method: Option<String>,
    era: Era,
    message: Option<Value>,
}

impl Asked<'_> {
    fn read(&self) -> Read {
        let message = (*self.method == Method::POST)
            .then(|| serde_json::from_slice::<Value>(self.body).ok())
            .flatten()
            .filter(Value::is_object);
        let era = meta::client_era(self.version, message.as_ref());
        let (id, method) = match &message {
            Some(m) => (
                m.get("id").filter(|v| !v.is_null()).cloned(),
                m.get("method").and_then(Value::as_str).map(str::to_string),
            ),
            None => (None, None),
        };
        Read {
            id,
            method,
            era,
            message,
        }
    }
}

/// Whether a request declares URL-mode elicitation: a 2025 `initialize` in its capabilities, a
/// modern request in its `_meta` (a byte search first, so other bodies are not parsed).
pub fn declares_url_elicitation(body: &[u8]) -> bool {
    const KEY: &[u8] = b"\"elicitation\"";
    if !body.windows(KEY.len()).any(|w| w == KEY) {
        return false;
    }
    serde_json::from_slice::<Value>(body).is_ok_and(|m| declares_url(&m))
}

fn declares_url(message: &Value) -> bool {
    let capabilities = if message["method"] == "initialize" {
        &message["params"]["capabilities"]
    } else {
        meta::declared_capabilities(message)
    };
    meta::url_elicitation(capabilities)
}

/// The answer for a request the upstream could not serve. `links` is given when the client
/// declared URL-mode elicitation (in its session, or, modern, on this request): a request that
/// needs a sign-in then gets a sign-in link in its era (see the module docs).
pub fn failure(
    err: UpstreamError,
    cfg: &ServerConfig,
    asked: &Asked,
    principal: &Principal,
    origin: &ClientOrigin,
    links: Option<&Aggregate>,
) -> Response {
    if err.kind() == FailureKind::NeedsSignIn {
        if let Some(link) = links.and_then(|a| sign_in_link(&err, cfg, asked, origin, a)) {
            return link;
        }
        // `Event::NeedsSignIn` (the desktop notification) is sent by `upstream`, once per change.
        if principal.is_api_key() {
            return sign_in_challenge(err, cfg, asked.read(), origin);
        }
    }
    answer_to(err, cfg, asked.read())
}

/// 401 with the broker's resource metadata, so a script's client can sign in through the broker
/// (whose consent chains into the upstream's sign-in); a modern client reads the body as the
/// JSON-RPC error of its request.
fn sign_in_challenge(
    err: UpstreamError,
    cfg: &ServerConfig,
    read: Read,
    origin: &ClientOrigin,
) -> Response {
    let server = cfg.name.as_str();
    let message = err.to_string();
    let mut response = resource::sign_in_challenge(origin, server, message.clone()).into_response();
    if read.era == Era::Modern {
        let (code, reason) = error_code(FailureKind::NeedsSignIn);
        let data = json!({ "server": server, "reason": reason });
        let body = envelope::error(read.id.unwrap_or(Value::Null), code, message, Some(data));
        *response.body_mut() = axum::body::Body::from(body.to_string());
    }
    response
}

/// A sign-in link in the client's era, when the request can carry one.
fn sign_in_link(
    err: &UpstreamError,
    cfg: &ServerConfig,
    asked: &Asked,
    origin: &ClientOrigin,
    aggregate: &Aggregate,
) -> Option<Response> {
    let read = asked.read();
    let id = read.id?;
    let text = format!("{err}; open the sign-in link, then try again");
    if read.era == Era::Modern {
        let method = read.method.as_deref()?;
        if !mrtr::RETRYABLE.contains(&method) || !read.message.as_ref().is_some_and(declares_url) {
            return None;
        }
        let (url, _) = aggregate.sign_in_link(&cfg.name, &origin.0, unix_now());
        let key = format!("signin-{}", cfg.name);
        let result = mrtr::url_elicitation(&key, &text, &url);
        return Some(Json(envelope::result(id, result)).into_response());
    }
    let (url, eid) = aggregate.sign_in_link(&cfg.name, &origin.0, unix_now());
    let data = signin::elicitation(&url, &eid, cfg.name.as_str());
    let error = envelope::error(id, codes::URL_ELICITATION_REQUIRED, text, Some(data));
    Some(Json(error).into_response())
}

/// The JSON-RPC answer for a failure, whoever the client is (the era read from the body).
pub fn answer(err: UpstreamError, cfg: &ServerConfig, method: &Method, body: &Bytes) -> Response {
    let asked = Asked {
        method,
        body,
        version: None,
    };
    answer_to(err, cfg, asked.read())
}

fn answer_to(err: UpstreamError, cfg: &ServerConfig, read: Read) -> Response {
    let server = cfg.name.as_str();
    let kind = err.kind();
    let message = err.to_string();
    let rpc_method = read.method.as_deref().unwrap_or("-");
    tracing::warn!(server, rpc_method, "upstream not usable: {message}");
    let (code, reason) = error_code(kind);
    let data = json!({ "server": server, "reason": reason });
    match read.id {
        Some(id) if read.method.as_deref() == Some("tools/call") => {
            let mut result =
                json!({ "content": [{ "type": "text", "text": message }], "isError": true });
            if read.era == Era::Modern {
                result["resultType"] = json!("complete");
            }
            Json(envelope::result(id, result)).into_response()
        }
        Some(id) => Json(envelope::error(id, code, message, Some(data))).into_response(),
        None => {
            let status = if kind == FailureKind::Unreachable {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let body = envelope::error(Value::Null, code, message, Some(data));
            (status, Json(body)).into_response()
        }
    }
}

/// An unknown session, or one owned by another local client (answered as unknown): 404, which
/// the transport mandates and on which the client re-initializes, with `SESSION_NOT_FOUND`.
pub fn session_not_found() -> Response {
    let body = envelope::error(
        Value::Null,
        codes::SESSION_NOT_FOUND,
        "session not found: initialize a new one",
        None,
    );
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// For a modern client, the answer to a request on `/{server}/mcp` that no server of the broker
/// serves (`why` says which and what to do); `None` for a 2025 client, which keeps the gateway's
/// own answer.
pub fn not_served(asked: &Asked, server: &str, reason: &str, why: &str) -> Option<Response> {
    let read = asked.read();
    if read.era != Era::Modern {
        return None;
    }
    let data = json!({ "server": server, "reason": reason });
    let id = read.id.unwrap_or(Value::Null);
    let body = envelope::error(id, codes::METHOD_NOT_FOUND, why, Some(data));
    Some((StatusCode::NOT_FOUND, Json(body)).into_response())
}

/// Whether an `MCP-Protocol-Version` header names a version the broker speaks (absent: yes, a
/// client before 2025-06-18 sends none).
pub fn version_supported(header: Option<&[u8]>) -> bool {
    header.is_none_or(|v| std::str::from_utf8(v).is_ok_and(era::is_supported))
}

/// The answer to a request in a protocol version the broker does not speak (either era: 400, as
/// 2025-06-18 asks, with the modern `-32022` body listing the versions it does).
pub fn unsupported_version(asked: &Asked, asked_version: &str) -> Response {
    let id = asked.read().id.unwrap_or(Value::Null);
    let why = format!(
        "protocol version \"{asked_version}\" is not supported by the broker; use one of {}",
        SUPPORTED_VERSIONS.join(", ")
    );
    let data = json!({ "supported": SUPPORTED_VERSIONS, "requested": asked_version });
    let body = envelope::error(id, codes::UNSUPPORTED_PROTOCOL_VERSION, why, Some(data));
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked<'a>(body: &'a Bytes, version: Option<&'a str>) -> Read {
        Asked {
            method: &Method::POST,
            body,
            version,
        }
        .read()
    }

    #[test]
    fn url_elicitation_is_declared_at_initialize_or_in_a_modern_meta() {
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
        let modern = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "x",
            "_meta": {meta::CLIENT_CAPABILITIES: {"elicitation": {"url": {}}}}}});
        assert!(declares_url_elicitation(modern.to_string().as_bytes()));
    }

    #[test]
    fn the_era_of_a_request_comes_from_its_header_or_its_meta() {
        let legacy = Bytes::from(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        assert_eq!(asked(&legacy, None).era, Era::Legacy);
        assert_eq!(asked(&legacy, Some("2025-11-25")).era, Era::Legacy);
        assert_eq!(asked(&legacy, Some("2026-07-28")).era, Era::Modern);
        let modern = Bytes::from(
            json!({"jsonrpc": "2.0", "id": "a", "method": "tools/list",
                "params": {"_meta": {meta::PROTOCOL_VERSION: "2026-07-28"}}})
            .to_string(),
        );
        let read = asked(&modern, None);
        assert_eq!((read.era, read.id), (Era::Modern, Some(json!("a"))));
        assert_eq!(asked(&Bytes::from_static(b"[1]"), None).id, None);
    }

    #[test]
    fn only_versions_the_broker_speaks_pass() {
        assert!(version_supported(None));
        assert!(version_supported(Some(b"2026-07-28")));
        assert!(version_supported(Some(b"2025-03-26")));
        assert!(!version_supported(Some(b"2027-01-01")));
        assert!(!version_supported(Some(b"\xff")));
    }
}
