//! The modern era's request metadata, as a client or an attacker can send it: header values in
//! plain or Base64 sentinel form, `_meta` in any JSON, tool schemas with `x-mcp-header`
//! annotations, and the 4xx bodies era detection reads. Input: a JSON document (the message or
//! schema), a NUL, then one header value. Oracles: encoding round-trips; a header built from a
//! body always passes the header/body check; a request written straight from params is JSON; an
//! upstream's answer kept as text reaches the client as the result the full parse reads; nothing
//! panics on any input.
#![no_main]
use axum::body::Bytes;
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::protocol::{envelope, era, headers, meta, raw, write};
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let (doc, header) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    // Any header value: decoding never panics, and what decodes re-encodes to a value that
    // decodes to the same text.
    if let Some(text) = headers::decode_value(header) {
        let again = headers::encode_value(&text);
        assert_eq!(
            headers::decode_value(again.as_bytes()).as_deref(),
            Some(text.as_str())
        );
    }
    if let Ok(text) = std::str::from_utf8(header) {
        let encoded = headers::encode_value(text);
        if !text.is_empty() {
            assert_eq!(
                headers::decode_value(encoded.as_bytes()).as_deref(),
                Some(text)
            );
        }
    }
    let _ = era::detect(400, doc);
    let _ = era::detect(404, doc);
    let Ok(value) = serde_json::from_slice::<Value>(doc) else {
        return;
    };
    // As a request: its own standard headers always match it.
    let built = headers::standard(&value);
    let ok = headers::check_standard(&value, |name| {
        built
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_bytes())
    });
    assert!(
        ok.is_ok(),
        "headers built from a body must match it: {ok:?}"
    );
    let _ = headers::check_standard(&value, |_| Some(header));
    let _ = meta::client_era(std::str::from_utf8(header).ok(), Some(&value));
    let _ = meta::with_modern_meta(value["params"].clone(), &json!({}));
    for modern in [None, Some(&json!({"sampling": {}}))] {
        let written = write::request_bytes(1, "tools/call", &value["params"], modern);
        serde_json::from_slice::<Value>(&written).expect("a request written from params is JSON");
    }
    // As an upstream's answer to request 1: a result kept as text is the result the full parse
    // reads, under the client's id.
    if let Some(kept) = raw::RawResult::read(Bytes::copy_from_slice(doc), &json!(1)) {
        let full = envelope::find_answer(value.clone(), &json!(1)).expect("it answers request 1");
        let reply: Value = serde_json::from_slice(&kept.reply(&json!("c"))).expect("JSON");
        assert_eq!(
            (&reply["id"], &reply["result"]),
            (&json!("c"), &full["result"])
        );
    }
    // As a tool schema: annotations are checked, and the headers a call would carry are values
    // a header can hold.
    if headers::valid_annotations(&value).is_ok() {
        let args: Value = serde_json::from_slice(header).unwrap_or(Value::Null);
        for (name, v) in headers::params(&value, &args) {
            assert!(!name.is_empty());
            assert!(v
                .bytes()
                .all(|b| b == b' ' || b == b'\t' || (0x21..=0x7e).contains(&b)));
        }
    }
    let schemas = headers::ToolSchemas::default();
    schemas.learn(&[json!({"name": "t", "inputSchema": value})]);
    let _ = schemas.request_headers(&json!({"method": "tools/call", "params": {"name": "t",
        "arguments": serde_json::from_slice::<Value>(header).unwrap_or(Value::Null),
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}}));
});
