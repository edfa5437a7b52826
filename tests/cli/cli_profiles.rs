//! The provider profiles `add` applies, each signing in through a real broker to a test
//! upstream whose authorization server behaves like that provider (`support::providers`):
//! Entra ID, GitHub, Auth0 (Okta's rule is the same), Google and Slack.

use crate::support;

use std::process::{Command, Stdio};

use support::cli::text;
use support::providers;

/// Runs `add` on a fresh config file and returns the file and the output.
fn add_to_fresh(dir: &std::path::Path, args: &[&str]) -> (serde_json::Value, String) {
    let path = dir.join("config.json");
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-auth-broker"))
        .arg("add")
        .args(args)
        .arg("--config")
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--port")
        .arg("47901")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let config = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (config, text(&out))
}

#[tokio::test]
async fn the_entra_profile_makes_add_write_the_entry_that_signs_in_to_an_entra_shaped_server_with_a_refresh_token(
) {
    let up = support::providers::entra().await;
    let dir = tempfile::tempdir().unwrap();
    let authorize = format!("{}/authorize", up.as_url);
    let token = up.auth_server.token_url();
    let (config, out) = add_to_fresh(
        dir.path(),
        &[
            "entra",
            "--url",
            &up.mcp_url,
            "--profile",
            "entra",
            "--client-id",
            support::providers::ENTRA_CLIENT_ID,
            "--authorization-url",
            &authorize,
            "--token-url",
            &token,
            "--audience",
            "api://mcp-upstream",
        ],
    );
    assert!(
        out.contains("Applied profile Entra ID:")
            && out
                .contains("send_resource false (Entra's v2 endpoints refuse it with AADSTS901002)"),
        "{out}"
    );
    assert_eq!(
        config["mcp_servers"]["entra"],
        support::providers::entra_config(&up),
        "{out}"
    );
    let broker = support::TestBroker::start(config).await;
    broker.sign_in("entra").await;
    let server = broker.broker.server("entra").unwrap();
    let facts = broker.broker.upstream().token_facts(&server.name).await;
    assert!(facts.has_token && facts.has_refresh_token, "{facts:?}");
    let issued = broker.issued("entra", up.oauth()).await.unwrap();
    assert_eq!(issued.resource, None, "no resource parameter reached Entra");
}

#[tokio::test]
async fn the_github_profile_makes_add_choose_interactive_sign_in_where_the_config_alone_would_leave_it_open(
) {
    use support::auth_server::TestClient;
    let mut options = support::UpstreamOptions::oauth();
    options.auth_server.clients = vec![TestClient {
        client_id: "Iv1.github".into(),
        client_secret: Some("gh-secret".into()),
    }];
    options.auth_server.open_clients = false;
    options.auth_server.registration = false;
    // Like GitHub: no RFC 8414 / OIDC metadata (the person configures both endpoints) and no
    // RFC 9207 `iss` in the authorization response.
    options.auth_server.metadata = false;
    options.auth_server.iss = false;
    let up = support::TestUpstream::start(options).await;
    std::env::set_var("CLI_CONFIG_GITHUB_SECRET", "gh-secret");
    let authorize = format!("{}/authorize", up.as_url);
    let token = up.auth_server.token_url();
    let common = [
        "--url",
        up.mcp_url.as_str(),
        "--auth-type",
        "oauth2",
        "--client-id",
        "Iv1.github",
        "--client-secret",
        "os.environ/CLI_CONFIG_GITHUB_SECRET",
        "--authorization-url",
        authorize.as_str(),
        "--token-url",
        token.as_str(),
    ];
    // Without the profile, a client ID, a secret and both endpoints leave the flow open.
    let plain = tempfile::tempdir().unwrap();
    let mut args = vec!["gh", "--profile", "none"];
    args.extend(common);
    let (config, out) = add_to_fresh(plain.path(), &args);
    assert!(!out.contains("Applied profile"), "{out}");
    let broker = support::TestBroker::start(config).await;
    let server = broker.broker.server("gh").unwrap();
    let open = broker.broker.upstream().classify(&server).await.unwrap();
    assert_eq!(open.flow, None, "{open:?}");

    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["gh", "--profile", "github"];
    args.extend(common);
    let (config, out) = add_to_fresh(dir.path(), &args);
    assert!(
        out.contains("Applied profile GitHub: oauth_flow authorization_code"),
        "{out}"
    );
    assert!(
        out.contains(
            "register http://127.0.0.1:47901/oauth/callback as the OAuth app's callback URL"
        ),
        "{out}"
    );
    assert_eq!(
        config["mcp_servers"]["gh"]["oauth_flow"],
        "authorization_code"
    );
    assert_eq!(
        config["mcp_servers"]["gh"]["token_url"], token,
        "what the person wrote wins"
    );
    let broker = support::TestBroker::start(config).await;
    broker.sign_in("gh").await;
    let issued = broker.issued("gh", up.oauth()).await.unwrap();
    assert_eq!(
        (issued.client_id.as_str(), issued.grant),
        ("Iv1.github", "authorization_code")
    );
}

/// The query parameter `key` of the last authorization URL the broker opened.
fn opened_param(broker: &support::TestBroker, key: &str) -> Option<String> {
    let opened = broker.browser.opened();
    let last = opened.last().expect("a sign-in opened the browser");
    last.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Signs in to `name`, then makes the API refuse the access token: the broker must refresh.
async fn sign_in_and_refresh(broker: &support::TestBroker, up: &support::TestUpstream, name: &str) {
    broker.sign_in(name).await;
    let server = broker.broker.server(name).unwrap();
    let upstream = broker.broker.upstream();
    let first = upstream.credential(&server).await.unwrap();
    let facts = upstream.token_facts(&server.name).await;
    assert!(facts.has_token && facts.has_refresh_token, "{facts:?}");
    up.oauth().expire_access_tokens();
    let renewed = upstream.after_rejection(&server, &first).await.unwrap();
    assert!(
        up.oauth()
            .validate(renewed.bearer.unwrap().expose())
            .is_some(),
        "the refreshed token is one the API takes"
    );
}

#[tokio::test]
async fn the_auth0_profile_asks_for_the_api_audience_and_offline_access_so_the_api_takes_the_token_and_it_refreshes(
) {
    let up = providers::auth0().await;
    let common = [
        "--url",
        up.mcp_url.as_str(),
        "--profile",
        "auth0",
        "--client-id",
        providers::AUTH0_CLIENT_ID,
    ];
    // Without the API identifier the profile says what is missing, and Auth0's token for
    // that sign-in is not one the API takes.
    let bare = tempfile::tempdir().unwrap();
    let mut args = vec!["auth0"];
    args.extend(common);
    let (config, out) = add_to_fresh(bare.path(), &args);
    assert!(
        out.contains("Still to do: pass --audience with the API identifier"),
        "{out}"
    );
    let broker = support::TestBroker::start(config).await;
    broker.sign_in("auth0").await;
    assert!(broker.issued("auth0", up.oauth()).await.is_none());

    let dir = tempfile::tempdir().unwrap();
    args.extend(["--audience", providers::AUTH0_AUDIENCE]);
    let (config, out) = add_to_fresh(dir.path(), &args);
    assert!(!out.contains("--audience"), "nothing left to do: {out}");
    let entry = &config["mcp_servers"]["auth0"];
    assert_eq!(entry["audience"], providers::AUTH0_AUDIENCE);
    assert_eq!(entry["scopes"], serde_json::json!(["offline_access"]));
    let broker = support::TestBroker::start(config).await;
    sign_in_and_refresh(&broker, &up, "auth0").await;
    assert_eq!(
        opened_param(&broker, "audience").as_deref(),
        Some(providers::AUTH0_AUDIENCE)
    );
}

#[tokio::test]
async fn the_google_profile_sends_no_resource_and_asks_for_offline_access_so_a_refresh_token_comes_back(
) {
    let up = providers::google().await;
    std::env::set_var("CLI_PROFILES_GOOGLE_SECRET", providers::GOOGLE_SECRET);
    let dir = tempfile::tempdir().unwrap();
    let authorize = format!("{}/authorize", up.as_url);
    let token = up.auth_server.token_url();
    let (config, out) = add_to_fresh(
        dir.path(),
        &[
            "google",
            "--url",
            &up.mcp_url,
            "--profile",
            "google",
            "--client-id",
            providers::GOOGLE_CLIENT_ID,
            "--client-secret",
            "os.environ/CLI_PROFILES_GOOGLE_SECRET",
            "--authorization-url",
            &authorize,
            "--token-url",
            &token,
        ],
    );
    for piece in [
        "send_resource false",
        "access_type=offline, prompt=consent",
        "add http://127.0.0.1:47901/oauth/callback to the OAuth client's authorized redirect URIs",
    ] {
        assert!(out.contains(piece), "{piece}: {out}");
    }
    let broker = support::TestBroker::start(config).await;
    sign_in_and_refresh(&broker, &up, "google").await;
    assert_eq!(opened_param(&broker, "resource"), None);
    assert_eq!(
        opened_param(&broker, "access_type").as_deref(),
        Some("offline")
    );
    assert_eq!(opened_param(&broker, "prompt").as_deref(), Some("consent"));
}

#[tokio::test]
async fn the_slack_profile_signs_in_with_exactly_the_one_redirect_url_the_person_registered() {
    let up = providers::slack().await;
    std::env::set_var("CLI_PROFILES_SLACK_SECRET", providers::SLACK_SECRET);
    let dir = tempfile::tempdir().unwrap();
    let (config, out) = add_to_fresh(
        dir.path(),
        &[
            "slack",
            "--url",
            &up.mcp_url,
            "--profile",
            "slack",
            "--client-id",
            providers::SLACK_CLIENT_ID,
            "--client-secret",
            "os.environ/CLI_PROFILES_SLACK_SECRET",
        ],
    );
    assert!(
        out.contains(
            "add exactly http://127.0.0.1:47901/oauth/callback to the Slack app's Redirect URLs"
        ),
        "{out}"
    );
    assert_eq!(
        config["mcp_servers"]["slack"]["oauth_flow"],
        "authorization_code"
    );
    let broker = support::TestBroker::start(config).await;
    // The person registered the broker's callback (its port is fixed in real use).
    let registered = format!("{}/oauth/callback", broker.base_url);
    let rules = &up.oauth().options.provider;
    rules.register_redirect(&registered);
    let elsewhere = format!(
        "{}/authorize?client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcb&response_type=code",
        up.as_url,
        providers::SLACK_CLIENT_ID
    );
    let refused = reqwest::get(&elsewhere).await.unwrap();
    assert_eq!(
        refused.status(),
        400,
        "Slack refuses any other redirect URL"
    );
    broker.sign_in("slack").await;
    assert_eq!(opened_param(&broker, "redirect_uri"), Some(registered));
    let issued = broker.issued("slack", up.oauth()).await.unwrap();
    assert_eq!(issued.client_id, providers::SLACK_CLIENT_ID);
}
