//! `/mcp`, the aggregate endpoint, over Streamable HTTP in both eras, and its protected resource
//! metadata. The MCP logic lives in [`crate::aggregate`]; this file speaks HTTP: the bearer
//! check (audience `mcp`), the era of each request (`MCP-Protocol-Version` / `_meta`), legacy
//! sessions, the modern header checks, and answers as JSON or as an event stream that carries
//! the notices (which server is missing and why) before the result. Every MCP request that
//! cannot be served gets a JSON-RPC error, never an OAuth-style body.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header::ACCEPT;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

#[path = "aggregate_legacy.rs"]
mod legacy_http;
#[path = "aggregate_modern.rs"]
mod modern_http;
#[path = "aggregate_reply.rs"]
mod replies;

use legacy_http::{legacy_call, legacy_post, legacy_stream};
use modern_http::{stateless, stateless_call, unsupported};
use replies::{refuse, rpc_error, Answered};

use super::error::GatewayError;
use super::host::ClientOrigin;
use super::legacy::{event_stream, event_stream_after};
use super::proxy::read_body;
use super::resource;
use crate::aggregate::calls::Scope;
use crate::aggregate::session::Outbox;
use crate::aggregate::{Aggregate, AUDIENCE};
use crate::broker::Broker;
use crate::issuer::Principal;
use crate::protocol::shallow::TextCall;
use crate::protocol::{codes, era, headers, meta, Era};

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
    match handle(&broker, aggregate, &origin, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    broker: &Broker,
    aggregate: Arc<Aggregate>,
    origin: &ClientOrigin,
    request: Request,
) -> Result<Response, GatewayError> {
    let (parts, body) = request.into_parts();
    let principal = resource::authenticate(broker, &parts.headers, AUDIENCE, origin)?;
    let body = match parts.method {
        Method::POST => read_body(&parts.headers, body).await?,
        _ => Bytes::new(),
    };
    serve(aggregate, principal, origin, None, &parts, &body).await
}

/// One authenticated request, served by the aggregate: `/mcp` (`scope` `None`), or a
/// translating `/{server}/mcp` (`scope` names the server; see `gateway::proxy`).
pub(super) async fn serve(
    aggregate: Arc<Aggregate>,
    principal: Principal,
    origin: &ClientOrigin,
    scope: Scope,
    parts: &Parts,
    body: &Bytes,
) -> Result<Response, GatewayError> {
    let version = parts
        .headers
        .get(headers::names::PROTOCOL_VERSION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()));
    let modern = meta::era_of(version.as_deref(), None) == Era::Modern;
    if parts.method != Method::POST {
        let refused = version
            .as_deref()
            .and_then(|v| unsupported(v, &Value::Null));
        if let Some(refused) = refused {
            return Ok(refused);
        }
        if modern {
            // 2026-07-28 has no GET stream and no sessions to end.
            return Ok((StatusCode::METHOD_NOT_ALLOWED, [("allow", "POST")]).into_response());
        }
        return legacy_stream(&aggregate, &parts.method, &parts.headers, &principal).await;
    }
    // A legacy call read shallowly: sent on as the client's text (`protocol::shallow`).
    if !modern && version.as_deref().is_none_or(era::is_supported) {
        if let Some(call) = TextCall::read(body) {
            return legacy_call(aggregate, principal, &parts.headers, call).await;
        }
    }
    // A modern call read shallowly, when its headers mirror it (else the full route refuses it).
    let shallow = version.as_deref().filter(|_| modern);
    if let Some((call, caps)) = shallow.and_then(|v| TextCall::read_modern(body, v)) {
        let get = |name: &HeaderName| parts.headers.get(name).map(|v| v.as_bytes());
        if headers::check_standard_named(call.method(), Some(call.name()), get).is_ok() {
            let asked = (&parts.headers, call, caps);
            return Ok(stateless_call(aggregate, principal, origin, scope, asked).await);
        }
    }
    let Ok(message) = serde_json::from_slice::<Value>(body) else {
        let e = rpc_error(codes::PARSE_ERROR, "the body is not JSON".into());
        return Ok(refuse(StatusCode::BAD_REQUEST, Value::Null, e));
    };
    let declared = meta::declared_version(&message);
    let id = message.get("id").unwrap_or(&Value::Null);
    if let Some(refused) = version
        .as_deref()
        .or(declared)
        .and_then(|v| unsupported(v, id))
    {
        return Ok(refused);
    }
    if meta::era_of(version.as_deref(), declared) == Era::Modern {
        let asked = (&parts.headers, message);
        return Ok(stateless(aggregate, principal, origin, scope, asked).await);
    }
    legacy_post(aggregate, principal, origin, scope, &parts.headers, message).await
}

fn accepts_sse(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("text/event-stream")))
}

/// Runs `work` (which sends notifications to its outbox and returns the reply). A client that
/// accepts an event stream gets one as soon as a notification comes, or an upstream answers
/// with an event stream (the outbox's [`crate::aggregate::session::STREAMING`] mark): the
/// notifications, then the reply; its headers go out then, so a client can cancel a long call
/// while it waits. Otherwise the reply is plain JSON, as the upstream gave it; a client that
/// takes only JSON gets its notifications on its GET stream (`sink`) as they come.
async fn answer<F, Fut>(sse: bool, sink: Option<broadcast::Sender<Value>>, work: F) -> Response
where
    F: FnOnce(Outbox) -> Fut,
    Fut: Future<Output = Answered> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Value>(32);
    let replies = tx.clone();
    let forward = |note: Value| {
        if let (Some(sink), false) = (&sink, note.is_null()) {
            let _ = sink.send(note);
        }
    };
    let mut work = Box::pin(work(tx));
    let reply = loop {
        tokio::select! {
            biased;
            Some(note) = rx.recv() => {
                if sse {
                    tokio::spawn(async move {
                        let reply = work.await.into_value();
                        let _ = replies.send(reply).await;
                    });
                    return event_stream_after(vec![note], rx);
                }
                forward(note);
            }
            reply = &mut work => break reply,
        }
    };
    let before: Vec<Value> = std::iter::from_fn(|| rx.try_recv().ok())
        .filter(|n| !n.is_null())
        .collect();
    if sse && !before.is_empty() {
        drop((work, replies));
        let mut all = before;
        all.push(reply.into_value());
        return event_stream_after(all, rx);
    }
    // The receiver goes first: the last sender's drop would wake this very task (it polled the
    // receiver), and a task woken while it runs is queued again and wakes an idle worker.
    drop(rx);
    drop((work, replies));
    before.into_iter().for_each(forward);
    reply.into_response()
}

/// An event stream of `first`, then what `mine` (one client's own messages) and `all` (every
/// client's list changes and notices) carry and `pass` lets through, until the client leaves.
fn fan_in(
    first: Option<Value>,
    mut mine: Option<broadcast::Receiver<Value>>,
    mut all: broadcast::Receiver<Value>,
    pass: impl Fn(Value) -> Option<Value> + Send + 'static,
) -> Response {
    use broadcast::error::RecvError;
    let (tx, rx) = mpsc::channel(32);
    tokio::spawn(async move {
        if let Some(m) = first {
            if tx.send(m).await.is_err() {
                return;
            }
        }
        loop {
            let own = async {
                match mine.as_mut() {
                    Some(r) => r.recv().await,
                    None => std::future::pending().await,
                }
            };
            let next = tokio::select! {
                _ = tx.closed() => return,
                n = own => n,
                n = all.recv() => n,
            };
            match next.map(&pass) {
                Ok(Some(note)) => {
                    if tx.send(note).await.is_err() {
                        return;
                    }
                }
                Ok(None) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            }
        }
    });
    event_stream(rx)
}
