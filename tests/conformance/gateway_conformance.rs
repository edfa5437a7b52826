//! Done-when: the MCP conformance suite (`@modelcontextprotocol/conformance`, 0.2.0-alpha line)
//! against the broker — its `authorization` mode against the broker's authorization server,
//! and its `server` scenarios through the broker to a test upstream. The full `server`
//! requirement sets, in front of an upstream built on the official SDK v2 server, are in
//! `gateway_conformance_sets.rs`. Needs Node >= 22 and `tests/js` (scripts/setup-node.sh).
//!
//! The suite's `server` mode has no option for credentials, so `tests/js/auth_preload.mjs`
//! adds `x-api-key: <local API key>` to its requests to the broker, as any script would.

use crate::gateway_conformance_common;
use crate::support;

use std::process::Stdio;
use std::time::Duration;

use gateway_conformance_common::{checks_in, failures, CONFORMANCE};
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_server_scenarios_pass_through_the_broker() {
    let up = TestUpstream::start(UpstreamOptions::default().with_response(ResponseMode::Sse)).await;
    let b = TestBroker::start(json!({"mcp_servers": {"conf": {"url": up.mcp_url}}})).await;
    let key = b
        .broker
        .issuer()
        .create_api_key("conformance", Some("conf"))
        .unwrap()
        .1;
    for scenario in [
        "server-initialize",
        "ping",
        "tools-list",
        "server-sse-multiple-streams",
        "dns-rebinding-protection",
    ] {
        let out_dir = tempfile::tempdir().unwrap();
        let mut cmd = tokio::process::Command::from(support::node::node_command());
        cmd.arg("--import")
            .arg("./auth_preload.mjs")
            .arg(CONFORMANCE)
            .args([
                "server",
                "--url",
                &b.client_url("conf"),
                "--scenario",
                scenario,
                "-o",
            ])
            .arg(out_dir.path())
            .env("BROKER_ORIGIN", &b.base_url)
            .env("BROKER_API_KEY", key.expose())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
            .await
            .expect("the suite finished")
            .expect("node runs");
        let checks = checks_in(out_dir.path());
        let log = format!(
            "{scenario}: exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!checks.is_empty(), "no checks written; {log}");
        assert!(
            failures(&checks).is_empty(),
            "failed checks: {:#?}\n{log}",
            failures(&checks)
        );
        assert!(
            checks.iter().any(|c| c["status"] == "SUCCESS"),
            "nothing succeeded: {checks:#?}"
        );
        if scenario == "dns-rebinding-protection" {
            for id in [
                "localhost-host-rebinding-rejected",
                "localhost-host-valid-accepted",
            ] {
                assert!(
                    checks
                        .iter()
                        .any(|c| c["id"] == id && c["status"] == "SUCCESS"),
                    "{id}: {checks:#?}"
                );
            }
        }
        eprintln!(
            "{scenario}: {} checks, {} succeeded",
            checks.len(),
            checks.iter().filter(|c| c["status"] == "SUCCESS").count()
        );
        assert!(out.status.success(), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_authorization_mode_passes_against_the_brokers_authorization_server() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"conf": {"url": up.mcp_url}}})).await;
    let callback_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let registered: Value = http
        .post(format!("{}/register", b.base_url))
        .json(&json!({"client_name": "MCP conformance suite", "redirect_uris": [format!("http://127.0.0.1:{callback_port}/callback")], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::from(support::node::node_command());
    cmd.arg(CONFORMANCE)
        .args([
            "authorization",
            "--url",
            &b.base_url,
            "--client-id",
            client_id,
            "--resource",
            &b.client_url("conf"),
            "--port",
            &callback_port.to_string(),
            "-o",
        ])
        .arg(out_dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("node runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    // The suite prints the authorization URL for a person to open; this test is that person.
    let authorize_url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            printed.push_str(&line);
            printed.push('\n');
            if line.starts_with(&format!("{}/authorize?", b.base_url)) {
                return line;
            }
        }
        panic!("the suite ended without an authorization URL:\n{printed}");
    })
    .await
    .expect("the suite printed an authorization URL");
    let page = http.get(&authorize_url).send().await.unwrap();
    assert_eq!(page.status(), 200, "a new client sees the consent page");
    let html = page.text().await.unwrap();
    let approved = submit_consent(&b.base_url, &html, "approve", &[]).await;
    assert_eq!(approved.status(), 303);
    let callback = approved.headers()["location"].to_str().unwrap().to_string();
    assert!(
        callback.starts_with(&format!("http://127.0.0.1:{callback_port}/callback?")),
        "{callback}"
    );
    // The suite prints the URL before its callback listener is up, and says nothing when it is:
    // with no event to wait on, retry a refused connection until a deadline.
    let deliver = async {
        loop {
            match http.get(&callback).send().await {
                Err(e) if e.is_connect() => tokio::time::sleep(Duration::from_millis(20)).await,
                other => return other.unwrap(),
            }
        }
    };
    let delivered = tokio::time::timeout(Duration::from_secs(30), deliver)
        .await
        .expect("the suite's callback listener came up within 30 s");
    assert!(delivered.status().is_success());
    let mut rest = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    let checks = checks_in(out_dir.path());
    let log = format!("exit {:?}\nstdout: {printed}{rest}", status.code());
    assert!(
        checks
            .iter()
            .any(|c| c["id"] == "authorization-code-grant" && c["status"] == "SUCCESS"),
        "{checks:#?}\n{log}"
    );
    assert!(
        checks
            .iter()
            .any(|c| c["id"] == "authorization-server-metadata" && c["status"] == "SUCCESS"),
        "{checks:#?}\n{log}"
    );
    assert!(
        failures(&checks).is_empty(),
        "failed checks: {:#?}\n{log}",
        failures(&checks)
    );
    assert!(status.success(), "{log}");
}
