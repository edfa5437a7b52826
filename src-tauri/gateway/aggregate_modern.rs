//! `/mcp` for a modern (2026-07-28) request: stateless, its own `_meta`, its headers checked
//! against its body, in the order a server must: the `MCP-Protocol-Version` header present
//! (`-32020`), the required `_meta` present (`-32602`, [`meta::check_required`]), header and
//! body equal (`-32020`); an unsupported version is a `-32022` listing what `server/discover`
//! lists. Every refusal carries the request's id when there is one.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use super::replies::{refuse, reply, rpc_error, take_string, Answered};
use super::{accepts_sse, answer, fan_in};
use crate::aggregate::calls::{params_object, Scope};
use crate::aggregate::pass::Passed;
use crate::aggregate::session::RpcError;
use crate::aggregate::{modern, Aggregate};
use crate::config::ServerName;
use crate::gateway::host::ClientOrigin;
use crate::issuer::Principal;
use crate::protocol::shallow::{Params, TextCall};
use crate::protocol::{codes, era, headers, meta, SUPPORTED_VERSIONS};

/// `400` / `-32022` for a protocol version the broker does not speak, answering `id`. Its
/// `supported` list is the one `server/discover` gives.
pub(super) fn unsupported(version: &str, id: &Value) -> Option<Response> {
    if era::is_supported(version) {
        return None;
    }
    let e = RpcError {
        code: codes::UNSUPPORTED_PROTOCOL_VERSION,
        message: format!(
            "MCP protocol version \"{version}\" is not supported; use one of {}",
            SUPPORTED_VERSIONS.join(", ")
        ),
        data: Some(json!({"supported": SUPPORTED_VERSIONS, "requested": version})),
    };
    Some(refuse(StatusCode::BAD_REQUEST, id.clone(), e))
}

/// A modern request: stateless, its own `_meta`, the standard headers checked against the body.
pub(super) async fn stateless(
    aggregate: Arc<Aggregate>,
    principal: Principal,
    origin: &ClientOrigin,
    scope: Scope,
    (headers, mut message): (&HeaderMap, Value),
) -> Response {
    let id = message.get("id").filter(|v| !v.is_null()).cloned();
    if !message.is_object() {
        let e = rpc_error(
            codes::INVALID_REQUEST,
            "send one JSON-RPC message per request".into(),
        );
        return refuse(StatusCode::BAD_REQUEST, Value::Null, e);
    }
    if let Err((code, why)) = malformed(headers, &message, id.is_some()) {
        let echo = id.unwrap_or(Value::Null);
        return refuse(StatusCode::BAD_REQUEST, echo, rpc_error(code, why));
    }
    let (Some(id), true) = (id, message["method"].is_string()) else {
        // Notifications (and stray answers) need nothing: a modern request is cancelled by
        // closing its stream.
        return StatusCode::ACCEPTED.into_response();
    };
    let method = take_string(&mut message["method"]);
    if !modern::METHODS.contains(&method.as_str()) {
        let e = rpc_error(
            codes::METHOD_NOT_FOUND,
            format!("method \"{method}\" is not served by /mcp"),
        );
        return refuse(StatusCode::NOT_FOUND, id, e);
    }
    let caps = meta::declared_capabilities(&message).clone();
    let params = params_object(&mut message);
    let base = sign_in_base(origin, &caps);
    match method.as_str() {
        "server/discover" => Json(reply(id, Ok(aggregate.discover().await))).into_response(),
        "subscriptions/listen" => {
            let who = (&principal, scope.as_ref());
            listen(&aggregate, who, &caps, &base, id, &params).await
        }
        _ => {
            answer(accepts_sse(headers), None, move |out| async move {
                let caller = aggregate.stateless_in(scope.as_ref(), &principal, &caps, &base, &out);
                let answer = caller.dispatch(&method, params, &id).await;
                Answered::of(id, answer)
            })
            .await
        }
    }
}

/// A modern `tools/call` / `prompts/get` read shallowly ([`TextCall::read_modern`]), its
/// headers checked: passed through to a modern server when it can be ([`Passed`]), else served
/// as [`stateless`] serves the same call parsed.
pub(super) async fn stateless_call(
    aggregate: Arc<Aggregate>,
    principal: Principal,
    origin: &ClientOrigin,
    scope: Scope,
    (headers, call, caps): (&HeaderMap, TextCall, Value),
) -> Response {
    let call = match scope {
        Some(_) => call, // a translating `/{server}/mcp`: the eras differ by definition
        None => match aggregate.pass_through(call, &caps).await {
            Ok(Passed::Plain(body)) => return Answered::Text(body).into_response(),
            Ok(Passed::Read(sent)) => {
                let base = sign_in_base(origin, &caps);
                return answer(accepts_sse(headers), None, move |out| async move {
                    let caller = aggregate.stateless_in(None, &principal, &caps, &base, &out);
                    let id = sent.id().clone();
                    Answered::of(id, caller.passed(sent).await)
                })
                .await;
            }
            Err(call) => call,
        },
    };
    let base = sign_in_base(origin, &caps);
    answer(accepts_sse(headers), None, move |out| async move {
        let caller = aggregate.stateless_in(scope.as_ref(), &principal, &caps, &base, &out);
        let (method, id) = (call.method(), call.id().clone());
        let answer = caller.call(method, Params::Text(call), &id).await;
        Answered::of(id, answer)
    })
    .await
}

/// The gateway's URL for sign-in links: only a client that takes them (URL-mode elicitation in
/// `caps`) needs it.
fn sign_in_base(origin: &ClientOrigin, caps: &Value) -> String {
    match meta::url_elicitation(caps) {
        true => origin.0.clone(),
        false => String::new(),
    }
}

/// Why a modern message cannot be served, as `(code, message)`: no `MCP-Protocol-Version`
/// header (`-32020`), a request without the required `_meta` (`-32602`), or headers that do
/// not mirror the body (`-32020`).
fn malformed(h: &HeaderMap, message: &Value, request: bool) -> Result<(), (i64, String)> {
    let Some(header) = h.get(headers::names::PROTOCOL_VERSION) else {
        let why = "a 2026-07-28 request needs the MCP-Protocol-Version header";
        return Err((codes::HEADER_MISMATCH, why.into()));
    };
    if request && message["method"].is_string() {
        meta::check_required(message).map_err(|why| (codes::INVALID_PARAMS, why))?;
    }
    let declared = meta::declared_version(message).map(str::as_bytes);
    if Some(header.as_bytes()) != declared {
        let why = "the MCP-Protocol-Version header and the request's _meta protocolVersion must both be present and equal";
        return Err((codes::HEADER_MISMATCH, why.into()));
    }
    headers::check_standard(message, |name| h.get(name).map(|v| v.as_bytes()))
        .map_err(|why| (codes::HEADER_MISMATCH, why))
}

/// `subscriptions/listen`: the list changes of every upstream (and of the broker's own view of
/// them), and the updates of the resources it names that a server accepted, on one stream,
/// acknowledged first, until the client closes it (which ends its resource subscriptions).
async fn listen(
    aggregate: &Aggregate,
    (principal, scope): (&Principal, Option<&ServerName>),
    caps: &Value,
    base: &str,
    id: Value,
    params: &Value,
) -> Response {
    let filter = &params["notifications"];
    let (sink, own) = broadcast::channel(32);
    // Notices met while finding the resources' servers have no stream to go to yet.
    let (out, _) = mpsc::channel(1);
    let caller = aggregate.stateless_in(scope, principal, caps, base, &out);
    let watching = caller.watch_all(&modern::resource_uris(filter), sink).await;
    let watched = watching.uris();
    let methods = modern::honoured(filter, &watched);
    let ack = modern::acknowledged(&id, filter, &watched);
    fan_in(Some(ack), Some(own), aggregate.changes(), move |note| {
        let _ends_with_the_stream = &watching;
        modern::on_listen(&id, &methods, &note)
    })
}
