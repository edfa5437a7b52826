//! `/mcp`, the aggregate endpoint, over Streamable HTTP, and its protected resource metadata.
//! The MCP logic lives in [`crate::aggregate`]; this file speaks HTTP: the bearer check
//! (audience `mcp`), sessions, and answers as JSON or as an event stream that carries the
//! notices (which server is missing and why) before the result.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use super::error::GatewayError;
use super::host::ClientOrigin;
use super::legacy::event_stream;
use super::proxy::{read_body, MCP_SESSION_ID};
use super::{resource, rpc};
use crate::aggregate::names::{self, Listing};
use crate::aggregate::session::{Outbox, RpcError, Session};
use crate::aggregate::{Aggregate, AUDIENCE};
use crate::broker::Broker;
use crate::health::probe::SUPPORTED_VERSIONS;
use crate::issuer::{unix_now, Principal};

pub fn routes() -> Router<Broker> {
    Router::new()
        .route("/mcp", any(endpoint))
        .route("/.well-known/oauth-protected-resource/mcp", get(metadata))
}

async fn metadata(origin: ClientOrigin) -> Json<Value> {
    Json(json!({
        "resource": origin.resource(AUDIENCE),
        "authorization_servers": [origin.0],
        "bearer_methods_supported": ["header"],
        "resource_name": "All servers (via MCP Auth Broker)",
    }))
}

async fn endpoint(
    State(broker): State<Broker>,
    Extension(aggregate): Extension<Arc<Aggregate>>,
    origin: ClientOrigin,
    request: Request,
) -> Response {
    match handle(&broker, &aggregate, &origin, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    broker: &Broker,
    aggregate: &Aggregate,
    origin: &ClientOrigin,
    request: Request,
) -> Result<Response, GatewayError> {
    let (parts, body) = request.into_parts();
    let principal = resource::authenticate(broker, &parts.headers, AUDIENCE, origin)?;
    if let Some(v) = parts.headers.get("mcp-protocol-version") {
        if !SUPPORTED_VERSIONS.iter().any(|s| v == s) {
            return Err(GatewayError::BadRequest(format!(
                "MCP-Protocol-Version {v:?} is not supported; use one of {}",
                SUPPORTED_VERSIONS.join(", ")
            )));
        }
    }
    let session_id = parts
        .headers
        .get(MCP_SESSION_ID)
        .and_then(|v| v.to_str().ok());
    let now = unix_now();
    let session = |id: Option<&str>| match id {
        None => Err(GatewayError::BadRequest(
            "this request needs the Mcp-Session-Id header from initialize".into(),
        )),
        Some(id) => Ok(aggregate.get(id, &principal, now)),
    };
    match parts.method {
        Method::POST => {
            let body = read_body(&parts.headers, body).await?;
            let Ok(message) = serde_json::from_slice::<Value>(&body) else {
                return Ok(rpc_error(
                    StatusCode::BAD_REQUEST,
                    Value::Null,
                    RpcError {
                        code: -32700,
                        message: "the body is not JSON".into(),
                        data: None,
                    },
                ));
            };
            if message.get("method").and_then(Value::as_str) == Some("initialize") {
                return Ok(initialize(aggregate, principal, origin, &message, now));
            }
            let Some(session) = session(session_id)? else {
                return Ok(rpc::session_not_found());
            };
            Ok(post(session, message, accepts_sse(&parts.headers)).await)
        }
        Method::GET => {
            let Some(session) = session(session_id)? else {
                return Ok(rpc::session_not_found());
            };
            if !accepts_sse(&parts.headers) {
                return Err(GatewayError::BadRequest(
                    "GET /mcp opens an event stream: send Accept: text/event-stream".into(),
                ));
            }
            Ok(notes_stream(session.notes.subscribe()))
        }
        Method::DELETE => {
            let id = session_id.ok_or_else(|| {
                GatewayError::BadRequest("DELETE /mcp needs the Mcp-Session-Id header".into())
            })?;
            Ok(if aggregate.close(id, &principal).await {
                StatusCode::OK.into_response()
            } else {
                rpc::session_not_found()
            })
        }
        other => Err(GatewayError::MethodNotAllowed(other.to_string())),
    }
}

fn accepts_sse(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("text/event-stream")))
}

fn initialize(
    aggregate: &Aggregate,
    principal: Principal,
    origin: &ClientOrigin,
    message: &Value,
    now: u64,
) -> Response {
    let asked = message["params"]["protocolVersion"].as_str().unwrap_or("");
    let version = SUPPORTED_VERSIONS
        .iter()
        .find(|v| **v == asked)
        .unwrap_or(&SUPPORTED_VERSIONS[0])
        .to_string();
    // URL-mode elicitation (2025-11-25): calls to servers that need sign-in get a sign-in link.
    let elicit = message["params"]["capabilities"]["elicitation"]["url"].is_object();
    let id = aggregate.open_for(
        principal,
        version.clone(),
        elicit.then(|| origin.0.clone()),
        &message["params"]["capabilities"],
        now,
    );
    let result = json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": true},
            "prompts": {"listChanged": true},
            "resources": {"listChanged": true, "subscribe": true},
            "completions": {},
            "logging": {},
        },
        "serverInfo": {"name": "mcp-auth-broker", "title": "MCP Auth Broker: all servers", "version": env!("CARGO_PKG_VERSION")},
        "instructions": format!("Tools, prompts and resources of every server configured in MCP Auth Broker, named SERVER{}NAME. A server that cannot be used right now is named in a log notice.", names::SEPARATOR),
    });
    let mut response = Json(json!({"jsonrpc": "2.0", "id": message.get("id").cloned().unwrap_or(Value::Null), "result": result})).into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(MCP_SESSION_ID, v);
    }
    response
}

/// A message in an existing session. Requests are answered as an event stream when the client
/// accepts one (notices first, then the result), else as JSON (notices then go to its GET
/// stream); notifications and answers from the client are acknowledged with 202 (answers to
/// requests passed on from an upstream go to that upstream first).
async fn post(session: Arc<Session>, message: Value, sse: bool) -> Response {
    if message.is_array() {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            RpcError {
                code: -32600,
                message: "batches are not supported by /mcp; send one message per request".into(),
                data: None,
            },
        );
    }
    let (Some(id), Some(method)) = (
        message.get("id").filter(|v| !v.is_null()).cloned(),
        message.get("method").and_then(Value::as_str),
    ) else {
        match message["method"].as_str() {
            Some("notifications/cancelled") => session.cancel(&message["params"]).await,
            Some("notifications/roots/list_changed") => session.tell_upstreams(&message).await,
            Some(_) => {}
            None => {
                session.answered(&message).await;
            }
        }
        return StatusCode::ACCEPTED.into_response();
    };
    let method = method.to_string();
    let params = message.get("params").cloned().unwrap_or(json!({}));
    let (tx, mut rx) = mpsc::channel::<Value>(32);
    if sse {
        tokio::spawn(async move {
            let answer = dispatch(&session, &method, &params, &id, &tx).await;
            let _ = tx.send(reply(id, answer)).await;
        });
        return event_stream(rx);
    }
    let notes = session.notes.clone();
    let forward = tokio::spawn(async move {
        while let Some(note) = rx.recv().await {
            let _ = notes.send(note);
        }
    });
    let answer = dispatch(&session, &method, &params, &id, &tx).await;
    drop(tx);
    let _ = forward.await;
    Json(reply(id, answer)).into_response()
}

async fn dispatch(
    session: &Session,
    method: &str,
    params: &Value,
    id: &Value,
    out: &Outbox,
) -> Result<Value, RpcError> {
    if let Some(listing) = Listing::from_method(method) {
        if params.get("cursor").is_some_and(|c| !c.is_null()) {
            return Err(RpcError::invalid_params(
                "this endpoint answers lists in one page; it gave no cursor".into(),
            ));
        }
        return Ok(session.list(listing, out).await);
    }
    match method {
        "ping" | "logging/setLevel" => Ok(json!({})),
        "tools/call" | "prompts/get" => session.call(method, params, id, out).await,
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            session.by_uri(method, params, id, out).await
        }
        "completion/complete" => session.complete(params, id, out).await,
        other => Err(RpcError {
            code: -32601,
            message: format!("method \"{other}\" is not supported by /mcp"),
            data: None,
        }),
    }
}

fn reply(id: Value, answer: Result<Value, RpcError>) -> Value {
    match answer {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => {
            let mut error = json!({"code": e.code, "message": e.message});
            if let Some(data) = e.data {
                error["data"] = data;
            }
            json!({"jsonrpc": "2.0", "id": id, "error": error})
        }
    }
}

fn rpc_error(status: StatusCode, id: Value, e: RpcError) -> Response {
    (status, Json(reply(id, Err(e)))).into_response()
}

/// The client's GET stream: list changes and notices as they happen, until it disconnects.
fn notes_stream(mut notes: broadcast::Receiver<Value>) -> Response {
    let (tx, rx) = mpsc::channel(32);
    tokio::spawn(async move {
        loop {
            match notes.recv().await {
                Ok(note) => {
                    if tx.send(note).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    event_stream(rx)
}
