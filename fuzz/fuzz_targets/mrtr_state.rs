//! MRTR as the broker meets it: `input_required` results from upstreams, retries carrying
//! `inputResponses` and a `requestState`, and the broker's own HMAC-wrapped state, which comes
//! back from clients and is therefore attacker-controlled. Oracles: a state the broker did not
//! wrap is never accepted; a wrapped one opens for its principal only, with what was put in.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::protocol::mrtr;
use serde_json::Value;

const KEY: &[u8] = b"fuzz-key-0123456789";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Any state from a client: only an exact wrapping by this key opens.
    if let Ok(w) = mrtr::unwrap(KEY, "p", &text) {
        assert_eq!(
            mrtr::wrap(KEY, "p", &w),
            text,
            "only the broker's own states open"
        );
    }
    // Round trip of arbitrary contents.
    let half = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(text.len(), |(i, _)| i);
    let (server, inner) = text.split_at(half);
    let w = mrtr::Wrapped {
        server: server.to_string(),
        inner: Some(inner.to_string()),
    };
    let s = mrtr::wrap(KEY, "p", &w);
    assert_eq!(mrtr::unwrap(KEY, "p", &s), Ok(w));
    assert_eq!(
        mrtr::unwrap(KEY, "q", &s),
        Err(mrtr::StateError::OtherPrincipal)
    );
    // A result or retry params in any JSON.
    if let Ok(mut v) = serde_json::from_slice::<Value>(data) {
        let _ = mrtr::is_input_required(&v);
        let (_responses, _state) = mrtr::take_retry(&mut v);
        assert!(v.get("inputResponses").is_none() || !v.is_object());
    }
});
