use serde_json::json;

use super::super::{validate::validate_in, OAuthFlow, RawConfig};

fn run(file: serde_json::Value) -> Result<super::super::Validated, Vec<ConfigError>> {
    let raw: RawConfig = serde_json::from_value(file).unwrap();
    validate_in(&raw, &|var| {
        (var == "IDP_ID").then(|| "from-env".to_string())
    })
}

use super::*;

fn company() -> serde_json::Value {
    json!({"name": "Acme", "issuer": "https://idp.acme.example", "client_id": "broker",
           "client_secret": "os.environ/IDP_SECRET"})
}

fn server() -> serde_json::Value {
    json!({"url": "https://mcp.acme.example/mcp", "oauth_flow": "enterprise", "client_id": "b"})
}

#[test]
fn an_enterprise_server_carries_the_company_block_with_default_scopes() {
    let v = run(json!({"enterprise": company(), "mcp_servers": {"docs": server()}})).unwrap();
    let docs = v.config.server("docs").unwrap();
    assert_eq!(docs.oauth_flow, Some(OAuthFlow::Enterprise));
    let e = docs.enterprise.as_deref().unwrap();
    assert_eq!(e.name, "Acme");
    assert_eq!(e.issuer.as_str(), "https://idp.acme.example/");
    assert_eq!(e.scopes, ["openid", "offline_access"]);
    assert_eq!(e.client_secret, Some(SecretRef::Env("IDP_SECRET".into())));
    assert_eq!(v.config.enterprise.as_deref(), Some(e));
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
}

#[test]
fn an_enterprise_server_without_the_block_is_an_error_naming_the_fix() {
    let errors = run(json!({"mcp_servers": {"docs": server()}})).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].server.as_deref(), Some("docs"));
    assert_eq!(errors[0].field, "oauth_flow");
    assert!(errors[0].fix.contains("\"enterprise\""), "{}", errors[0]);
}

#[test]
fn an_enterprise_server_needs_the_client_id_its_authorization_server_knows() {
    let mut s = server();
    s.as_object_mut().unwrap().remove("client_id");
    let errors = run(json!({"enterprise": company(), "mcp_servers": {"docs": s}})).unwrap_err();
    assert_eq!(errors[0].field, "client_id");
}

#[test]
fn the_block_refuses_a_literal_secret_a_missing_issuer_and_scopes_without_openid() {
    let errors = run(
        json!({"enterprise": {"client_id": "x", "client_secret": "hunter2",
                                           "scopes": ["email"]}}),
    )
    .unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "enterprise.issuer",
            "enterprise.client_secret",
            "enterprise.scopes"
        ]
    );
    assert!(errors.iter().all(|e| e.server.is_none()));
    assert!(!errors.iter().any(|e| e.to_string().contains("hunter2")));
}

#[test]
fn an_unset_client_id_variable_leaves_enterprise_servers_waiting_for_setup() {
    let mut c = company();
    c["client_id"] = json!("os.environ/UNSET_IDP_ID");
    let v = run(json!({"enterprise": c, "mcp_servers": {"docs": server()}})).unwrap();
    let docs = v.config.server("docs").unwrap();
    assert!(!docs.enabled);
    let why = docs.needs_setup.as_deref().unwrap();
    assert!(why.contains("UNSET_IDP_ID"), "{why}");
}

#[test]
fn the_name_defaults_to_the_issuer_host_and_the_client_id_may_come_from_the_environment() {
    let v = run(
        json!({"enterprise": {"issuer": "https://login.acme.example",
                                      "client_id": "os.environ/IDP_ID"}}),
    )
    .unwrap();
    let e = v.config.enterprise.unwrap();
    assert_eq!(e.name, "login.acme.example");
    assert_eq!(e.client_id, "from-env");
    assert_eq!(e.client_secret, None);
}
