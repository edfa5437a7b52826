//! The replies of `/mcp`: JSON-RPC answers and refusals as the client gets them, and an
//! upstream's result passed on as the bytes it wrote.

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use crate::aggregate::session::RpcError;
use crate::protocol::raw::Reply;

/// The reply to a dispatched request: a message built as a value, or the bytes written around
/// an upstream's result passed on as the upstream wrote it ([`Reply::Raw`]).
pub(super) enum Answered {
    Value(Value),
    Text(Bytes),
}

impl Answered {
    pub(super) fn of(id: Value, answer: Result<Reply, RpcError>) -> Answered {
        match answer {
            Ok(Reply::Raw(raw)) => Answered::Text(raw.reply(&id)),
            Ok(Reply::Value(v)) => Answered::Value(reply(id, Ok(v))),
            Err(e) => Answered::Value(reply(id, Err(e))),
        }
    }

    /// As a value, for an event stream (rare: only when notifications came first).
    pub(super) fn into_value(self) -> Value {
        match self {
            Answered::Value(v) => v,
            Answered::Text(text) => serde_json::from_slice(&text).unwrap_or(Value::Null),
        }
    }

    pub(super) fn into_response(self) -> Response {
        match self {
            Answered::Value(v) => Json(v).into_response(),
            Answered::Text(text) => {
                // Built directly: no default content type set first only to be replaced.
                let mut response = Response::new(Body::from(text));
                let json = HeaderValue::from_static("application/json");
                response.headers_mut().insert(CONTENT_TYPE, json);
                response
            }
        }
    }
}

pub(super) fn reply(id: Value, answer: Result<Value, RpcError>) -> Value {
    use crate::protocol::envelope;
    match answer {
        Ok(result) => envelope::result(id, result),
        Err(e) => envelope::error(id, e.code, e.message, e.data),
    }
}

pub(super) fn refuse(status: StatusCode, id: Value, e: RpcError) -> Response {
    (status, Json(reply(id, Err(e)))).into_response()
}

/// A string value taken out of a message (checked to be one before), without a copy.
pub(super) fn take_string(value: &mut Value) -> String {
    match value.take() {
        Value::String(s) => s,
        _ => String::new(),
    }
}

pub(super) fn rpc_error(code: i64, message: String) -> RpcError {
    RpcError {
        code,
        message,
        data: None,
    }
}
