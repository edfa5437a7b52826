//! `/mcp` for a 2025-era client: `initialize` opens a session (`Mcp-Session-Id`), its GET is
//! the session's event stream and its DELETE the session's end; every other request needs the
//! session. Calls read shallowly pass through on the session's link when they can
//! ([`Passed`]).

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::replies::{refuse, reply, rpc_error, take_string, Answered};
use super::{accepts_sse, answer, fan_in};
use crate::aggregate::calls::{params_object, Scope};
use crate::aggregate::pass::Passed;
use crate::aggregate::session::Session;
use crate::aggregate::Aggregate;
use crate::clock::unix_now;
use crate::gateway::error::GatewayError;
use crate::gateway::host::ClientOrigin;
use crate::gateway::rpc;
use crate::issuer::Principal;
use crate::protocol::headers::names;
use crate::protocol::shallow::{Params, TextCall};
use crate::protocol::{codes, era, meta};

/// A legacy GET (the session's event stream) or DELETE (the session's end).
pub(super) async fn legacy_stream(
    aggregate: &Aggregate,
    method: &Method,
    h: &HeaderMap,
    principal: &Principal,
) -> Result<Response, GatewayError> {
    let session_id = h.get(names::SESSION_ID).and_then(|v| v.to_str().ok());
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
pub(super) async fn legacy_post(
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
    let Some(sid) = h.get(names::SESSION_ID).and_then(|v| v.to_str().ok()) else {
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
pub(super) async fn legacy_call(
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
        response.headers_mut().insert(names::SESSION_ID, v);
    }
    response
}
