//! `WWW-Authenticate` headers from upstream servers: any bytes, one or several header values.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::upstream::wwwauth;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // A NUL splits the input into several header values.
    let challenges = wwwauth::parse(text.split('\0'));
    let _ = wwwauth::bearer_info(&challenges);
    for c in &challenges {
        let _ = c.param("resource_metadata");
        let _ = c.param("scope");
    }
});
