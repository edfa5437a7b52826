//! Config: LiteLLM-style entries validate; every invalid field gives an error naming the server,
//! the field and the fix; secrets are references, never literals.

use std::path::Path;

use mcp_auth_broker::config::file::{parse, ConfigFileError};
use mcp_auth_broker::config::{validate, AuthType, HeaderValue, OAuthFlow, RawConfig, Transport};
use mcp_auth_broker::secret::{Secret, SecretRef};
use mcp_auth_broker::vault::{Vault, VaultError};

fn raw(json: &str) -> RawConfig {
    parse(Path::new("test.json"), json).expect("test JSON parses")
}

/// Validates `json` and returns the single error's text.
fn one_error(json: &str) -> String {
    let errors = validate(&raw(json)).expect_err("config should be rejected");
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    errors[0].to_string()
}

#[test]
fn litellm_style_entries_validate_into_typed_config() {
    let v = validate(&raw(r#"{
      "mcp_servers": {
        "github": {"url": "https://api.githubcopilot.com/mcp", "transport": "http", "auth_type": "oauth2",
                   "client_id": "Iv1.abc", "client_secret": "os.environ/GITHUB_CLIENT_SECRET", "scopes": ["repo", "read:user"]},
        "m2m": {"url": "https://mcp.example.com/mcp", "auth_type": "oauth2", "oauth_flow": "client_credentials",
                "client_id": "svc", "client_secret": "keychain:config/m2m/client_secret", "token_url": "https://auth.example.com/oauth/token",
                "audience": " https://api.example.com "},
        "static": {"url": "http://127.0.0.1:9000/mcp", "auth_type": "bearer_token", "auth_value": "os.environ/TOKEN",
                   "headers": {"X-Tenant": "acme", "X-Api-Key": "os.environ/KEY"}},
        "legacy": {"url": "https://old.example.com/sse", "transport": "sse"},
        "open": {"url": "https://open.example.com/mcp", "scopes": "a b"}
      },
      "port": 47900
    }"#))
    .expect("valid config");
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    let c = &v.config;
    assert_eq!(c.port, Some(47900));
    let gh = c.server("github").unwrap();
    assert_eq!(gh.auth_type, AuthType::OAuth2);
    assert_eq!(gh.oauth_flow, None);
    assert_eq!(gh.client_id.as_deref(), Some("Iv1.abc"));
    assert_eq!(
        gh.client_secret,
        Some(SecretRef::Env("GITHUB_CLIENT_SECRET".into()))
    );
    assert_eq!(gh.token_url, None);
    assert_eq!(gh.scopes, vec!["repo", "read:user"]);
    assert!(gh.send_resource && gh.enabled && !gh.delegate_auth_to_upstream);
    let m2m = c.server("m2m").unwrap();
    assert_eq!(m2m.oauth_flow, Some(OAuthFlow::ClientCredentials));
    assert_eq!(
        m2m.token_url.as_ref().map(|u| u.as_str()),
        Some("https://auth.example.com/oauth/token")
    );
    assert_eq!(m2m.audience.as_deref(), Some("https://api.example.com"));
    assert_eq!(gh.audience, None);
    let st = c.server("static").unwrap();
    assert_eq!(st.auth_type, AuthType::BearerToken);
    assert_eq!(
        st.headers.get("X-Tenant"),
        Some(&HeaderValue::Literal("acme".into()))
    );
    assert_eq!(
        st.headers.get("X-Api-Key"),
        Some(&HeaderValue::Secret(SecretRef::Env("KEY".into())))
    );
    assert_eq!(c.server("legacy").unwrap().transport, Transport::Sse);
    assert_eq!(c.server("open").unwrap().scopes, vec!["a", "b"]);
}

#[test]
fn each_invalid_field_is_named_with_its_fix() {
    let cases: &[(&str, &[&str])] = &[
        (
            r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "audience": "  "}}}"#,
            &[
                "field \"audience\"",
                "is not an audience",
                "fix: give the API identifier",
            ],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "auth_type": "bearer_token", "auth_value": "os.environ/T", "audience": "https://api.example.com"}}}"#,
            &[
                "field \"audience\"",
                "runs no OAuth",
                "fix: remove \"audience\"",
            ],
        ),
        (
            r#"{"mcp_servers": {"Bad Name": {"url": "https://x.example/mcp"}}}"#,
            &[
                "server \"Bad Name\"",
                "field \"name\"",
                "lowercase",
                "fix: rename",
            ],
        ),
        (
            r#"{"mcp_servers": {"mcp": {"url": "https://x.example/mcp"}}}"#,
            &["field \"name\"", "reserved"],
        ),
        (
            r#"{"mcp_servers": {"signin": {"url": "https://x.example/mcp"}}}"#,
            &["field \"name\"", "reserved", "/signin/"],
        ),
        (
            r#"{"mcp_servers": {"a": {}}}"#,
            &[
                "server \"a\"",
                "field \"url\"",
                "is missing",
                "fix: add the upstream MCP endpoint",
            ],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "ftp://x.example/mcp"}}}"#,
            &[
                "field \"url\"",
                "scheme 'ftp'",
                "fix: use an absolute https URL",
            ],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "http://x.example/mcp"}}}"#,
            &["field \"url\"", "plain http", "127.0.0.1"],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "https://u:p@x.example/mcp"}}}"#,
            &["field \"url\"", "user name or password"],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "transport": "ws"}}}"#,
            &["field \"transport\"", "\"ws\"", "fix: use \"http\""],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "auth_type": "saml"}}}"#,
            &["field \"auth_type\"", "\"saml\"", "\"oauth2\""],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "auth_type": "oauth2", "oauth_flow": "implicit"}}}"#,
            &["field \"oauth_flow\"", "\"implicit\"", "authorization_code"],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "auth_type": "oauth2", "client_id": "c", "client_secret": "hunter2"}}}"#,
            &[
                "field \"client_secret\"",
                "literal secret",
                "os.environ/VAR",
                "keychain:config/a/client_secret",
            ],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "auth_type": "bearer_token"}}}"#,
            &["field \"auth_value\"", "is missing"],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "auth_type": "oauth2", "oauth_flow": "client_credentials", "client_secret": "os.environ/S", "token_url": "https://x.example/t"}}}"#,
            &[
                "field \"client_id\"",
                "required for the client_credentials flow",
            ],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "auth_type": "oauth2", "token_url": "javascript:alert(1)"}}}"#,
            &["field \"token_url\"", "scheme 'javascript'"],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "scopes": 5}}}"#,
            &["field \"scopes\"", "neither a list nor a string"],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "headers": {"Authorization": "Bearer abc"}}}}"#,
            &["field \"headers.Authorization\"", "literal credential"],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "headers": {"Host": "x"}}}}"#,
            &["field \"headers\"", "managed by the broker"],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "auth_type": "oauth2", "client_id_metadata_url": "https://x.example/"}}}"#,
            &["field \"client_id_metadata_url\"", "https URL with a path"],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "delegate_auth_to_upstream": true, "auth_value": "os.environ/T"}}}"#,
            &[
                "field \"delegate_auth_to_upstream\"",
                "broker-held credentials",
            ],
        ),
        (
            r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "delegate_auth_to_upstream": true, "headers": {"X-Key": "keychain:k"}}}}"#,
            &[
                "field \"delegate_auth_to_upstream\"",
                "secret-valued headers",
            ],
        ),
        (r#"{"port": 0}"#, &["field \"port\"", "from 1024 to 65535"]),
        (
            r#"{"health_interval_secs": 1}"#,
            &["field \"health_interval_secs\"", "5 to 86400"],
        ),
    ];
    for (json, needles) in cases {
        let text = one_error(json);
        for needle in *needles {
            assert!(
                text.contains(needle),
                "error for {json}\n  was: {text}\n  missing: {needle}"
            );
        }
        assert!(
            !text.contains("hunter2"),
            "an error echoed a secret: {text}"
        );
    }
}

#[test]
fn every_error_in_a_file_is_reported_not_just_the_first() {
    let errors = validate(&raw(
        r#"{"mcp_servers": {"a": {}, "b": {"url": "ftp://x"}}, "port": 0}"#,
    ))
    .unwrap_err();
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

#[test]
fn unknown_fields_are_reported_as_warnings_and_kept_for_rewrites() {
    let r = raw(
        r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "timeout": 5}}, "theme": "dark"}"#,
    );
    let v = validate(&r).unwrap();
    assert_eq!(v.warnings.len(), 2, "{:?}", v.warnings);
    assert!(v
        .warnings
        .iter()
        .any(|w| w.contains("server \"a\"") && w.contains("\"timeout\"")));
    assert!(v.warnings.iter().any(|w| w.contains("\"theme\"")));
    let again = serde_json::to_string(&r).unwrap();
    assert!(
        again.contains("\"timeout\"") && again.contains("\"theme\""),
        "{again}"
    );
}

#[test]
fn json_syntax_errors_name_the_file_line_and_column() {
    let err = parse(Path::new("/tmp/cfg.json"), "{\n  \"mcp_servers\": {,}\n}").unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, ConfigFileError::Syntax { line: 2, .. }),
        "{text}"
    );
    assert!(
        text.contains("/tmp/cfg.json") && text.contains("line 2"),
        "{text}"
    );
}

#[tokio::test]
async fn secret_references_resolve_from_the_environment_and_the_keychain() {
    let vault = Vault::in_memory();
    std::env::set_var("MCP_BROKER_TEST_SECRET_7731", "from-env");
    let env = vault
        .resolve(&SecretRef::Env("MCP_BROKER_TEST_SECRET_7731".into()))
        .await
        .unwrap();
    assert_eq!(env.expose(), "from-env");
    vault
        .set("config/a/client_secret", Secret::new("from-keychain"))
        .await
        .unwrap();
    let kc = vault
        .resolve(&SecretRef::keychain_for("a", "client_secret"))
        .await
        .unwrap();
    assert_eq!(kc.expose(), "from-keychain");
    let missing = vault
        .resolve(&SecretRef::Env("MCP_BROKER_TEST_UNSET_7731".into()))
        .await
        .unwrap_err();
    assert!(matches!(missing, VaultError::MissingEnv(_)));
    assert!(
        missing
            .to_string()
            .contains("MCP_BROKER_TEST_UNSET_7731 is not set"),
        "{missing}"
    );
    let missing = vault
        .resolve(&SecretRef::Keychain("config/zz/client_secret".into()))
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("does not exist"), "{missing}");
}

#[test]
fn tool_lists_allow_only_listed_tools_and_deny_wins() {
    let v = validate(&raw(r#"{"mcp_servers": {
        "both": {"url": "https://a.example.com/mcp", "allowed_tools": ["read", "write"], "disallowed_tools": ["write"]},
        "deny": {"url": "https://b.example.com/mcp", "disallowed_tools": ["delete_repo"]},
        "open": {"url": "https://c.example.com/mcp"}
    }}"#))
    .expect("valid config");
    let both = v.config.server("both").unwrap();
    assert!(both.filters_tools());
    assert!(both.permits_tool("read"));
    assert!(!both.permits_tool("write"), "deny wins over allow");
    assert!(!both.permits_tool("other"), "not on the allow-list");
    let deny = v.config.server("deny").unwrap();
    assert!(deny.permits_tool("read") && !deny.permits_tool("delete_repo"));
    let open = v.config.server("open").unwrap();
    assert!(!open.filters_tools() && open.permits_tool("anything"));
}

#[test]
fn an_empty_allow_list_is_refused_with_the_fix() {
    let e = one_error(
        r#"{"mcp_servers": {"x": {"url": "https://a.example.com/mcp", "allowed_tools": []}}}"#,
    );
    assert!(
        e.contains("x") && e.contains("allowed_tools") && e.contains("remove allowed_tools"),
        "{e}"
    );
}
