use serde_json::json;

use super::*;

fn entry(v: serde_json::Value) -> RawServer {
    serde_json::from_value(v).unwrap()
}

fn applied(v: serde_json::Value) -> (RawServer, Applied) {
    let mut raw = entry(v);
    let p = Profile::detect(&raw).expect("a profile matches");
    let a = p.apply(&mut raw, 47823);
    (raw, a)
}

#[test]
fn entra_fills_the_tenant_endpoints_turns_resource_off_and_asks_for_default_and_offline_access() {
    let (raw, a) = applied(
        json!({"url": "https://mcp.contoso.example/mcp", "client_id": "app",
        "authorization_url": "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize",
        "audience": "api://mcp-upstream"}),
    );
    assert_eq!(a.profile, Profile::Entra);
    assert_eq!(
        raw.token_url.as_deref(),
        Some("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token")
    );
    assert_eq!(raw.send_resource, Some(false));
    assert_eq!(raw.oauth_flow.as_deref(), Some("authorization_code"));
    assert_eq!(
        raw.scopes,
        Some(json!(["api://mcp-upstream/.default", "offline_access"]))
    );
    assert_eq!(raw.audience, None, "Entra takes the API in the scope");
    assert!(a.todo.is_empty(), "{a:?}");
    assert!(
        a.summary().starts_with(
            "applied profile Entra ID: token_url https://login.microsoftonline.com/contoso"
        ),
        "{}",
        a.summary()
    );
    // Told by name, without a tenant: what only the person knows is asked for.
    let mut raw = entry(json!({"url": "https://mcp.contoso.example/mcp"}));
    let a = Profile::parse("entra").unwrap().apply(&mut raw, 47823);
    assert!(
        a.summary().contains(
            "Still to do: pass --authorization-url https://login.microsoftonline.com/TENANT"
        ),
        "{}",
        a.summary()
    );
    assert!(a.todo.iter().any(|t| t.contains("/.default")));
}

#[test]
fn auth0_and_okta_ask_for_the_audience_and_add_offline_access() {
    let (raw, a) = applied(
        json!({"url": "https://mcp.example.com/mcp", "authorization_url": "https://tenant.eu.auth0.com/authorize", "audience": "https://api.example.com"}),
    );
    assert_eq!(a.profile, Profile::Auth0);
    assert_eq!(raw.scopes, Some(json!(["offline_access"])));
    assert!(a.todo.is_empty());
    let (raw, a) = applied(
        json!({"url": "https://mcp.example.com/mcp", "token_url": "https://acme.okta.com/oauth2/default/v1/token", "oauth_flow": "client_credentials"}),
    );
    assert_eq!(a.profile, Profile::Okta);
    assert_eq!(raw.scopes, None, "no refresh token in client_credentials");
    assert!(a.todo[0].contains("--audience"), "{a:?}");
}

#[test]
fn github_gets_its_fixed_endpoints_and_an_explicit_interactive_flow() {
    let (raw, a) = applied(
        json!({"url": "https://api.githubcopilot.com/mcp", "client_id": "Iv1.x", "client_secret": "os.environ/GH"}),
    );
    assert_eq!(a.profile, Profile::GitHub);
    assert_eq!(
        raw.authorization_url.as_deref(),
        Some("https://github.com/login/oauth/authorize")
    );
    assert_eq!(
        raw.token_url.as_deref(),
        Some("https://github.com/login/oauth/access_token")
    );
    assert_eq!(raw.oauth_flow.as_deref(), Some("authorization_code"));
    assert!(a.todo[0].contains("http://127.0.0.1:47823/oauth/callback"));
    // What the person wrote wins.
    let (raw, _) = applied(
        json!({"url": "https://api.githubcopilot.com/mcp", "oauth_flow": "client_credentials", "token_url": "https://ghe.example/token"}),
    );
    assert_eq!(raw.oauth_flow.as_deref(), Some("client_credentials"));
    assert_eq!(raw.token_url.as_deref(), Some("https://ghe.example/token"));
}

#[test]
fn google_asks_for_offline_access_the_google_way_and_sends_no_resource() {
    let (raw, a) = applied(
        json!({"url": "https://mcp.example.com/mcp", "authorization_url": "https://accounts.google.com/o/oauth2/v2/auth"}),
    );
    assert_eq!(a.profile, Profile::Google);
    let params = raw.authorization_params.unwrap();
    assert_eq!(
        params.get("access_type").map(String::as_str),
        Some("offline")
    );
    assert_eq!(params.get("prompt").map(String::as_str), Some("consent"));
    assert_eq!(raw.send_resource, Some(false));
    assert_eq!(
        raw.token_url.as_deref(),
        Some("https://oauth2.googleapis.com/token")
    );
}

#[test]
fn slack_says_which_redirect_url_to_register() {
    let (raw, a) = applied(json!({"url": "https://mcp.slack.com/mcp"}));
    assert_eq!(a.profile, Profile::Slack);
    assert_eq!(raw.oauth_flow.as_deref(), Some("authorization_code"));
    assert!(
        a.todo[0].contains("exactly http://127.0.0.1:47823/oauth/callback"),
        "{a:?}"
    );
}

#[test]
fn unknown_hosts_match_no_profile_and_unknown_names_list_the_known_ones() {
    assert_eq!(
        Profile::detect(&entry(json!({"url": "https://notgithub.com/mcp"}))),
        None
    );
    assert_eq!(
        Profile::detect(&entry(json!({"url": "https://mcp.example.com/mcp"}))),
        None
    );
    assert!(Profile::parse("keycloak")
        .unwrap_err()
        .contains("entra, auth0, okta, github, google, slack"));
}
