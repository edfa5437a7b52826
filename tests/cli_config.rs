//! CLI verbs over the config file, run as the real binary: output, error text and exit codes;
//! and the provider profiles `add` applies, signing in to upstreams that behave like them.

mod support;

use std::process::{Command, Output, Stdio};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_mcp-auth-broker"))
            .args(args)
            .arg("--config")
            .arg(self.dir.path().join("config.json"))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .arg("--port")
            .arg("47901")
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn config(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.dir.path().join("config.json")).unwrap())
            .unwrap()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn add_list_client_config_and_remove_round_trip() {
    let env = Env::new();
    let out = env.run(&["list"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out).contains("No servers configured"),
        "{}",
        text(&out)
    );

    let out = env.run(&[
        "add",
        "github",
        "--url",
        "https://api.githubcopilot.com/mcp",
        "--auth-type",
        "oauth2",
        "--client-id",
        "Iv1.abc",
        "--client-secret",
        "os.environ/GH_SECRET",
        "--scopes",
        "repo,read:user",
        "--audience",
        "https://api.github.example",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("http://127.0.0.1:47901/github/mcp"),
        "{}",
        text(&out)
    );
    let cfg = env.config();
    assert_eq!(
        cfg["mcp_servers"]["github"]["client_secret"],
        "os.environ/GH_SECRET"
    );
    assert_eq!(
        cfg["mcp_servers"]["github"]["scopes"],
        serde_json::json!(["repo", "read:user"])
    );
    assert_eq!(
        cfg["mcp_servers"]["github"]["audience"],
        "https://api.github.example"
    );

    let out = env.run(&["list"]);
    assert!(
        text(&out).contains("github") && text(&out).contains("oauth2"),
        "{}",
        text(&out)
    );

    let out = env.run(&["client-config", "github", "--for", "claude"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "claude mcp add --transport http github http://127.0.0.1:47901/github/mcp"
    );
    let out = env.run(&["client-config", "github", "--for", "cursor"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["mcpServers"]["github"]["url"],
        "http://127.0.0.1:47901/github/mcp"
    );
    let out = env.run(&["client-config", "github", "--for", "vscode"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["servers"]["github"]["type"], "http");

    let out = env.run(&["remove", "github"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(env.config()["mcp_servers"].get("github").is_none());
}

#[test]
fn usage_mistakes_exit_2_and_say_what_to_do() {
    let env = Env::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "add",
                "gh",
                "--url",
                "https://x.example/mcp",
                "--auth-type",
                "oauth2",
                "--client-id",
                "c",
                "--client-secret",
                "hunter2",
            ],
            "a literal secret would end up in your shell history",
        ),
        (
            &["add", "Bad Name", "--url", "https://x.example/mcp"],
            "field \"name\"",
        ),
        (
            &["add", "gh", "--url", "ftp://x.example/mcp"],
            "field \"url\"",
        ),
        (
            &["remove", "nope"],
            "no server named \"nope\"; run `mcp-auth-broker list`",
        ),
        (
            &["client-config", "nope", "--for", "claude"],
            "no server named \"nope\"",
        ),
        (
            &["client-config", "nope", "--for", "emacs"],
            "use --for claude, --for cursor or --for vscode",
        ),
    ];
    for (args, needle) in cases {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(needle), "{args:?}: {}", text(&out));
        assert!(
            !text(&out).contains("hunter2"),
            "secret echoed: {}",
            text(&out)
        );
    }
    let out = env.run(&["add", "gh", "--url", "https://x.example/mcp"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = env.run(&["add", "gh", "--url", "https://y.example/mcp"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--replace"), "{}", text(&out));
    let out = env.run(&["add", "gh", "--url", "https://y.example/mcp", "--replace"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        env.config()["mcp_servers"]["gh"]["url"],
        "https://y.example/mcp"
    );
}

#[test]
fn status_without_a_running_broker_exits_1_and_says_how_to_start_one() {
    let env = Env::new();
    let out = env.run(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("no broker is answering at http://127.0.0.1:47901; start it with `mcp-auth-broker serve`"), "{}", text(&out));
}

#[test]
fn port_zero_is_refused_because_client_urls_must_stay_stable() {
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-auth-broker"))
        .args(["serve", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("--port 0 is not allowed"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_yaml_config_file_is_read_edited_and_written_back_as_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "# from LiteLLM\nmcp_servers:\n  m2m:\n    url: https://mcp.example.com/mcp\n    auth_type: oauth2\n    oauth2_flow: client_credentials\n    client_id: svc\n    description: kept, and reported\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mcp-auth-broker"))
            .args(args)
            .arg("--config")
            .arg(&path)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("m2m") && text(&out).contains("ClientCredentials"),
        "{}",
        text(&out)
    );
    let out = run(&["add", "docs", "--url", "https://docs.example.com/mcp"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(!written.trim_start().starts_with('{'), "{written}");
    let doc: serde_json::Value = yaml_serde::from_str(&written).unwrap();
    assert_eq!(
        doc["mcp_servers"]["docs"]["url"],
        "https://docs.example.com/mcp"
    );
    assert_eq!(
        doc["mcp_servers"]["m2m"]["oauth2_flow"], "client_credentials",
        "kept as written"
    );
    assert_eq!(
        doc["mcp_servers"]["m2m"]["description"],
        "kept, and reported"
    );
}

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
    let credential = broker.broker.upstream().credential(&server).await.unwrap();
    let issued = up
        .oauth()
        .validate(credential.bearer.unwrap().expose())
        .unwrap();
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
    let server = broker.broker.server("gh").unwrap();
    let credential = broker.broker.upstream().credential(&server).await.unwrap();
    let issued = up
        .oauth()
        .validate(credential.bearer.unwrap().expose())
        .unwrap();
    assert_eq!(
        (issued.client_id.as_str(), issued.grant),
        ("Iv1.github", "authorization_code")
    );
}
