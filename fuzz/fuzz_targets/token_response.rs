//! Token-endpoint answers: any body, including odd `expires_in` values.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::upstream::tokens::{self, ExpiresIn, UpTokenResponse};

fuzz_target!(|data: &[u8]| {
    if let Ok(resp) = serde_json::from_slice::<UpTokenResponse>(data) {
        let e = resp.expires_in_parsed();
        let _ = tokens::m2m_cache_ttl(e);
        let _ = e.lifetime();
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = tokens::m2m_cache_ttl(ExpiresIn::from_json(v.get("expires_in")));
    }
});
