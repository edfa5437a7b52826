use serde_json::json;

use super::*;
use crate::config::raw::RawConfig;
use crate::config::validate::{validate_in, ConfigError};
use crate::config::ServerConfig;

fn check(entry: serde_json::Value, env: &[(&str, &str)]) -> Result<ServerConfig, Vec<ConfigError>> {
    let raw: RawConfig = serde_json::from_value(json!({"mcp_servers": {"m": entry}})).unwrap();
    let lookup = |var: &str| {
        env.iter()
            .find(|(k, _)| *k == var)
            .map(|(_, v)| v.to_string())
    };
    validate_in(&raw, &lookup).map(|v| v.config.servers.into_values().next().unwrap())
}

fn fields(errors: Vec<ConfigError>) -> Vec<String> {
    errors.into_iter().map(|e| e.field).collect()
}

fn m2m(extra: serde_json::Value) -> serde_json::Value {
    let mut e = json!({"url": "https://mcp.example.com/mcp", "oauth_flow": "client_credentials", "client_id": "c"});
    e.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    e
}

#[test]
fn private_key_jwt_takes_a_key_file_a_secret_reference_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key.pem");
    std::fs::write(&file, "pem").unwrap();
    let method = json!({"token_endpoint_auth_method": "private_key_jwt"});
    let s = check(m2m(method.clone()), &[]).unwrap();
    assert_eq!(
        s.token_endpoint_auth_method,
        Some(TokenAuthMethod::PrivateKeyJwt)
    );
    assert_eq!(s.private_key, None, "unset: the broker generates one");
    let mut with_file = method.clone();
    with_file["private_key"] = json!(file.to_string_lossy());
    let s = check(m2m(with_file), &[]).unwrap();
    assert_eq!(s.private_key, Some(KeySource::File(file)));
    assert!(s.enabled);
    let mut with_env = method;
    with_env["private_key"] = json!("os.environ/MCP_KEY");
    let s = check(m2m(with_env), &[]).unwrap();
    assert_eq!(
        s.private_key,
        Some(KeySource::Secret(SecretRef::Env("MCP_KEY".into())))
    );
}

#[test]
fn a_literal_key_or_a_relative_path_is_refused_and_a_missing_file_needs_setup() {
    let pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\n-----END PRIVATE KEY-----";
    for bad in [pem, "keys/key.pem"] {
        let e = check(
            m2m(json!({"token_endpoint_auth_method": "private_key_jwt", "private_key": bad})),
            &[],
        )
        .unwrap_err();
        assert_eq!(fields(e.clone()), vec!["private_key"]);
        assert!(!e[0].to_string().contains("MIGHAgEAMBMG"), "{}", e[0]);
    }
    let s = check(m2m(json!({"token_endpoint_auth_method": "private_key_jwt", "private_key": "/nonexistent/key.pem"})), &[]).unwrap();
    assert!(!s.enabled);
    assert!(s.needs_setup.unwrap().contains("/nonexistent/key.pem"));
}

#[test]
fn a_private_key_without_private_key_jwt_is_an_error_naming_the_fix() {
    let e = check(m2m(json!({"private_key": "os.environ/K"})), &[]).unwrap_err();
    assert_eq!(fields(e.clone()), vec!["private_key"]);
    assert!(e[0].fix.contains("\"private_key_jwt\""), "{}", e[0]);
}

fn wif(extra: serde_json::Value) -> serde_json::Value {
    let mut e = json!({"url": "https://mcp.example.com/mcp", "oauth_flow": "jwt_bearer"});
    e.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    e
}

#[test]
fn jwt_bearer_reads_the_workload_token_from_a_file_or_a_variable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "a.b.c").unwrap();
    let s = check(wif(json!({"assertion_file": file.to_string_lossy()})), &[]).unwrap();
    assert_eq!(s.oauth_flow, Some(OAuthFlow::JwtBearer));
    assert_eq!(s.assertion, Some(AssertionSource::File(file)));
    assert!(s.enabled);
    let s = check(
        wif(json!({"assertion_env": "CI_TOKEN"})),
        &[("CI_TOKEN", "a.b.c")],
    )
    .unwrap();
    assert_eq!(s.assertion, Some(AssertionSource::Env("CI_TOKEN".into())));
    assert!(s.enabled);
}

#[test]
fn an_unset_variable_or_a_missing_file_leaves_the_server_needing_setup() {
    let s = check(wif(json!({"assertion_env": "CI_TOKEN"})), &[]).unwrap();
    assert!(!s.enabled);
    assert!(s.needs_setup.unwrap().contains("CI_TOKEN"));
    let s = check(wif(json!({"assertion_file": "/nonexistent/token"})), &[]).unwrap();
    assert!(!s.enabled);
    assert!(s.needs_setup.unwrap().contains("/nonexistent/token"));
}

#[test]
fn jwt_bearer_needs_exactly_one_source_and_sources_need_jwt_bearer() {
    let e = check(wif(json!({})), &[]).unwrap_err();
    assert_eq!(fields(e.clone()), vec!["oauth_flow"]);
    assert!(e[0].fix.contains("assertion_file"));
    let both = wif(json!({"assertion_file": "/t", "assertion_env": "V"}));
    assert_eq!(
        fields(check(both, &[]).unwrap_err()),
        vec!["assertion_file"]
    );
    let stray = m2m(json!({"assertion_env": "V"}));
    assert_eq!(
        fields(check(stray, &[]).unwrap_err()),
        vec!["assertion_env"]
    );
    let relative = wif(json!({"assertion_file": "token"}));
    assert_eq!(
        fields(check(relative, &[]).unwrap_err()),
        vec!["assertion_file"]
    );
}

#[test]
fn a_client_credentials_server_needs_a_client_id_unless_it_registers_itself_with_a_key() {
    let bare = json!({"url": "https://mcp.example.com/mcp", "oauth_flow": "client_credentials"});
    let errors = check(bare.clone(), &[]).unwrap_err();
    assert_eq!(fields(errors.clone()), vec!["client_id"]);
    assert!(
        errors[0].to_string().contains("private_key_jwt"),
        "{:?}",
        errors[0]
    );
    let mut keyed = bare;
    keyed["token_endpoint_auth_method"] = json!("private_key_jwt");
    let s = check(keyed, &[]).unwrap();
    assert_eq!(
        s.client_id, None,
        "the broker registers itself with its key"
    );
}

#[test]
fn assertion_audience_is_an_http_url_and_only_for_private_key_jwt() {
    let keyed = |aud: &str| {
        m2m(json!({"token_endpoint_auth_method": "private_key_jwt", "assertion_audience": aud}))
    };
    let s = check(keyed("https://login.example.com/"), &[]).unwrap();
    assert_eq!(
        s.assertion_audience.as_deref(),
        Some("https://login.example.com/")
    );
    for bad in [
        "login.example.com",
        "ftp://login.example.com",
        "urn:example:aud",
    ] {
        let errors = check(keyed(bad), &[]).unwrap_err();
        assert_eq!(fields(errors.clone()), vec!["assertion_audience"], "{bad}");
        assert!(errors[0].to_string().contains(bad), "{}", errors[0]);
    }
    let errors = check(m2m(json!({"assertion_audience": "https://a.example"})), &[]).unwrap_err();
    assert_eq!(fields(errors.clone()), vec!["assertion_audience"]);
    assert!(
        errors[0].to_string().contains("private_key_jwt"),
        "{}",
        errors[0]
    );
}
