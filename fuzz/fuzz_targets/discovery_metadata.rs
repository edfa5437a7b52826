//! Protected-resource and authorization-server metadata documents, and the URL arithmetic
//! discovery does with what they contain.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::upstream::discovery::{self, AsMetadata, Prm};

fuzz_target!(|data: &[u8]| {
    let server = url::Url::parse("https://mcp.example.com/tenant/mcp").unwrap();
    if let Ok(prm) = serde_json::from_slice::<Prm>(data) {
        if let Some(resource) = &prm.resource {
            let _ = discovery::resource_matches(resource, &server);
        }
        for issuer in &prm.authorization_servers {
            if let Ok(u) = url::Url::parse(issuer) {
                let _ = discovery::as_candidates(&u);
                let _ = discovery::same_issuer(issuer, u.as_str());
            }
        }
    }
    let _ = serde_json::from_slice::<AsMetadata>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = discovery::prm_candidates(&server, Some(text));
        if let Ok(u) = url::Url::parse(text) {
            let _ = discovery::canonical_resource(&u);
            let _ = discovery::prm_candidates(&u, None);
        }
    }
});
