//! `probe URL` as the real binary against real upstreams on 127.0.0.1: the flow, the evidence,
//! nothing saved.

use crate::support;

use std::process::{Command, Output};

use support::*;

async fn probe(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-auth-broker"));
    cmd.arg("probe")
        .args(args)
        .arg("--config")
        .arg(dir.path().join("config.json"))
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        !dir.path().join("config.json").exists(),
        "probe saves nothing"
    );
    out
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn an_oauth_protected_upstream_probes_as_interactive_with_its_evidence() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let out = probe(&[&up.mcp_url]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains(": authorization_code"), "{t}");
    assert!(
        t.contains(&format!("authorization server: {}", up.auth_server.issuer)),
        "{t}"
    );
    assert!(t.contains("evidence:\n  - "), "{t}");
    assert_eq!(
        count(&up.oauth().counters.token),
        0,
        "probing never asks for a token"
    );
}

#[tokio::test]
async fn a_github_style_client_id_and_secret_stay_interactive_and_an_explicit_flow_wins() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let out = probe(&[
        &up.mcp_url,
        "--auth-type",
        "oauth2",
        "--client-id",
        "Iv1.abc",
        "--with-client-secret",
        "--json",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["flow"], "authorization_code", "{v}");
    assert!(
        v["evidence"].as_array().is_some_and(|e| !e.is_empty()),
        "{v}"
    );

    let token_url = up.auth_server.token_url();
    let out = probe(&[
        &up.mcp_url,
        "--auth-type",
        "oauth2",
        "--oauth-flow",
        "client_credentials",
        "--client-id",
        "svc",
        "--with-client-secret",
        "--token-url",
        &token_url,
        "--json",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["flow"], "client_credentials", "{v}");
}

#[tokio::test]
async fn an_unreachable_upstream_exits_1_with_the_cause_and_a_bad_url_exits_2() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = probe(&[&format!("http://127.0.0.1:{port}/mcp")]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("unreachable"), "{}", text(&out));
    let out = probe(&["file:///etc/passwd"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("field \"url\"") && text(&out).contains("scheme 'file'"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn probe_prints_the_era_and_version_a_server_without_auth_speaks() {
    let new = TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await;
    let out = probe(&[&new.mcp_url]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains(": none\n"), "{t}");
    assert!(
        t.contains("protocol: MCP 2026-07-28 (modern) (5 tools)"),
        "{t}"
    );
    assert_eq!(count(&new.counters().initialize), 0, "{t}");

    let old = TestUpstream::start(UpstreamOptions::default()).await;
    let out = probe(&[&old.mcp_url, "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["protocol"]["era"], "legacy", "{v}");
    assert_eq!(v["protocol"]["version"], "2025-11-25", "{v}");
    assert_eq!(v["protocol"]["label"], "MCP 2025-11-25", "{v}");
    assert_eq!(v["protocol"]["tools"], 3, "{v}");
    assert_eq!(
        old.recorder().count("DELETE", "/mcp"),
        1,
        "the legacy session the probe opened is ended"
    );
}

#[tokio::test]
async fn probe_says_the_era_of_a_protected_server_is_known_only_with_credentials() {
    let up = TestUpstream::start(UpstreamOptions {
        auth: Requires::OAuth,
        ..UpstreamOptions::default().with_era(UpstreamEra::Modern)
    })
    .await;
    let out = probe(&[&up.mcp_url]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains(": authorization_code"), "{t}");
    assert!(t.contains("protocol: not known without credentials"), "{t}");
}
