//! Routing a resource URI on `/mcp` by the servers' URI templates (remote input on both sides).
//! Input: template, NUL, URI. A score never exceeds the template's literal length, and a
//! template always matches itself when it has no expression.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::aggregate::uris::{template_score, Owners};
use mcp_auth_broker::config::ServerName;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some((template, uri)) = text.split_once('\0') else { return };
    if let Some(score) = template_score(template, uri) {
        assert!(score <= template.len());
    }
    if !template.contains('{') {
        assert_eq!(template_score(template, template), Some(template.len()));
    }
    let mut owners = Owners::default();
    let (a, b) = (ServerName::parse("a").unwrap(), ServerName::parse("b").unwrap());
    owners.templates(&a, [template]);
    owners.templates(&b, [uri]);
    let _ = owners.owner(uri, |_| true);
    let _ = owners.owner(template, |s| s == &a);
    owners.resources(&a, [uri]);
    owners.resources(&b, [uri]);
    assert!(owners.owner(uri, |_| true).is_err(), "one URI two servers list is refused");
});
