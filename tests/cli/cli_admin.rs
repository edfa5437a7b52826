//! The admin API and the CLI verbs that use it (`api-key`, `clients`, `remove`'s sign-out),
//! against a real broker on `127.0.0.1:0` and as the real binary.

use crate::support;

use std::process::{Command, Output, Stdio};

use serde_json::json;
use support::*;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs the CLI off the runtime, so the in-process broker keeps answering it.
async fn run(b: &TestBroker, args: &[&str]) -> Output {
    let (cfg, data, port, state) = (
        b.config_path.clone(),
        b.dir.path().join("data"),
        b.port,
        b.dir.path().join("state"),
    );
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_mcp-auth-broker"))
            .args(&args)
            .arg("--config")
            .arg(cfg)
            .arg("--data-dir")
            .arg(data)
            .arg("--port")
            .arg(port.to_string())
            .env("XDG_STATE_HOME", state)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn admin_api_refuses_requests_without_the_admin_token() {
    let b = TestBroker::start(json!({"mcp_servers": {"demo": {"url": "http://127.0.0.1:9/mcp"}}}))
        .await;
    let c = reqwest::Client::new();
    for (method, path) in [
        ("GET", "/api/admin/clients"),
        ("POST", "/api/admin/servers/demo/sign-in"),
        ("POST", "/api/admin/api-keys"),
    ] {
        let req = c.request(method.parse().unwrap(), format!("{}{path}", b.base_url));
        let resp = req.bearer_auth("not-the-admin-token").send().await.unwrap();
        assert_eq!(resp.status(), 401, "{method} {path}");
    }
    // The token the CLI uses sits in the data dir, readable only by this user.
    let path = b.dir.path().join("data/admin.token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let token = std::fs::read_to_string(&path).unwrap();
    let resp = c
        .get(format!("{}/api/admin/clients", b.base_url))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert!(
        v["clients"].is_array() && v["grants"].is_array() && v["api_keys"].is_array(),
        "{v}"
    );
}

#[tokio::test]
async fn api_keys_are_created_once_listed_without_values_and_revoked_through_the_running_broker() {
    let b = TestBroker::start(json!({"mcp_servers": {"demo": {"url": "http://127.0.0.1:9/mcp"}}}))
        .await;
    let out = run(&b, &["api-key", "create", "ci-script", "--server", "demo"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(key.len() >= 32, "a fresh key is printed on stdout: {key:?}");
    assert!(text(&out).contains("shown only this once"));
    // The running broker knows the key at once (no restart) and lists it without its value.
    assert_eq!(b.broker.issuer().list_api_keys().len(), 1);
    let out = run(&b, &["api-key", "list"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out).contains("ci-script") && text(&out).contains("demo"),
        "{}",
        text(&out)
    );
    assert!(
        !text(&out).contains(&key),
        "a listing must never show the key"
    );
    let id = b.broker.issuer().list_api_keys()[0].id.clone();
    let out = run(&b, &["api-key", "revoke", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(b.broker.issuer().list_api_keys().is_empty());
    let out = run(&b, &["api-key", "revoke", &id]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains(&id), "{}", text(&out));
    let out = run(&b, &["api-key", "create", "x", "--server", "nope"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("no server named \"nope\""),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn clients_list_works_against_the_running_broker_and_names_unknown_ids() {
    let b = TestBroker::start(json!({"mcp_servers": {}})).await;
    let out = run(&b, &["clients", "list"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("CLIENT ID") && text(&out).contains("API KEY ID"),
        "{}",
        text(&out)
    );
    let out = run(&b, &["clients", "revoke", "no-such-client"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no-such-client"), "{}", text(&out));
}

#[test]
fn api_keys_can_be_created_with_no_broker_running() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mcp-auth-broker"))
            .args(args)
            .arg("--config")
            .arg(dir.path().join("config.json"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--port")
            .arg(port.to_string())
            .output()
            .unwrap()
    };
    let out = run(&["api-key", "create", "offline"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(&["api-key", "list"]);
    assert!(
        text(&out).contains("offline") && text(&out).contains("(all servers)"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn remove_signs_out_first_so_the_tokens_go_with_the_entry() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"demo": {"url": up.mcp_url}}})).await;
    let name = mcp_auth_broker::config::ServerName::parse("demo").unwrap();
    let cli = Cli::of(&b);
    let out = cli.run(&["login", "demo"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", support::cli::text(&out));
    assert!(b.broker.upstream().token_facts(&name).await.has_token);

    let out = cli.run(&["remove", "demo"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", support::cli::text(&out));
    assert!(
        text(&out).contains("Signed out of \"demo\""),
        "{}",
        text(&out)
    );
    assert!(
        !b.broker.upstream().token_facts(&name).await.has_token,
        "the running broker deleted the tokens"
    );
    assert!(
        count(&up.oauth().counters.revoke) >= 1,
        "and revoked them upstream"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cli.config).unwrap()).unwrap();
    assert!(config["mcp_servers"].get("demo").is_none(), "{config}");
}
