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
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

#[path = "aggregate_modern.rs"]
mod modern_http;
#[path = "aggregate_reply.rs"]
mod replies;

use modern_http::{stateless, stateless_call, unsupported};
use replies::{refuse, reply, rpc_error, take_string, Answered};

use super::error::GatewayError;
use super::host::ClientOrigin;
use super::legacy::{event_stream, event_stream_after};
use super::proxy::{read_body, MCP_SESSION_ID};
use super::{resource, rpc};
use crate::aggregate::calls::{params_object, Scope};
use crate::aggregate::pass::Passed;
use crate::aggregate::session::{Outbox, Session};
use crate::aggregate::{Aggregate, AUDIENCE};
use crate::broker::Broker;
use crate::clock::unix_now;
use crate::issuer::Principal;
use crate::protocol::shallow::{Params, TextCall};
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
        .get(headers::PROTOCOL_VERSION)
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
        let get = |name: &str| parts.headers.get(name).map(|v| v.as_bytes());
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

/// A legacy GET (the session's event stream) or DELETE (the session's end).
async fn legacy_stream(
    aggregate: &Aggregate,
    method: &Method,
    h: &HeaderMap,
    principal: &Principal,
) -> Result<Response, GatewayError> {
    let session_id = h.get(MCP_SESSION_ID).and_then(|v| v.to_str().ok());
    let Some(id) = session_id else {
        return Err(GatewayError::BadRequest(format!(
            "{method} /mcp needs the Mcp-Session-Id header from initialize"
        )));
    };
    match *method {
        Method::GET => {
            let Some(session) = aggregate.get(id, principal, unix_now()) else {
                return Ok(rpc::session_not_found());
            };
            if !accepts_sse(h) {
                return Err(GatewayError::BadRequest(
                    "GET /mcp opens an event stream: send Accept: text/event-stream".into(),
                ));
            }
            let mine = Some(session.notes().subscribe());
            Ok(fan_in(None, mine, session.changes(), Some))
        }
        Method::DELETE => Ok(if aggregate.close(id, principal).await {
            StatusCode::OK.into_response()
        } else {
            rpc::session_not_found()
        }),
        ref other => Err(GatewayError::MethodNotAllowed(other.to_string())),
    }
}

/// A legacy POST: `initialize` opens a session; anything else needs one. Requests are answered
/// as an event stream when the client accepts one (notices first, then the result), else as
/// JSON (notices then go to its GET stream); notifications and answers from the client are
/// acknowledged with 202 (answers to requests passed on from an upstream go there first).
async fn legacy_post(
    aggregate: Arc<Aggregate>,
    principal: Principal,
    origin: &ClientOrigin,
    scope: Scope,
    h: &HeaderMap,
    mut message: Value,
) -> Result<Response, GatewayError> {
    let now = unix_now();
    if message["method"] == "initialize" {
        let asked = (principal, &message);
        return Ok(initialize(&aggregate, scope, asked, origin, now));
    }
    let session = match session_of(&aggregate, &principal, h, &message["id"]) {
        Ok(session) => session,
        Err(refused) => return Ok(refused),
    };
    if message.is_array() {
        let e = rpc_error(
            codes::INVALID_REQUEST,
            "batches are not supported by /mcp; send one message per request".into(),
        );
        return Ok(refuse(StatusCode::BAD_REQUEST, Value::Null, e));
    }
    let (Some(id), Some(_)) = (
        message.get("id").filter(|v| !v.is_null()).cloned(),
        message["method"].as_str(),
    ) else {
        match message["method"].as_str() {
            Some("notifications/cancelled") => session.cancel(&message["params"]).await,
            Some("notifications/roots/list_changed") => session.tell_upstreams(&message).await,
            Some(_) => {}
            None => {
                session.answered(&message).await;
            }
        }
        return Ok(StatusCode::ACCEPTED.into_response());
    };
    let method = take_string(&mut message["method"]);
    let params = params_object(&mut message);
    let sink = session.notes().clone();
    Ok(answer(accepts_sse(h), Some(sink), move |out| async move {
        let caller = session.caller(&out);
        let answer = caller.dispatch(&method, params, &id).await;
        Answered::of(id, answer)
    })
    .await)
}

/// The legacy session a request names in its `Mcp-Session-Id`, or the refusal answering `id`.
#[allow(clippy::result_large_err)]
fn session_of(
    aggregate: &Aggregate,
    principal: &Principal,
    h: &HeaderMap,
    id: &Value,
) -> Result<Arc<Session>, Response> {
    let Some(sid) = h.get(MCP_SESSION_ID).and_then(|v| v.to_str().ok()) else {
        let e = rpc_error(codes::INVALID_REQUEST, "this request needs the Mcp-Session-Id header from initialize (or, for MCP 2026-07-28, MCP-Protocol-Version and _meta)".into());
        return Err(refuse(StatusCode::BAD_REQUEST, id.clone(), e));
    };
    aggregate
        .get(sid, principal, unix_now())
        .ok_or_else(rpc::session_not_found)
}

/// A legacy `tools/call` / `prompts/get` kept as the client's text: passed through on the
/// link its session uses when it can be ([`Passed`]), else served as [`legacy_post`] serves it
/// parsed.
async fn legacy_call(
    aggregate: Arc<Aggregate>,
    principal: Principal,
    h: &HeaderMap,
    call: TextCall,
) -> Result<Response, GatewayError> {
    let session = match session_of(&aggregate, &principal, h, call.id()) {
        Ok(session) => session,
        Err(refused) => return Ok(refused),
    };
    let sink = session.notes().clone();
    let call = match session.pass_through(call).await {
        Ok(Passed::Plain(reply)) => return Ok(Answered::Text(reply).into_response()),
        Ok(Passed::Read(sent)) => {
            return Ok(answer(accepts_sse(h), Some(sink), move |out| async move {
                let id = sent.id().clone();
                Answered::of(id, session.caller(&out).passed(sent).await)
            })
            .await)
        }
        Err(call) => call,
    };
    Ok(answer(accepts_sse(h), Some(sink), move |out| async move {
        let caller = session.caller(&out);
        let (method, id) = (call.method(), call.id().clone());
        let answer = caller.call(method, Params::Text(call), &id).await;
        Answered::of(id, answer)
    })
    .await)
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

fn initialize(
    aggregate: &Aggregate,
    scope: Scope,
    (principal, message): (Principal, &Value),
    origin: &ClientOrigin,
    now: u64,
) -> Response {
    let asked = message["params"]["protocolVersion"].as_str().unwrap_or("");
    let version = era::negotiate_legacy(asked).to_string();
    // URL-mode elicitation (2025-11-25): calls to servers that need sign-in get a sign-in link.
    let elicit = meta::url_elicitation(&message["params"]["capabilities"]);
    let id = aggregate.open_in(
        scope,
        principal,
        version.clone(),
        elicit.then(|| origin.0.clone()),
        &message["params"]["capabilities"],
        now,
    );
    let result = crate::aggregate::session::initialized(&version);
    let id_value = message.get("id").cloned().unwrap_or(Value::Null);
    let mut response = Json(reply(id_value, Ok(result))).into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(MCP_SESSION_ID, v);
    }
    response
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
