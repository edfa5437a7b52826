//! Done-when: the official TypeScript MCP SDK (the library Claude Code is built on) connects to
//! the broker, discovers it, registers, authorizes with PKCE (consent approved by the script),
//! and lists and calls tools of an upstream — open, interactive OAuth and M2M, via `127.0.0.1`
//! and `localhost`. Needs Node >= 22 and `tests/js` (scripts/setup-node.sh).

use crate::support;

use serde_json::{json, Value};
use support::*;

use support::node::sdk_client;

fn assert_worked(report: &Value, origin: &str) {
    assert_eq!(
        report["tools"],
        json!(["echo", "add", "slow_stream"]),
        "{report}"
    );
    assert_eq!(
        report["echo"]["content"][0]["text"], "hello through the broker",
        "{report}"
    );
    assert_eq!(
        report["authorized"], true,
        "the SDK went through the broker's OAuth flow: {report}"
    );
    assert!(
        report["clientId"].is_string(),
        "the SDK registered dynamically: {report}"
    );
    assert_eq!(
        report["iss"], origin,
        "iss names the issuer the client used"
    );
}

async fn run_for_both_hosts(b: &TestBroker, server: &str) {
    for host in ["127.0.0.1", "localhost"] {
        let origin = format!("http://{host}:{}", b.port);
        let report = sdk_client(&format!("{origin}/{server}/mcp")).await;
        assert_worked(&report, &origin);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_signs_in_to_the_broker_and_calls_tools_of_an_open_upstream() {
    let up = TestUpstream::start(UpstreamOptions::default().with_response(ResponseMode::Sse)).await;
    let b = TestBroker::start(json!({"mcp_servers": {"open": {"url": up.mcp_url}}})).await;
    run_for_both_hosts(&b, "open").await;
    assert_eq!(
        b.broker.issuer().list_clients().len(),
        2,
        "one registration per SDK run"
    );
    assert!(
        up.recorder()
            .to_path("/mcp")
            .iter()
            .all(|r| r.authorization().is_none()),
        "broker tokens never reach the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_reaches_an_interactive_oauth_upstream_through_consent_and_sign_in() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(
        json!({"mcp_servers": {"interactive": {"url": up.mcp_url, "auth_type": "oauth2"}}}),
    )
    .await;
    run_for_both_hosts(&b, "interactive").await;
    let calls = up.recorder().to_path("/mcp");
    let authed: Vec<_> = calls.iter().filter_map(|r| r.authorization()).collect();
    assert!(
        !authed.is_empty()
            && authed.iter().all(|a| up
                .oauth()
                .validate(a.trim_start_matches("Bearer "))
                .is_some()),
        "only upstream-issued tokens reach the upstream"
    );
    assert_eq!(
        b.browser.opened().len(),
        1,
        "one upstream sign-in, shared by both clients"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_reaches_an_m2m_upstream_with_no_browser_for_the_upstream() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    std::env::set_var("GATEWAY_SDK_M2M_SECRET", "m2m-secret");
    let b = TestBroker::start(json!({"mcp_servers": {"m2m": {
        "url": up.mcp_url, "auth_type": "oauth2", "oauth_flow": "client_credentials",
        "client_id": "m2m-client", "client_secret": "os.environ/GATEWAY_SDK_M2M_SECRET",
        "token_url": up.auth_server.token_url()}}}))
    .await;
    run_for_both_hosts(&b, "m2m").await;
    assert!(
        b.browser.opened().is_empty(),
        "client credentials need no browser"
    );
    assert!(count(&up.oauth().counters.token_client_credentials) >= 1);
}
