//! RFC 7591 registration requests from local clients, and redirect-URI matching.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::issuer::{redirect, register::RegistrationRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<RegistrationRequest>(data) {
        let _ = req.into_client(0);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let (a, b) = text.split_once('\n').unwrap_or((text, text));
        let _ = redirect::check_registrable(a);
        let _ = redirect::matches(a, b);
        let _ = redirect::display_host(a);
    }
});
