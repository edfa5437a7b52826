use super::*;
use crate::config::RawServer;

fn form(json: serde_json::Value) -> ServerForm {
    serde_json::from_value(json).unwrap()
}

#[test]
fn typed_secrets_become_keychain_references_and_never_reach_the_config() {
    let f = form(serde_json::json!({
        "name": "acme", "url": "https://mcp.acme.test/mcp", "auth_type": "oauth2",
        "oauth_flow": "client_credentials", "client_id": "cid", "client_secret": "s3cr3t-value"
    }));
    assert!(
        !format!("{f:?}").contains("s3cr3t"),
        "the form's Debug must not show the secret"
    );
    let mut raw = RawServer::default();
    let pending = apply_form(&f, &mut raw);
    assert_eq!(
        raw.client_secret.as_deref(),
        Some("keychain:config/acme/client_secret")
    );
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].entry, "config/acme/client_secret");
    assert_eq!(pending[0].value.expose(), "s3cr3t-value");
    assert!(!serde_json::to_string(&raw).unwrap().contains("s3cr3t"));
}

#[test]
fn an_empty_secret_keeps_the_stored_one_and_references_pass_through() {
    let mut raw = RawServer {
        client_secret: Some("keychain:config/acme/client_secret".into()),
        ..Default::default()
    };
    raw.unknown
        .insert("x_note".into(), serde_json::json!("kept"));
    let pending = apply_form(
        &form(
            serde_json::json!({"name": "acme", "url": "https://a.test/mcp", "client_secret": "  "}),
        ),
        &mut raw,
    );
    assert!(pending.is_empty());
    assert_eq!(
        raw.client_secret.as_deref(),
        Some("keychain:config/acme/client_secret")
    );
    assert_eq!(
        raw.unknown["x_note"], "kept",
        "unknown fields survive an edit"
    );
    let pending = apply_form(
        &form(
            serde_json::json!({"name": "acme", "url": "https://a.test/mcp", "auth_value": "os.environ/ACME_KEY", "auth_type": "bearer_token"}),
        ),
        &mut raw,
    );
    assert!(pending.is_empty());
    assert_eq!(raw.auth_value.as_deref(), Some("os.environ/ACME_KEY"));
}

#[test]
fn blank_fields_are_removed_and_none_auth_is_the_default() {
    let mut raw = RawServer {
        client_id: Some("old".into()),
        auth_type: Some("oauth2".into()),
        ..Default::default()
    };
    apply_form(
        &form(
            serde_json::json!({"name": "a", "url": " https://a.test/mcp ", "auth_type": "none", "client_id": ""}),
        ),
        &mut raw,
    );
    assert_eq!(raw.url.as_deref(), Some("https://a.test/mcp"));
    assert_eq!(raw.auth_type, None);
    assert_eq!(raw.client_id, None);
}

#[test]
fn the_audience_round_trips_through_the_form_and_a_blank_one_is_removed() {
    let mut raw = RawServer::default();
    apply_form(
        &form(
            serde_json::json!({"name": "a", "url": "https://a.test/mcp", "audience": " https://api.a.test "}),
        ),
        &mut raw,
    );
    assert_eq!(raw.audience.as_deref(), Some("https://api.a.test"));
    assert_eq!(
        ServerFormView::from_raw(&raw).audience,
        "https://api.a.test"
    );
    apply_form(
        &form(serde_json::json!({"name": "a", "url": "https://a.test/mcp", "audience": ""})),
        &mut raw,
    );
    assert_eq!(raw.audience, None);
}

#[test]
fn local_clients_list_oauth_clients_and_api_keys_without_secrets() {
    let clients = vec![ClientInfo {
        client_id: "c1".into(),
        client_name: None,
        redirect_uris: vec!["http://127.0.0.1:5555/callback".into()],
        created_at: 10,
        last_used: Some(20),
        approved_servers: vec!["acme".into()],
    }];
    let keys = vec![ApiKeyInfo {
        id: "k1".into(),
        name: "ci".into(),
        server: None,
        created_at: 30,
        last_used: Some(40),
    }];
    let list = local_clients(clients, keys);
    assert_eq!(list.len(), 2);
    assert_eq!(
        list[0].name,
        "unnamed client (http://127.0.0.1:5555/callback)"
    );
    assert_eq!(
        (list[0].kind.as_str(), list[0].last_used),
        ("oauth", Some(20))
    );
    assert_eq!(list[0].servers, vec!["acme".to_string()]);
    assert_eq!(
        (list[1].kind.as_str(), list[1].servers.clone()),
        ("api_key", vec!["all servers".to_string()])
    );
    assert_eq!(list[1].last_used, Some(40));
}

#[test]
fn the_aggregate_setup_hands_out_the_mcp_url_and_names_unusable_servers() {
    let raw: crate::config::RawConfig = serde_json::from_value(serde_json::json!({"mcp_servers": {
        "gh": {"url": "https://gh.example.com/mcp"}}}))
    .unwrap();
    let config = crate::config::validate(&raw).unwrap().config;
    let mut status = StatusMap::new();
    let mut st = ServerStatus::unknown();
    st.state = HealthState::Unreachable {
        cause: "connection refused".into(),
    };
    status.insert(crate::config::ServerName::parse("gh").unwrap(), st);
    let dto = aggregate_dto(&config, &status, "http://127.0.0.1:47823/mcp").unwrap();
    assert_eq!(dto.label, "All servers (/mcp) — 0 of 1 usable");
    assert_eq!(
        dto.unusable,
        vec!["gh: unreachable: connection refused".to_string()]
    );
    assert_eq!(dto.snippets.url, "http://127.0.0.1:47823/mcp");
    assert!(
        dto.snippets
            .claude
            .contains("mcp-auth-broker http://127.0.0.1:47823/mcp"),
        "{}",
        dto.snippets.claude
    );
    let none = crate::config::validate(&crate::config::RawConfig::default())
        .unwrap()
        .config;
    assert!(aggregate_dto(&none, &StatusMap::new(), "x").is_none());
}

#[test]
fn a_server_row_shows_the_era_and_version_of_a_healthy_server_only() {
    let raw: crate::config::RawConfig = serde_json::from_value(serde_json::json!({"mcp_servers": {
        "new": {"url": "https://new.example.com/mcp"}}}))
    .unwrap();
    let config = crate::config::validate(&raw).unwrap().config;
    let server = config.server("new").unwrap();
    let mut st = ServerStatus::unknown();
    st.state = HealthState::Healthy {
        latency_ms: 7,
        tools: 2,
        era: crate::protocol::Era::Modern,
        protocol_version: "2026-07-28".into(),
    };
    let row = server_dto(server, Some(&st), "http://127.0.0.1:1/new/mcp".into());
    assert_eq!(row.era.as_deref(), Some("modern"));
    assert_eq!(row.protocol_version.as_deref(), Some("2026-07-28"));
    assert_eq!(row.protocol.as_deref(), Some("MCP 2026-07-28 (modern)"));
    let v = serde_json::to_value(&row).unwrap();
    assert_eq!(v["protocol"], "MCP 2026-07-28 (modern)");
    st.state = HealthState::Unreachable {
        cause: "connection refused".into(),
    };
    let row = server_dto(server, Some(&st), "http://127.0.0.1:1/new/mcp".into());
    assert_eq!((row.era, row.protocol), (None, None));
}

#[test]
fn a_server_row_offers_a_device_sign_in_only_when_its_evidence_says_device_flow() {
    use crate::upstream::classify::DEVICE_FLOW;
    let raw: crate::config::RawConfig = serde_json::from_value(serde_json::json!({"mcp_servers": {
        "dev": {"url": "https://dev.example.com/mcp"}}}))
    .unwrap();
    let config = crate::config::validate(&raw).unwrap().config;
    let server = config.server("dev").unwrap();
    let mut st = ServerStatus::unknown();
    let row = server_dto(server, Some(&st), "http://127.0.0.1:1/dev/mcp".into());
    assert!(!row.device_flow && row.device_sign_in.is_none());
    st.flow = Some(crate::upstream::Classification {
        flow: Some(crate::upstream::Flow::AuthorizationCode),
        evidence: vec![DEVICE_FLOW.into()],
        choices: vec![],
    });
    let row = server_dto(server, Some(&st), "http://127.0.0.1:1/dev/mcp".into());
    assert!(row.device_flow);
}

#[test]
fn a_server_row_says_what_is_wrong_in_one_sentence_with_the_raw_cause_as_details() {
    let raw: crate::config::RawConfig = serde_json::from_value(serde_json::json!({"mcp_servers": {
        "down": {"url": "https://down.example.com/mcp", "oauth_flow": "authorization_code"}}}))
    .unwrap();
    let config = crate::config::validate(&raw).unwrap().config;
    let server = config.server("down").unwrap();
    let cause = "error sending request for url (https://down.example.com/mcp): client error (Connect): tcp connect error: Connection refused (os error 111)";
    let mut st = ServerStatus {
        state: HealthState::Unreachable {
            cause: cause.into(),
        },
        ..ServerStatus::unknown()
    };
    let row = server_dto(server, Some(&st), "http://127.0.0.1:1/down/mcp".into());
    assert_eq!(row.flow, "Browser sign-in");
    assert!(
        row.flow_term.contains("authorization_code"),
        "{}",
        row.flow_term
    );
    let v = serde_json::to_value(&row).unwrap();
    assert_eq!(v["problem"]["summary"], "The server refused the connection");
    assert!(v["problem"]["action"]
        .as_str()
        .unwrap()
        .starts_with("check that it is running"));
    assert_eq!(v["problem"]["details"], cause);
    assert_eq!(row.sign_in_label, "Sign in");
    st.state = HealthState::Checking;
    st.token.needs_scope = Some("repo".into());
    let row = server_dto(server, Some(&st), "http://127.0.0.1:1/down/mcp".into());
    assert_eq!(row.sign_in_label, "Grant more permissions");
    assert_eq!(
        row.problem.unwrap().kind,
        crate::words::ProblemKind::NeedsScope
    );
}
