//! JSON-RPC envelopes: what kind a message is, and the answers the broker builds.

use serde_json::{Map, Value};

/// What one JSON-RPC message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Has `method` and a non-null `id`.
    Request,
    /// Has `method`, no `id`.
    Notification,
    /// Has `result` or `error` and an `id`.
    Response,
    /// Anything else (batches included).
    Invalid,
}

pub fn kind(message: &Value) -> Kind {
    let has_id = message.get("id").is_some_and(|id| !id.is_null());
    let has_method = message.get("method").is_some_and(Value::is_string);
    let answers = message.get("result").is_some() || message.get("error").is_some();
    match (has_method, has_id, answers) {
        (true, true, false) => Kind::Request,
        (true, false, false) => Kind::Notification,
        (false, true, true) => Kind::Response,
        _ => Kind::Invalid,
    }
}

/// A JSON object of these entries, each value moved in: `json!` would copy a `Value` it is
/// given (through `to_value`), which on the paths every message takes costs a deep copy.
pub fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    let mut map = Map::with_capacity(N);
    for (key, value) in entries {
        map.insert(key.to_owned(), value);
    }
    Value::Object(map)
}

fn version() -> Value {
    Value::String("2.0".into())
}

/// A message as the bytes of a request body: written straight into a buffer (`to_string`
/// goes through `Display`'s formatter, several times slower).
pub fn to_bytes(message: &Value) -> bytes::Bytes {
    serde_json::to_vec(message)
        .map(Into::into)
        .unwrap_or_default()
}

/// A request message.
pub fn request(id: impl Into<Value>, method: &str, params: Value) -> Value {
    let method = Value::String(method.into());
    object([
        ("jsonrpc", version()),
        ("id", id.into()),
        ("method", method),
        ("params", params),
    ])
}

/// A notification message.
pub fn notification(method: &str, params: Option<Value>) -> Value {
    let method = Value::String(method.into());
    let mut m = object([("jsonrpc", version()), ("method", method)]);
    if let Some(p) = params {
        m["params"] = p;
    }
    m
}

/// A success response.
pub fn result(id: Value, result: Value) -> Value {
    object([("jsonrpc", version()), ("id", id), ("result", result)])
}

/// An error response (`id` null when the request's id is unknown).
pub fn error(id: Value, code: i64, message: impl Into<String>, data: Option<Value>) -> Value {
    let message = Value::String(message.into());
    let mut e = object([("code", code.into()), ("message", message)]);
    if let Some(d) = data {
        e["data"] = d;
    }
    object([("jsonrpc", version()), ("id", id), ("error", e)])
}

/// Whether `message` answers the request with `id` (ids compared as JSON values, so `1` and
/// `"1"` differ, as the protocol says).
pub fn answers(message: &Value, id: &Value) -> bool {
    kind(message) == Kind::Response && message.get("id") == Some(id)
}

/// The answer to `id` among a JSON body's messages (one message or a batch).
pub fn find_answer(body: Value, id: &Value) -> Option<Value> {
    match body {
        Value::Array(items) => items.into_iter().find(|m| answers(m, id)),
        m => answers(&m, id).then_some(m),
    }
}

/// The `resultType` of a 2026-07-28 result (`complete` when absent, as for legacy results).
pub fn result_type(result: &Value) -> &str {
    result
        .get("resultType")
        .and_then(Value::as_str)
        .unwrap_or("complete")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_are_told_apart() {
        assert_eq!(kind(&json!({"id": 1, "method": "a"})), Kind::Request);
        assert_eq!(
            kind(&json!({"id": null, "method": "a"})),
            Kind::Notification
        );
        assert_eq!(kind(&json!({"method": "a"})), Kind::Notification);
        assert_eq!(kind(&json!({"id": 1, "result": {}})), Kind::Response);
        assert_eq!(
            kind(&json!({"id": 1, "method": "a", "result": {}})),
            Kind::Invalid
        );
        assert_eq!(kind(&json!([])), Kind::Invalid);
    }

    #[test]
    fn the_answer_is_found_in_a_batch_by_exact_id() {
        let body = json!([{"id": "1", "result": {}}, {"id": 1, "result": {"x": 1}}]);
        assert_eq!(find_answer(body, &json!(1)).unwrap()["result"]["x"], 1);
        assert!(find_answer(json!({"id": 2, "result": {}}), &json!(1)).is_none());
    }
}
