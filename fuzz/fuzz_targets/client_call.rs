//! A local client's `tools/call` / `prompts/get` read shallowly on `/mcp` (`protocol::shallow`):
//! the body is the client's, so anything goes. Oracles: a body the shallow read accepts is one
//! the full parse reads as the same call (an object with that method, a non-null id, params
//! with that string name), and the upstream request it writes equals, value and key order, the
//! one the full route writes from the parsed params, with and without a modern upstream's
//! `_meta`. A 2026-07-28 call read shallowly is one whose `_meta` the full route takes, with
//! the version of its header and the capabilities read; a 2025 one declares no modern version.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::protocol::shallow::TextCall;
use mcp_auth_broker::protocol::{meta, MODERN_VERSION};
use mcp_auth_broker::protocol::write::request_bytes;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Some((call, caps)) = TextCall::read_modern(&body, MODERN_VERSION) {
        let message = same_call(data, call);
        meta::check_required(&message).expect("the full route takes its _meta");
        assert_eq!(meta::declared_version(&message), Some(MODERN_VERSION));
        assert_eq!(&caps, meta::declared_capabilities(&message), "capabilities");
    }
    if let Some(call) = TextCall::read(&body) {
        let message = same_call(data, call);
        assert_eq!(meta::declared_version(&message), None, "a legacy call stays legacy");
    }
});

/// The oracles every shallow read meets (see the module); the parsed message.
fn same_call(data: &[u8], mut call: TextCall) -> Value {
    let message: Value =
        serde_json::from_slice(data).expect("the full parse reads what the shallow one took");
    assert_eq!(message["method"], call.method());
    assert!(
        !message["id"].is_null(),
        "a call with no id is a notification"
    );
    assert_eq!(&message["id"], call.id());
    let mut params = message["params"].clone();
    assert_eq!(params["name"].as_str(), Some(call.name()));
    assert_eq!(call.to_value(), params, "the params as read");
    assert_eq!(
        call.to_value().to_string(),
        params.to_string(),
        "in the client's order"
    );

    // Renamed to the upstream's own name, as the aggregate does.
    let upstream = call
        .name()
        .rsplit("__")
        .next()
        .unwrap_or_default()
        .to_string();
    call.set_name(upstream.clone());
    params["name"] = Value::String(upstream);
    let caps = json!({"elicitation": {"url": {}}});
    for modern in [None, Some(&caps)] {
        let text = call.write(&9.into(), modern);
        let written: Value = serde_json::from_slice(&text).expect("the written request is JSON");
        let want: Value = serde_json::from_slice(&request_bytes(9, call.method(), &params, modern))
            .expect("the full route's request is JSON");
        assert_eq!(written, want, "modern: {}", modern.is_some());
        assert_eq!(written.to_string(), want.to_string(), "key order");
    }
    message
}
