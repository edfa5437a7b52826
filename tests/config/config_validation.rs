//! Config: LiteLLM-style entries validate; every invalid field gives an error naming the server,
//! the field and the fix; secrets are references, never literals.

use crate::support;

use std::path::Path;

use mcp_auth_broker::config::file::{parse, ConfigFileError};
use mcp_auth_broker::config::validate::validate_in;
use mcp_auth_broker::config::{validate, AuthType, HeaderValue, OAuthFlow, RawConfig, Transport};
use mcp_auth_broker::health::HealthState;
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
            r#"{"mcp_servers": {"a": {"url": "https://x.example/mcp", "auth_type": "bearer_token", "auth_value": "os.environ/T", "dpop": true}}}"#,
            &[
                "field \"dpop\"",
                "nothing to bind to a key",
                "fix: remove \"dpop\"",
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

fn yaml(text: &str) -> RawConfig {
    parse(Path::new("config.yaml"), text).expect("test YAML parses")
}

#[test]
fn a_yaml_config_reads_as_the_same_json_would_and_its_errors_name_the_line() {
    let text = "# the broker's config, in YAML\nport: 47900\nmcp_servers:\n  github:\n    url: https://api.githubcopilot.com/mcp\n    auth_type: oauth2\n    client_id: Iv1.abc\n    client_secret: os.environ/GITHUB_CLIENT_SECRET\n    scopes: [repo, \"read:user\"]\n";
    let from_yaml = yaml(text);
    let from_json = raw(
        r#"{"port": 47900, "mcp_servers": {"github": {"url": "https://api.githubcopilot.com/mcp",
        "auth_type": "oauth2", "client_id": "Iv1.abc", "client_secret": "os.environ/GITHUB_CLIENT_SECRET", "scopes": ["repo", "read:user"]}}}"#,
    );
    assert_eq!(from_yaml, from_json);
    assert_eq!(yaml("# nothing yet\n"), RawConfig::default());
    // Any other name is read by its first character.
    assert_eq!(parse(Path::new("broker.conf"), text).unwrap(), from_json);

    let err = parse(
        Path::new("/tmp/c.yaml"),
        "mcp_servers:\n  a:\n    url: [x\n  b: 1\n",
    )
    .unwrap_err();
    let t = err.to_string();
    assert!(
        matches!(err, ConfigFileError::Syntax { line: 4, .. }),
        "{t}"
    );
    assert!(
        t.contains("/tmp/c.yaml is not valid YAML at line 4") && t.contains("indented with spaces"),
        "{t}"
    );
    let t = parse(Path::new("c.yaml"), "mcp_servers:\n  a:\n    url: https://a.example/mcp\n  a:\n    url: https://b.example/mcp\n").unwrap_err().to_string();
    assert!(t.contains("duplicate entry with key \"a\""), "{t}");
    let t = parse(Path::new("c.yaml"), "port: many\n")
        .unwrap_err()
        .to_string();
    assert!(t.contains("port") && t.contains("line 1"), "{t}");
}

#[test]
fn litellm_field_names_are_accepted_as_written_and_litellm_only_fields_are_named_as_ignored() {
    let v = validate(&yaml(
        r#"
mcp_servers:
  m2m:
    url: https://mcp.example.com/mcp
    description: "My custom MCP server"
    auth_type: oauth2
    oauth2_flow: client_credentials
    client_id: svc
    client_secret: os.environ/SVC_SECRET
    token_url: https://auth.example.com/oauth/token
    static_headers:
      X-Tenant: acme
    headers:
      X-Region: eu
    extra_headers: ["X-User"]
  circleci_mcp:
    transport: "stdio"
    command: "npx"
    args: ["-y", "@circleci/mcp-server-circleci"]
"#,
    ))
    .expect("valid config");
    let m2m = v.config.server("m2m").unwrap();
    assert_eq!(m2m.oauth_flow, Some(OAuthFlow::ClientCredentials));
    assert_eq!(
        m2m.headers.get("X-Tenant"),
        Some(&HeaderValue::Literal("acme".into()))
    );
    assert_eq!(
        m2m.headers.get("X-Region"),
        Some(&HeaderValue::Literal("eu".into()))
    );
    assert!(v.config.server("circleci_mcp").is_none());
    let w = v.warnings.join("\n");
    assert!(
        w.contains(
            "server \"m2m\": LiteLLM field \"description\" ignored (a label for LiteLLM's UI)"
        ),
        "{w}"
    );
    assert!(
        w.contains("LiteLLM field \"extra_headers\" ignored")
            && w.contains("the broker sends only the fixed \"headers\""),
        "{w}"
    );
    assert!(
        w.contains("server \"circleci_mcp\" ignored: a stdio server (LiteLLM runs `npx`)"),
        "{w}"
    );
    assert!(
        !w.contains("\"args\""),
        "the ignored stdio entry is not picked apart: {w}"
    );

    let e = one_error(
        r#"{"mcp_servers": {"x": {"url": "https://a.example.com/mcp", "auth_type": "oauth2",
        "oauth_flow": "authorization_code", "oauth2_flow": "client_credentials"}}}"#,
    );
    assert!(
        e.contains("oauth2_flow (LiteLLM's name for it)") && e.contains("keep one"),
        "{e}"
    );
    let e = one_error(
        r#"{"mcp_servers": {"x": {"url": "https://a.example.com/mcp",
        "headers": {"X-Tenant": "a"}, "static_headers": {"X-Tenant": "b"}}}}"#,
    );
    assert!(
        e.contains("static_headers") && e.contains("\"X-Tenant\" is also in \"headers\""),
        "{e}"
    );
}

#[test]
fn a_client_id_from_the_environment_resolves_and_an_unset_one_leaves_only_that_server_needing_setup(
) {
    let r = raw(r#"{"mcp_servers": {
        "set": {"url": "https://a.example.com/mcp", "auth_type": "oauth2", "client_id": "os.environ/SET_ID", "client_secret": "os.environ/S"},
        "unset": {"url": "https://b.example.com/mcp", "auth_type": "oauth2", "client_id": "os.environ/UNSET_ID"},
        "plain": {"url": "https://c.example.com/mcp"}
    }}"#);
    let env = |var: &str| (var == "SET_ID").then(|| "id-from-env".to_string());
    let v = validate_in(&r, &env).expect("an unset variable is not a config error");
    let set = v.config.server("set").unwrap();
    assert_eq!(set.client_id.as_deref(), Some("id-from-env"));
    assert!(set.enabled && set.needs_setup.is_none());
    let unset = v.config.server("unset").unwrap();
    assert!(!unset.enabled);
    assert!(unset
        .needs_setup
        .as_deref()
        .unwrap()
        .contains("client_id names the environment variable UNSET_ID, which is not set"));
    assert!(v.config.server("plain").unwrap().enabled);
    let e = one_error(
        r#"{"mcp_servers": {"x": {"url": "https://a.example.com/mcp", "client_id": "keychain:config/x/id"}}}"#,
    );
    assert!(e.contains("client_id") && e.contains("not a secret"), "{e}");
}

#[test]
fn a_needs_setup_entry_is_kept_out_of_service_with_its_reason_even_when_its_fields_do_not_validate()
{
    let v = validate(&raw(r#"{"mcp_servers": {
        "keyed": {"url": "https://a.example.com/mcp", "auth_type": "api_key", "needs_setup": "auth_value was a literal secret"},
        "obo": {"url": "https://b.example.com/mcp", "auth_type": "oauth2_token_exchange", "needs_setup": "imported from LiteLLM"},
        "ok": {"url": "https://c.example.com/mcp"}
    }}"#))
    .expect("unfinished entries do not stop the file");
    let api = v.config.server("keyed").unwrap();
    assert!(!api.enabled);
    let why = api.needs_setup.as_deref().unwrap();
    assert!(
        why.starts_with("auth_value was a literal secret")
            && why.contains("auth_value: is missing"),
        "{why}"
    );
    let obo = v.config.server("obo").unwrap();
    assert!(obo
        .needs_setup
        .as_deref()
        .unwrap()
        .contains("\"oauth2_token_exchange\" is not an auth type"));
    assert!(v.config.server("ok").unwrap().enabled);
    // Without the mark the same entry is an error, and so is a marked one without a usable URL.
    assert!(validate(&raw(
        r#"{"mcp_servers": {"api": {"url": "https://a.example.com/mcp", "auth_type": "api_key"}}}"#
    ))
    .is_err());
    let e = one_error(
        r#"{"mcp_servers": {"x": {"url": "http://example.com/mcp", "needs_setup": "later"}}}"#,
    );
    assert!(e.contains("url"), "{e}");
}

#[tokio::test]
async fn status_shows_a_needs_setup_server_with_its_reason_and_the_proxy_does_not_serve_it() {
    let broker = support::TestBroker::start_with(
        serde_json::json!({"mcp_servers": {
            "later": {"url": "https://later.example.com/mcp", "needs_setup": "client_secret was a literal secret in the LiteLLM file"}
        }}),
        support::BrokerOptions { background: true, ..Default::default() },
    )
    .await;
    let mut rx = broker.broker.health().subscribe();
    let s = support::health::wait_status(&mut rx, "later", |s| {
        matches!(s.state, HealthState::NeedsSetup { .. })
    })
    .await;
    let HealthState::NeedsSetup { detail } = s.state else {
        unreachable!()
    };
    assert!(
        detail.contains("client_secret was a literal secret"),
        "{detail}"
    );
    let status: serde_json::Value = reqwest::get(format!("{}/api/status", broker.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = status.to_string();
    assert!(
        text.contains("needs_setup") && text.contains("client_secret was a literal secret"),
        "{text}"
    );
    let refused = reqwest::Client::new()
        .post(broker.client_url("later"))
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert!(refused.status().is_client_error(), "{}", refused.status());
}

#[test]
fn token_endpoint_auth_method_is_read_and_a_wrong_one_named_with_the_choices() {
    let v = validate(&raw(
        r#"{"mcp_servers": {"m": {"url": "https://m.example.com/mcp", "auth_type": "oauth2",
            "client_id": "c", "client_secret": "os.environ/X", "token_endpoint_auth_method": "client_secret_post"}}}"#,
    ))
    .unwrap();
    assert_eq!(
        v.config.servers["m"].token_endpoint_auth_method,
        Some(mcp_auth_broker::config::TokenAuthMethod::ClientSecretPost)
    );
    let e = one_error(
        r#"{"mcp_servers": {"m": {"url": "https://m.example.com/mcp", "token_endpoint_auth_method": "tls_client_auth"}}}"#,
    );
    assert!(
        e.contains("token_endpoint_auth_method")
            && e.contains("client_secret_basic")
            && e.contains("private_key_jwt"),
        "{e}"
    );
}

#[test]
fn dpop_is_read_as_always_never_or_when_the_authorization_server_offers_it() {
    let v = validate(&raw(r#"{"mcp_servers": {
        "on": {"url": "https://a.example/mcp", "dpop": true},
        "off": {"url": "https://b.example/mcp", "dpop": false},
        "auto": {"url": "https://c.example/mcp"}
    }}"#))
    .expect("valid config");
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    assert_eq!(v.config.server("on").unwrap().dpop, Some(true));
    assert_eq!(v.config.server("off").unwrap().dpop, Some(false));
    assert_eq!(v.config.server("auto").unwrap().dpop, None);
    let e = one_error(r#"{"mcp_servers": {"a": {"url": "https://a.example/mcp", "dpop": "yes"}}}"#);
    assert!(
        e.contains("field \"dpop\"") && e.contains("not true or false") && e.contains("fix: set"),
        "{e}"
    );
}
