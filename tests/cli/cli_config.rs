//! CLI verbs over the config file, run as the real binary: output, error text and exit codes.
//! (The provider profiles `add` applies are in `cli_profiles.rs`.)

use crate::support;

use std::process::{Command, Output, Stdio};
use support::cli::text;

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
