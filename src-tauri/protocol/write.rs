//! Requests the broker sends as a client, written straight to bytes from the caller's `params`:
//! no envelope or `_meta` object is built and serialized again on the way (every aggregate call
//! takes this path). What is written is the JSON of
//! `envelope::request(id, method, with_modern_meta(params without the caller's protocol _meta))`.

use std::io::Write;
use std::sync::LazyLock;

use serde_json::Value;

use super::era::MODERN_VERSION;
use super::meta::{self, CLIENT_CAPABILITIES, CLIENT_INFO, PROTOCOL_VERSION};

/// A request of `method` with `params` as bytes. The caller's own protocol `_meta`
/// (`io.modelcontextprotocol/*`, [`meta::is_protocol_key`]) stays behind — upstream, the broker is
/// the client — and other `_meta` (a progress token) goes on. With `modern` (the capabilities
/// the broker declares), the broker's modern `_meta` is put in; without it (a legacy session) a
/// `_meta` left empty is left out.
pub fn request_bytes(
    id: u64,
    method: &str,
    params: &Value,
    modern: Option<&Value>,
) -> bytes::Bytes {
    let mut out = Vec::with_capacity(192);
    let _ = write!(out, "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":");
    json(&mut out, method);
    out.extend_from_slice(b",\"params\":");
    match (params, modern) {
        (Value::Object(map), _) => write_params(&mut out, map, modern),
        (_, Some(caps)) => {
            out.extend_from_slice(b"{\"_meta\":{");
            modern_entries(&mut out, caps);
            out.extend_from_slice(b"}}");
        }
        (other, None) => json(&mut out, other),
    }
    out.push(b'}');
    out.into()
}

pub(super) fn json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing to a Vec fails only for a value that cannot be JSON; a `Value` and a `str` can.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Writes `,` before every entry but the first.
pub(super) fn separate(out: &mut Vec<u8>, first: &mut bool) {
    if !std::mem::take(first) {
        out.push(b',');
    }
}

fn write_params(out: &mut Vec<u8>, map: &serde_json::Map<String, Value>, modern: Option<&Value>) {
    out.push(b'{');
    let mut first = true;
    let mut met = false;
    for (key, value) in map {
        if key != "_meta" {
            separate(out, &mut first);
            json(out, key.as_str());
            out.push(b':');
            json(out, value);
            continue;
        }
        met = true;
        let theirs = value.as_object();
        let kept = theirs
            .into_iter()
            .flatten()
            .filter(|(k, _)| !meta::is_protocol_key(k));
        match (theirs, modern) {
            // Not an object: a legacy request carries it as it is; a modern one gets ours.
            (None, None) => {
                separate(out, &mut first);
                out.extend_from_slice(b"\"_meta\":");
                json(out, value);
            }
            (Some(_), None) if kept.clone().next().is_none() => {}
            _ => {
                separate(out, &mut first);
                out.extend_from_slice(b"\"_meta\":{");
                let mut inner = true;
                for (k, v) in kept {
                    separate(out, &mut inner);
                    json(out, k.as_str());
                    out.push(b':');
                    json(out, v);
                }
                if let Some(caps) = modern {
                    separate(out, &mut inner);
                    modern_entries(out, caps);
                }
                out.push(b'}');
            }
        }
    }
    if let (false, Some(caps)) = (met, modern) {
        separate(out, &mut first);
        out.extend_from_slice(b"\"_meta\":{");
        modern_entries(out, caps);
        out.push(b'}');
    }
    out.push(b'}');
}

/// The entries of [`meta::modern_meta`] for `capabilities`, without the braces; all but the
/// capabilities are the same on every request, so they are written once.
pub(super) fn modern_entries(out: &mut Vec<u8>, capabilities: &Value) {
    static HEAD: LazyLock<Vec<u8>> = LazyLock::new(|| {
        let mut h = Vec::new();
        json(&mut h, PROTOCOL_VERSION);
        h.push(b':');
        json(&mut h, MODERN_VERSION);
        h.push(b',');
        json(&mut h, CLIENT_CAPABILITIES);
        h.push(b':');
        h
    });
    static TAIL: LazyLock<Vec<u8>> = LazyLock::new(|| {
        let mut t = vec![b','];
        json(&mut t, CLIENT_INFO);
        t.push(b':');
        json(&mut t, &meta::broker_client_info());
        t
    });
    out.extend_from_slice(&HEAD);
    json(out, capabilities);
    out.extend_from_slice(&TAIL);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::envelope;
    use serde_json::json;

    /// What the bytes must be: the request built as values (the caller's protocol `_meta`
    /// removed, the broker's added), then serialized.
    fn built(id: u64, method: &str, params: &Value, modern: Option<&Value>) -> Value {
        let mut params = params.clone();
        if let Some(m) = params.get_mut("_meta").and_then(Value::as_object_mut) {
            m.retain(|k, _| !meta::is_protocol_key(k));
            if m.is_empty() && modern.is_none() {
                params.as_object_mut().map(|p| p.shift_remove("_meta"));
            }
        }
        if let Some(caps) = modern {
            params = meta::with_modern_meta(params, caps);
        }
        envelope::request(id, method, params)
    }

    #[test]
    fn a_request_written_straight_is_the_request_built_as_values() {
        let caps = json!({"elicitation": {"url": {}}});
        let cases = [
            json!({"name": "t", "arguments": {"q": "é\"\n", "n": 1.5}}),
            json!({"name": "t", "_meta": {"progressToken": 4,
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {"sampling": {}}}, "z": null}),
            json!({"_meta": {"io.modelcontextprotocol/clientInfo": {}}, "name": "t"}),
            json!({"name": "t", "_meta": "not an object"}),
            json!({"name": "t", "_meta": {}}),
            json!({}),
            Value::Null,
            json!([1, 2]),
        ];
        for params in &cases {
            for modern in [None, Some(&caps)] {
                let bytes = request_bytes(7, "tools/call", params, modern);
                let written: Value = serde_json::from_slice(&bytes).unwrap();
                let want = built(7, "tools/call", params, modern);
                assert_eq!(written, want, "{params} modern: {}", modern.is_some());
                // Same keys in the same order, not only equal maps.
                assert_eq!(written.to_string(), want.to_string(), "{params}");
            }
        }
    }
}
