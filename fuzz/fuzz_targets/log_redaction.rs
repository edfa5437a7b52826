//! The log redaction filter: never panics, and never lets a Bearer credential through.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::logging::redact;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let line = format!("{text} Authorization: Bearer fuzzsecret123 {text}");
    let out = redact(&line);
    assert!(!out.contains("fuzzsecret123"), "leaked: {out}");
});
