use super::*;

fn u(s: &str) -> Url {
    Url::parse(s).unwrap()
}

#[test]
fn prm_candidates_follow_header_then_path_then_root() {
    let got = prm_candidates(
        &u("https://mcp.example.com/public/mcp"),
        Some("https://x.example/prm"),
    );
    assert_eq!(
        got,
        [
            "https://x.example/prm",
            "https://mcp.example.com/.well-known/oauth-protected-resource/public/mcp",
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        ]
    );
    assert_eq!(
        prm_candidates(&u("https://mcp.example.com/"), None),
        ["https://mcp.example.com/.well-known/oauth-protected-resource"]
    );
}

#[test]
fn as_candidates_follow_the_spec_order() {
    assert_eq!(
        as_candidates(&u("https://auth.example.com/tenant1")),
        [
            "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
            "https://auth.example.com/.well-known/openid-configuration/tenant1",
            "https://auth.example.com/tenant1/.well-known/openid-configuration"
        ]
    );
    assert_eq!(
        as_candidates(&u("https://auth.example.com")),
        [
            "https://auth.example.com/.well-known/oauth-authorization-server",
            "https://auth.example.com/.well-known/openid-configuration"
        ]
    );
}

#[test]
fn prm_resource_must_be_the_server_or_a_parent_on_the_same_origin() {
    let server = u("https://mcp.example.com/a/mcp");
    assert!(resource_matches("https://mcp.example.com/a/mcp", &server));
    assert!(resource_matches("https://MCP.example.com/a/mcp/", &server));
    assert!(resource_matches("https://mcp.example.com/", &server));
    assert!(resource_matches("https://mcp.example.com/a", &server));
    assert!(!resource_matches("https://mcp.example.com/a/m", &server));
    assert!(!resource_matches("https://evil.example.com/a/mcp", &server));
    assert!(!resource_matches("http://mcp.example.com/a/mcp", &server));
    assert!(!resource_matches("not a url", &server));
}

#[test]
fn issuers_compare_exactly_except_a_root_slash() {
    assert!(same_issuer(
        "https://as.example.com",
        "https://as.example.com/"
    ));
    assert!(same_issuer(
        "https://as.example.com/t1",
        "https://as.example.com/t1"
    ));
    assert!(!same_issuer(
        "https://as.example.com/t1/",
        "https://as.example.com/t1"
    ));
    assert!(!same_issuer(
        "https://evil.example.com",
        "https://as.example.com"
    ));
}

#[test]
fn canonical_resource_drops_fragment_and_trailing_slash() {
    assert_eq!(
        canonical_resource(&u("HTTPS://Mcp.Example.com/mcp/")),
        "https://mcp.example.com/mcp"
    );
    assert_eq!(
        canonical_resource(&u("https://mcp.example.com/")),
        "https://mcp.example.com"
    );
}
