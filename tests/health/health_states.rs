//! Health states of servers without broker-held OAuth (none and static flows), against real
//! upstreams on 127.0.0.1, synchronised on the status channel.

use crate::support;

use std::sync::Arc;

use mcp_auth_broker::health::HealthState;
use mcp_auth_broker::secret::Secret;
use mcp_auth_broker::vault::{MemoryStore, TokenStore};
use serde_json::{json, Value};
use support::health::{wait_settled, wait_status};
use support::*;

async fn monitored(config: Value) -> TestBroker {
    TestBroker::start_with(
        config,
        BrokerOptions {
            background: true,
            ..Default::default()
        },
    )
    .await
}

fn one(name: &str, entry: Value) -> Value {
    json!({ "mcp_servers": { name: entry } })
}

#[tokio::test]
async fn a_server_without_auth_is_healthy_with_its_tool_count_and_protocol_version() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let broker = monitored(one("plain", json!({ "url": up.mcp_url }))).await;
    let mut rx = broker.broker.status();
    let s = wait_settled(&mut rx, "plain").await;
    match s.state {
        HealthState::Healthy {
            tools,
            protocol_version,
            ..
        } => {
            assert_eq!(tools, 3);
            assert_eq!(protocol_version, "2025-11-25");
        }
        other => panic!("expected healthy, got {other:?}"),
    }
    assert!(s.checked_at.is_some());
    assert!(
        count(&up.counters().initialize) >= 1,
        "classification may send its own anonymous initialize"
    );
    assert_eq!(
        count(&up.counters().notifications),
        1,
        "notifications/initialized is sent"
    );
    assert_eq!(count(&up.counters().tools_list), 1);
    assert!(broker.browser.opened().is_empty());
}

#[tokio::test]
async fn sse_answers_are_probed_like_json_ones() {
    let up = TestUpstream::start(UpstreamOptions::default().with_response(ResponseMode::Sse)).await;
    up.set_tools(vec![
        json!({"name": "only", "inputSchema": {"type": "object"}}),
    ]);
    let broker = monitored(one("streamy", json!({ "url": up.mcp_url }))).await;
    let s = wait_settled(&mut broker.broker.status(), "streamy").await;
    assert!(
        matches!(s.state, HealthState::Healthy { tools: 1, .. }),
        "{:?}",
        s.state
    );
}

#[tokio::test]
async fn an_unreachable_server_reports_the_connection_cause() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    up.stop();
    let broker = monitored(one("gone", json!({ "url": up.mcp_url }))).await;
    let s = wait_settled(&mut broker.broker.status(), "gone").await;
    let HealthState::Unreachable { cause } = s.state else {
        panic!("expected unreachable, got {:?}", s.state)
    };
    assert!(cause.to_lowercase().contains("connect"), "{cause}");
}

#[tokio::test]
async fn a_server_error_is_unreachable_with_the_status() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    up.set_fault(McpFault::Status(503));
    let broker = monitored(one("down", json!({ "url": up.mcp_url }))).await;
    let s = wait_settled(&mut broker.broker.status(), "down").await;
    let HealthState::Unreachable { cause } = s.state else {
        panic!("expected unreachable, got {:?}", s.state)
    };
    assert!(cause.contains("503"), "{cause}");
    let evidence = s.flow.expect("classified").evidence.join(" ");
    assert!(
        evidence.starts_with("unreachable") && evidence.contains("503"),
        "the flow is not \"no auth needed\": {evidence}"
    );
}

#[tokio::test]
async fn a_non_mcp_answer_is_a_protocol_error_saying_what_was_wrong() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    up.set_fault(McpFault::Html);
    let broker = monitored(one("html", json!({ "url": up.mcp_url }))).await;
    let mut rx = broker.broker.status();
    let s = wait_settled(&mut rx, "html").await;
    let HealthState::ProtocolError { detail } = s.state else {
        panic!("expected protocol error, got {:?}", s.state)
    };
    assert!(detail.contains("text/html"), "{detail}");
    up.set_fault(McpFault::BadJsonRpc);
    broker.broker.health().check_now(&name("html"));
    let s = wait_status(&mut rx, "html", |s| matches!(&s.state, HealthState::ProtocolError { detail } if detail.contains("not the JSON-RPC response"))).await;
    assert!(s.checked_at.is_some());
}

#[tokio::test]
async fn check_now_probes_again_and_publishes_the_new_tool_count() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let broker = monitored(one("tools", json!({ "url": up.mcp_url }))).await;
    let mut rx = broker.broker.status();
    wait_status(&mut rx, "tools", |s| {
        matches!(s.state, HealthState::Healthy { tools: 3, .. })
    })
    .await;
    up.set_tools(vec![]);
    broker.broker.health().check_now(&name("tools"));
    wait_status(&mut rx, "tools", |s| {
        matches!(s.state, HealthState::Healthy { tools: 0, .. })
    })
    .await;
    assert_eq!(
        count(&up.counters().tools_list),
        2,
        "one tools/list per probe"
    );
}

#[tokio::test]
async fn a_static_token_server_is_healthy_and_gets_exactly_the_configured_token() {
    let up = TestUpstream::start(UpstreamOptions {
        auth: Requires::Static("static-secret-1".into()),
        ..Default::default()
    })
    .await;
    let store = Arc::new(MemoryStore::default());
    store
        .set("config/fixed/auth_value", &Secret::new("static-secret-1"))
        .unwrap();
    let config = one(
        "fixed",
        json!({ "url": up.mcp_url, "auth_type": "bearer_token", "auth_value": "keychain:config/fixed/auth_value" }),
    );
    let broker = TestBroker::start_with(
        config,
        BrokerOptions {
            background: true,
            store,
        },
    )
    .await;
    let s = wait_settled(&mut broker.broker.status(), "fixed").await;
    assert!(
        matches!(s.state, HealthState::Healthy { tools: 3, .. }),
        "{:?}",
        s.state
    );
    let calls = up.recorder().to_path("/mcp");
    assert!(!calls.is_empty());
    assert!(calls
        .iter()
        .all(|r| r.authorization() == Some("Bearer static-secret-1")));
}

#[tokio::test]
async fn a_rejected_static_token_is_auth_rejected_with_the_upstream_text_and_no_secret() {
    let up = TestUpstream::start(UpstreamOptions {
        auth: Requires::Static("the-right-one".into()),
        ..Default::default()
    })
    .await;
    let store = Arc::new(MemoryStore::default());
    store
        .set(
            "config/wrong/auth_value",
            &Secret::new("a-wrong-static-token"),
        )
        .unwrap();
    let config = one(
        "wrong",
        json!({ "url": up.mcp_url, "auth_type": "bearer_token", "auth_value": "keychain:config/wrong/auth_value" }),
    );
    let broker = TestBroker::start_with(
        config,
        BrokerOptions {
            background: true,
            store,
        },
    )
    .await;
    let s = wait_settled(&mut broker.broker.status(), "wrong").await;
    let HealthState::AuthRejected { detail } = &s.state else {
        panic!("expected auth rejected, got {:?}", s.state)
    };
    assert!(
        detail.contains("401") && detail.contains("invalid_token"),
        "{detail}"
    );
    let api: Value = reqwest::get(format!("{}/api/status", broker.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["servers"]["wrong"]["state"]["state"], "auth_rejected");
    assert!(
        !api.to_string().contains("a-wrong-static-token"),
        "the status endpoint reveals no secret"
    );
}

#[tokio::test]
async fn the_status_endpoint_serves_the_live_map_to_loopback_clients_only() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let broker = monitored(one("live", json!({ "url": up.mcp_url }))).await;
    wait_settled(&mut broker.broker.status(), "live").await;
    let url = format!("{}/api/status", broker.base_url);
    let api: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(api["servers"]["live"]["state"]["state"], "healthy");
    assert_eq!(api["servers"]["live"]["state"]["tools"], 3);
    let foreign = reqwest::Client::new()
        .get(&url)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let rebinding = reqwest::Client::new()
        .get(&url)
        .header("host", format!("evil.example:{}", broker.port))
        .send()
        .await
        .unwrap();
    assert_eq!(rebinding.status(), 403);
}

fn name(s: &str) -> mcp_auth_broker::config::ServerName {
    mcp_auth_broker::config::ServerName::parse(s).unwrap()
}

#[tokio::test]
async fn a_legacy_sse_transport_server_is_probed_over_its_event_stream() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let broker = monitored(one(
        "oldie",
        json!({ "url": up.sse_url, "transport": "sse" }),
    ))
    .await;
    let s = wait_settled(&mut broker.broker.status(), "oldie").await;
    match s.state {
        HealthState::Healthy {
            tools,
            protocol_version,
            ..
        } => {
            assert_eq!(tools, 3);
            assert_eq!(protocol_version, "2024-11-05");
        }
        other => panic!("expected healthy, got {other:?}"),
    }
    assert_eq!(
        up.recorder().to_path("/messages").len(),
        3,
        "initialize, initialized, tools/list"
    );
    assert_eq!(count(&up.counters().tools_list), 1);
}

#[tokio::test]
async fn a_paginated_tool_list_is_counted_across_pages() {
    let up = TestUpstream::start(UpstreamOptions {
        page_size: Some(2),
        ..Default::default()
    })
    .await;
    up.set_tools(
        (0..5)
            .map(|i| json!({"name": format!("t{i}"), "inputSchema": {"type": "object"}}))
            .collect(),
    );
    let broker = monitored(one("pages", json!({ "url": up.mcp_url }))).await;
    let s = wait_settled(&mut broker.broker.status(), "pages").await;
    assert!(
        matches!(s.state, HealthState::Healthy { tools: 5, .. }),
        "{:?}",
        s.state
    );
    assert_eq!(
        count(&up.counters().tools_list),
        3,
        "three pages of at most two tools"
    );
}

#[tokio::test]
async fn a_secret_that_cannot_be_resolved_needs_setup_and_names_what_to_do() {
    let up = TestUpstream::start(UpstreamOptions {
        auth: Requires::Static("the-right-one".into()),
        ..Default::default()
    })
    .await;
    let config = json!({ "mcp_servers": {
        "envless": { "url": up.mcp_url, "auth_type": "bearer_token", "auth_value": "os.environ/HEALTH_STATES_NEVER_SET" },
        "entryless": { "url": up.mcp_url, "auth_type": "bearer_token", "auth_value": "keychain:config/entryless/auth_value" },
    }});
    let broker = monitored(config).await;
    let mut rx = broker.broker.status();
    for (server, names) in [
        (
            "envless",
            "environment variable HEALTH_STATES_NEVER_SET is not set; export it",
        ),
        (
            "entryless",
            "keychain entry config/entryless/auth_value does not exist; enter the secret again",
        ),
    ] {
        let s = wait_settled(&mut rx, server).await;
        let HealthState::NeedsSetup { detail } = &s.state else {
            panic!("expected needs setup, got {:?}", s.state)
        };
        assert!(detail.contains(names), "{detail}");
        assert_eq!(s.state.label(), "needs setup");
    }
    let api: Value = reqwest::get(format!("{}/api/status", broker.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["servers"]["envless"]["state"]["state"], "needs_setup");
    assert_eq!(up.recorder().len(), 0, "nothing is sent without the secret");
}

#[tokio::test]
async fn answers_that_open_with_a_priming_event_are_probed_like_plain_ones() {
    let up = TestUpstream::start(UpstreamOptions::default().with_response(ResponseMode::SsePrimed))
        .await;
    let broker = monitored(one("primed", json!({ "url": up.mcp_url }))).await;
    let s = wait_settled(&mut broker.broker.status(), "primed").await;
    assert!(
        matches!(s.state, HealthState::Healthy { tools: 3, .. }),
        "{:?}",
        s.state
    );
}

#[tokio::test]
async fn an_http_sse_server_that_sends_a_priming_event_before_its_answers_is_healthy() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    up.set_response(ResponseMode::SsePrimed);
    let broker = monitored(one(
        "primed-old",
        json!({ "url": up.sse_url, "transport": "sse" }),
    ))
    .await;
    let s = wait_settled(&mut broker.broker.status(), "primed-old").await;
    assert!(
        matches!(s.state, HealthState::Healthy { tools: 3, .. }),
        "a priming event is not \"an event that is not JSON\": {:?}",
        s.state
    );
}
