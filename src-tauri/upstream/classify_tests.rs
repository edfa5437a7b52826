use super::*;
use crate::config::{validate, RawConfig};

fn server(extra: serde_json::Value) -> ServerConfig {
    let mut entry = serde_json::json!({ "url": "https://mcp.example.com/mcp" });
    entry
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let raw: RawConfig =
        serde_json::from_value(serde_json::json!({ "mcp_servers": { "s": entry } })).unwrap();
    let v = validate(&raw).unwrap_or_else(|e| panic!("test config invalid: {e:?}"));
    v.config.servers.into_values().next().unwrap()
}

fn probed_401(token_url: bool, grants: Option<&[&str]>) -> Evidence {
    Evidence {
        probe_status: Some(401),
        challenge: true,
        prm: true,
        as_metadata: true,
        discovered_token_url: token_url,
        grant_types: grants.map(|g| g.iter().map(|s| s.to_string()).collect()),
        ..Evidence::default()
    }
}

fn open_200() -> Evidence {
    Evidence {
        probe_status: Some(200),
        ..Evidence::default()
    }
}

const SECRET: &str = "os.environ/S";

type Row = (
    &'static str,
    serde_json::Value,
    Option<Evidence>,
    Option<Flow>,
    Vec<Flow>,
);

/// One row per rule: (what the rule says, config, evidence, expected flow or None = ask, expected choices).
#[test]
fn classification_follows_one_rule_per_row() {
    use Flow::{AuthorizationCode, ClientCredentials, Delegate, Static};
    let rows: Vec<Row> = vec![
        ("delegate wins over everything", serde_json::json!({"delegate_auth_to_upstream": true}), Some(probed_401(true, None)), Some(Delegate), vec![]),
        ("bearer_token is static", serde_json::json!({"auth_type": "bearer_token", "auth_value": SECRET}), Some(probed_401(true, None)), Some(Static), vec![]),
        ("api_key is static", serde_json::json!({"auth_type": "api_key", "auth_value": SECRET}), None, Some(Static), vec![]),
        (
            "explicit authorization_code wins over M2M-looking config",
            serde_json::json!({"auth_type": "oauth2", "oauth_flow": "authorization_code", "client_id": "a", "client_secret": SECRET, "token_url": "https://as.example.com/token"}),
            Some(probed_401(true, Some(&["client_credentials"]))),
            Some(AuthorizationCode),
            vec![],
        ),
        (
            "explicit client_credentials wins even without a configured token_url",
            serde_json::json!({"auth_type": "oauth2", "oauth_flow": "client_credentials", "client_id": "a", "client_secret": SECRET}),
            Some(probed_401(true, Some(&["authorization_code"]))),
            Some(ClientCredentials),
            vec![],
        ),
        (
            "GitHub-style id+secret without token_url is interactive even when discovery finds a token URL",
            serde_json::json!({"auth_type": "oauth2", "client_id": "Iv1.abc", "client_secret": SECRET}),
            Some(probed_401(true, Some(&["authorization_code", "client_credentials"]))),
            Some(AuthorizationCode),
            vec![],
        ),
        (
            "id+secret+configured token_url is client_credentials",
            serde_json::json!({"auth_type": "oauth2", "client_id": "a", "client_secret": SECRET, "token_url": "https://as.example.com/token"}),
            None,
            Some(ClientCredentials),
            vec![],
        ),
        (
            "OAuth fields without auth_type still classify from config",
            serde_json::json!({"client_id": "a", "client_secret": SECRET, "token_url": "https://as.example.com/token"}),
            Some(open_200()),
            Some(ClientCredentials),
            vec![],
        ),
        (
            "id+secret+token_url+authorization_url conflicts: ask",
            serde_json::json!({"auth_type": "oauth2", "client_id": "a", "client_secret": SECRET, "token_url": "https://as.example.com/token", "authorization_url": "https://as.example.com/authorize"}),
            None,
            None,
            vec![AuthorizationCode, ClientCredentials],
        ),
        (
            "configured M2M against an AS that does not offer client_credentials: ask",
            serde_json::json!({"auth_type": "oauth2", "client_id": "a", "client_secret": SECRET, "token_url": "https://as.example.com/token"}),
            Some(probed_401(true, Some(&["authorization_code", "refresh_token"]))),
            None,
            vec![ClientCredentials, AuthorizationCode],
        ),
        ("oauth2 with a public client is interactive", serde_json::json!({"auth_type": "oauth2", "client_id": "a"}), None, Some(AuthorizationCode), vec![]),
        ("oauth2 with nothing else is interactive", serde_json::json!({"auth_type": "oauth2"}), Some(open_200()), Some(AuthorizationCode), vec![]),
        ("nothing configured + 401 challenge is interactive", serde_json::json!({}), Some(probed_401(true, Some(&["client_credentials"]))), Some(AuthorizationCode), vec![]),
        ("nothing configured + anonymous 200 is none", serde_json::json!({}), Some(open_200()), Some(Flow::None), vec![]),
        (
            "nothing configured + 403 asks between static and sign-in",
            serde_json::json!({}),
            Some(Evidence { probe_status: Some(403), ..Evidence::default() }),
            None,
            vec![Static, AuthorizationCode],
        ),
        (
            "nothing configured + unreachable is none with the cause",
            serde_json::json!({}),
            Some(Evidence { unreachable: Some("connection failed".into()), ..Evidence::default() }),
            Some(Flow::None),
            vec![],
        ),
        ("nothing configured and not probed is none", serde_json::json!({}), None, Some(Flow::None), vec![]),
    ];
    for (rule, cfg, ev, flow, choices) in rows {
        let c = classify(&server(cfg), ev.as_ref());
        assert_eq!(c.flow, flow, "rule: {rule}; evidence: {:?}", c.evidence);
        assert_eq!(c.choices, choices, "rule: {rule}");
        assert!(!c.evidence.is_empty(), "rule: {rule} gave no evidence");
    }
}

#[test]
fn github_style_config_names_why_it_is_interactive() {
    let c = classify(
        &server(
            serde_json::json!({"auth_type": "oauth2", "client_id": "Iv1.abc", "client_secret": SECRET}),
        ),
        Some(&probed_401(true, None)),
    );
    assert!(
        c.evidence.iter().any(|e| e.contains("no token_url")),
        "{:?}",
        c.evidence
    );
    assert!(
        c.evidence
            .iter()
            .any(|e| e.contains("not for machine-to-machine")),
        "{:?}",
        c.evidence
    );
}

#[test]
fn a_server_error_to_the_anonymous_probe_is_unreachable_with_its_status_not_no_auth() {
    let c = classify(
        &server(serde_json::json!({})),
        Some(&Evidence {
            probe_status: Some(503),
            ..Evidence::default()
        }),
    );
    let text = c.evidence.join(" ");
    assert!(
        text.starts_with("unreachable") && text.contains("503"),
        "{text}"
    );
    assert!(!text.contains("no auth needed"), "{text}");
}

#[test]
fn evidence_says_device_flow_is_available_when_the_metadata_offers_it() {
    let with = Evidence {
        device_flow: true,
        ..probed_401(true, None)
    };
    for config in [
        serde_json::json!({}),
        serde_json::json!({"client_id": "public-app"}),
    ] {
        let c = classify(&server(config.clone()), Some(&with));
        assert_eq!(c.flow, Some(Flow::AuthorizationCode), "{config}");
        assert!(c.evidence.iter().any(|e| e == DEVICE_FLOW), "{c:?}");
        let c = classify(&server(config), Some(&probed_401(true, None)));
        assert!(!c.evidence.iter().any(|e| e.contains("device")), "{c:?}");
    }
}

#[test]
fn an_enterprise_server_is_decided_by_config_and_warned_when_its_as_lists_no_jwt_bearer() {
    let raw: RawConfig = serde_json::from_value(serde_json::json!({
        "enterprise": {"name": "Acme", "issuer": "https://idp.acme.example", "client_id": "b"},
        "mcp_servers": {"s": {"url": "https://mcp.example.com/mcp", "oauth_flow": "enterprise",
                              "client_id": "c"}},
    }))
    .unwrap();
    let s = validate(&raw)
        .unwrap()
        .config
        .servers
        .into_values()
        .next()
        .unwrap();
    let plain = classify(&s, Some(&probed_401(true, Some(&["authorization_code"]))));
    assert_eq!(plain.flow, Some(Flow::Enterprise));
    assert!(
        plain.evidence[0].contains("via Acme"),
        "{:?}",
        plain.evidence
    );
    assert!(plain
        .evidence
        .iter()
        .any(|e| e.contains("without the jwt-bearer grant")));
    let grants = [super::super::enterprise::JWT_BEARER];
    let fine = classify(&s, Some(&probed_401(true, Some(&grants))));
    assert_eq!(fine.evidence.len(), 1, "{:?}", fine.evidence);
}
