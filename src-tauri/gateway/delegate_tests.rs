use url::Url;

use super::*;
use crate::upstream::discovery::Prm;

const PRM: &str = "http://127.0.0.1:47823/.well-known/oauth-protected-resource/gh/mcp";

fn discovery(prm: Option<Prm>) -> Discovery {
    Discovery {
        server_url: Url::parse("https://mcp.example.com/mcp").unwrap(),
        probe_status: Some(401),
        unreachable: None,
        bearer: None,
        prm,
        issuer: None,
        metadata: None,
        legacy_defaults: false,
        resource: "https://mcp.example.com/mcp".into(),
        notes: vec!["no protected resource metadata at https://mcp.example.com/x: HTTP 404".into()],
    }
}

fn prm(servers: &[&str], scopes: Option<&[&str]>) -> Prm {
    Prm {
        resource: Some("https://mcp.example.com/mcp".into()),
        authorization_servers: servers.iter().map(|s| s.to_string()).collect(),
        scopes_supported: scopes.map(|s| s.iter().map(|x| x.to_string()).collect()),
    }
}

#[test]
fn the_challenge_points_at_the_broker_and_keeps_error_scope_and_description() {
    let upstream = r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error="insufficient_scope", scope="repo read:org", error_description="needs repo""#;
    assert_eq!(
        rewrite_challenge(&[upstream], PRM),
        format!("Bearer resource_metadata=\"{PRM}\", error=\"insufficient_scope\", scope=\"repo read:org\", error_description=\"needs repo\"")
    );
}

#[test]
fn the_rewritten_challenge_names_only_the_broker_even_without_an_upstream_challenge() {
    assert_eq!(
        rewrite_challenge(&[], PRM),
        format!("Bearer resource_metadata=\"{PRM}\"")
    );
    let other = rewrite_challenge(&[r#"Basic realm="up", DPoP algs="ES256""#], PRM);
    assert_eq!(other, format!("Bearer resource_metadata=\"{PRM}\""));
}

#[test]
fn quotes_backslashes_and_control_characters_cannot_break_out_of_a_parameter() {
    let upstream =
        r#"Bearer error="invalid_token", error_description="say \"hi\" \\ bye", scope="a""#;
    let out = rewrite_challenge(&[upstream], PRM);
    assert!(
        out.ends_with(r#"error_description="say \"hi\" \\ bye""#),
        "{out}"
    );
    let parsed = wwwauth::bearer_info(&wwwauth::parse([out.as_str()])).unwrap();
    assert_eq!(
        parsed.error_description.as_deref(),
        Some(r#"say "hi" \ bye"#)
    );
    assert_eq!(parsed.resource_metadata.as_deref(), Some(PRM));
    assert_eq!(quoted("a\r\nb\u{7f}é"), "\"ab?\"");
    assert!(HeaderValue::from_str(&rewrite_challenge(
        &["Bearer error_description=\"\u{1}x\u{2028}\""],
        PRM
    ))
    .is_ok());
    assert_eq!(quoted(&"x".repeat(5000)).len(), MAX_PARAM + 2);
}

#[test]
fn the_upstream_prm_authorization_servers_and_scopes_are_republished() {
    let d = discovery(Some(prm(
        &["https://as.example.com", "file:///etc/passwd"],
        Some(&["repo"]),
    )));
    assert_eq!(
        upstream_auth(&d).unwrap(),
        UpstreamAuth {
            authorization_servers: vec!["https://as.example.com".into()],
            scopes_supported: Some(vec!["repo".into()]),
        }
    );
}

#[test]
fn an_older_upstream_without_prm_is_its_own_authorization_server_when_it_serves_metadata() {
    let mut d = discovery(None);
    d.issuer = Some("https://mcp.example.com".into());
    d.metadata = Some(Default::default());
    let auth = upstream_auth(&d).unwrap();
    assert_eq!(auth.authorization_servers, ["https://mcp.example.com"]);
    assert_eq!(auth.scopes_supported, None);
}

#[test]
fn an_upstream_naming_no_authorization_server_is_an_error_saying_what_was_tried() {
    let why = upstream_auth(&discovery(None)).unwrap_err();
    assert!(why.contains("no usable authorization server"), "{why}");
    assert!(why.contains("HTTP 404"), "{why}");
    let mut d = discovery(None);
    d.unreachable = Some("Connection refused".into());
    assert!(upstream_auth(&d)
        .unwrap_err()
        .contains("Connection refused"));
}

#[test]
fn cached_upstream_facts_expire_and_do_not_survive_a_url_change() {
    let cache = PrmCache::default();
    let url = Url::parse("https://mcp.example.com/mcp").unwrap();
    let auth = UpstreamAuth {
        authorization_servers: vec!["https://as.example.com".into()],
        scopes_supported: None,
    };
    cache.put("gh", &url, 1000, auth.clone());
    assert_eq!(cache.get("gh", &url, 1000 + PRM_TTL - 1), Some(auth));
    assert_eq!(cache.get("gh", &url, 1000 + PRM_TTL), None);
    let moved = Url::parse("https://other.example.com/mcp").unwrap();
    assert_eq!(cache.get("gh", &moved, 1001), None);
    assert_eq!(cache.get("other", &url, 1001), None);
}
