//! The aggregate's call path as bytes: an upstream's answer kept as text (`protocol::raw`) and
//! the request written straight from a client's params (`protocol::write`). Upstream bodies
//! are untrusted. Input: one body, any bytes (seeds are JSON-RPC answers).
//!
//! Oracles, against the `Value` route the code takes for anything `raw` declines
//! (`protocol::client` reads the body as lossy UTF-8, parses it whole and finds the answer with
//! `envelope::find_answer`; `aggregate` takes its `result` and, for a modern client, adds
//! `resultType: "complete"` when the result names none):
//! - a body kept as text is one the full parse reads as the answer to the request, with a result
//!   object; `reply(id)` is JSON equal to the full route's reply (same id, same result, same
//!   `resultType`) for either era; `to_value()` is that result; `input_required` agrees with
//!   `protocol::mrtr`;
//! - a plain result in canonical form (the body re-serialised) is kept as text (so the oracle
//!   above is not vacuous);
//! - a body `raw::must_be_read` lets through unread (`/mcp`'s pass-through sends it back as it
//!   is) answers no request with an `input_required` result, as the full route reads it;
//! - `request_bytes(id, method, params, caps)` for the body (and its `params`) as params is JSON
//!   equal to the request built as values (the builder it replaced: the client's
//!   `io.modelcontextprotocol/*` `_meta` removed, `_meta` dropped when nothing is left, the
//!   broker's modern `_meta` added with `meta::with_modern_meta`, then `envelope::request`).
#![no_main]
use axum::body::Bytes;
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::protocol::raw::{self, Answer, RawResult, Reply};
use mcp_auth_broker::protocol::{envelope, meta, mrtr, write};
use serde_json::{json, Value};

/// The ids the broker may have sent (its own are u64; others must be handled just the same; a
/// null id answers no request).
fn request_ids(parsed: Option<&Value>) -> Vec<Value> {
    let mut ids = vec![json!(1), json!("1")];
    if let Some(id) = parsed.and_then(|p| p.get("id")) {
        if !ids.contains(id) && !id.is_null() {
            ids.push(id.clone());
        }
    }
    ids
}

/// The ids a client may have used: the reply carries the client's id, not the upstream's.
fn client_ids() -> [Value; 4] {
    [json!(7), json!("c-1"), json!(-2.5), json!("é\"\\\u{1}")]
}

/// The full route's answer to `id` (`client_read::answer_in`).
fn full_answer(body: &[u8], id: &Value) -> Option<Value> {
    let text = String::from_utf8_lossy(body);
    let body: Value = serde_json::from_str(&text).ok()?;
    envelope::find_answer(body, id)
}

/// A result as a client of this era gets it (`aggregate::calls::Caller::shaped`).
fn shaped(mut result: Value, modern: bool) -> Value {
    if modern && result.get("resultType").is_none() {
        if let Some(map) = result.as_object_mut() {
            map.insert("resultType".into(), json!("complete"));
        }
    }
    result
}

fn check_kept(body: &[u8], id: &Value, raw: &RawResult) {
    let full = full_answer(body, id)
        .unwrap_or_else(|| panic!("kept as text, but the full parse finds no answer to {id}"));
    let result = full
        .get("result")
        .unwrap_or_else(|| panic!("kept as text, but the full route reads an error: {full}"));
    assert!(result.is_object(), "kept a result that is not an object");
    assert_eq!(&raw.to_value(), result, "to_value is the result parsed");
    assert_eq!(
        raw.is_input_required(),
        mrtr::is_input_required(result),
        "input_required as protocol::mrtr reads it"
    );
    assert_eq!(
        Answer::Raw(raw.clone()).asks_for_input(),
        Answer::Value(full.clone()).asks_for_input()
    );
    let as_value = Answer::Raw(raw.clone()).into_value();
    assert_eq!((&as_value["id"], &as_value["result"]), (id, result));
    for modern in [false, true] {
        let mut raw = raw.clone();
        raw.name_type = modern;
        let want = shaped(result.clone(), modern);
        for client in client_ids() {
            let bytes = raw.reply(&client);
            let reply: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "reply is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            assert_eq!(
                reply,
                envelope::result(client.clone(), want.clone()),
                "modern: {modern}"
            );
        }
        assert_eq!(Reply::Raw(raw).into_value(), want, "modern: {modern}");
    }
}

/// Whether `message` is a plain result answering `id` that the text route is for.
fn plain(message: &Value, id: &Value) -> bool {
    let Some(map) = message.as_object() else {
        return false;
    };
    let named = map
        .get("result")
        .and_then(|r| r.get("resultType"))
        .is_none_or(|t| t.is_string() || t.is_null());
    map.get("id") == Some(id)
        && !id.is_null()
        && map.get("result").is_some_and(Value::is_object)
        && !map.contains_key("error")
        && !map.contains_key("method")
        && named
}

/// The request built as values: what `request_bytes` replaced (`aggregate::link::Link::body`
/// with `strip_protocol_meta`).
fn built(id: u64, method: &str, params: &Value, modern: Option<&Value>) -> Value {
    let mut params = params.clone();
    if let Some(m) = params.get_mut("_meta").and_then(Value::as_object_mut) {
        m.retain(|k, _| !k.starts_with("io.modelcontextprotocol/"));
        if m.is_empty() {
            params.as_object_mut().map(|p| p.shift_remove("_meta"));
        }
    }
    if let Some(caps) = modern {
        params = meta::with_modern_meta(params, caps);
    }
    envelope::request(id, method, params)
}

fn check_request(parsed: &Value) {
    let caps = [
        json!({}),
        json!({"elicitation": {"url": {}}, "sampling": {}}),
    ];
    let method = parsed
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("tools/call");
    for params in [Some(parsed), parsed.get("params")].into_iter().flatten() {
        for modern in [None, Some(&caps[0]), Some(&caps[1]), Some(parsed)] {
            for id in [1, u64::MAX] {
                let bytes = write::request_bytes(id, method, params, modern);
                let written: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    panic!(
                        "request is not JSON ({e}): {}",
                        String::from_utf8_lossy(&bytes)
                    )
                });
                assert_eq!(written, built(id, method, params, modern), "{params}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let parsed = serde_json::from_slice::<Value>(data).ok();
    for id in request_ids(parsed.as_ref()) {
        if let Some(raw) = RawResult::read(Bytes::copy_from_slice(data), &id) {
            check_kept(data, &id, &raw);
        }
        // The same answer re-serialised: a plain result must take the text route.
        if let Some(p) = parsed.as_ref().filter(|p| plain(p, &id)) {
            let canonical = Bytes::from(serde_json::to_vec(p).expect("a value serialises"));
            let kept = RawResult::read(canonical.clone(), &id)
                .unwrap_or_else(|| panic!("a plain result was declined: {p}"));
            check_kept(&canonical, &id, &kept);
        }
    }
    if !raw::must_be_read(data) {
        for id in request_ids(parsed.as_ref()) {
            if let Some(result) = full_answer(data, &id).and_then(|a| a.get("result").cloned()) {
                assert!(
                    !mrtr::is_input_required(&result),
                    "passed through unread, but input_required: {result}"
                );
            }
        }
    }
    if let Some(p) = &parsed {
        check_request(p);
    }
});
