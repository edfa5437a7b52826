//! Health of OAuth servers, each probed with its own flow: client credentials fetch (or reuse)
//! a real token; interactive servers use the stored sign-in and never start one.

use crate::support;

use std::sync::Arc;

use mcp_auth_broker::config::ServerName;
use mcp_auth_broker::health::HealthState;
use mcp_auth_broker::secret::Secret;
use mcp_auth_broker::vault::{MemoryStore, TokenStore};
use serde_json::{json, Value};
use support::health::{wait_settled, wait_status, STATUS_WAIT};
use support::*;

fn name(s: &str) -> ServerName {
    ServerName::parse(s).unwrap()
}

fn m2m_entry(up: &TestUpstream, server: &str) -> Value {
    json!({
        "url": up.mcp_url, "auth_type": "oauth2", "oauth_flow": "client_credentials",
        "client_id": "m2m-client", "client_secret": format!("keychain:config/{server}/client_secret"),
        "token_url": up.auth_server.token_url(),
    })
}

async fn m2m_broker(up: &TestUpstream) -> TestBroker {
    let store = Arc::new(MemoryStore::default());
    store
        .set("config/robot/client_secret", &Secret::new("m2m-secret"))
        .unwrap();
    let config = json!({ "mcp_servers": { "robot": m2m_entry(up, "robot") } });
    TestBroker::start_with(
        config,
        BrokerOptions {
            background: true,
            store,
        },
    )
    .await
}

async fn interactive_broker(up: &TestUpstream) -> TestBroker {
    let config = json!({ "mcp_servers": { "human": { "url": up.mcp_url, "auth_type": "oauth2", "oauth_flow": "authorization_code" } } });
    TestBroker::start_with(
        config,
        BrokerOptions {
            background: true,
            ..Default::default()
        },
    )
    .await
}

#[tokio::test]
async fn an_m2m_server_without_a_static_token_is_healthy_after_a_real_token_request() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let broker = m2m_broker(&up).await;
    let mut rx = broker.broker.status();
    let s = wait_settled(&mut rx, "robot").await;
    assert!(
        matches!(s.state, HealthState::Healthy { tools: 3, .. }),
        "{:?}",
        s.state
    );
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 1);
    let bearer = up
        .recorder()
        .to_path("/mcp")
        .last()
        .and_then(|r| r.authorization().map(str::to_string))
        .expect("the probe sent a token");
    let issued = up
        .oauth()
        .validate(bearer.trim_start_matches("Bearer "))
        .expect("a token the AS issued");
    assert_eq!(issued.grant, "client_credentials");
    let api = reqwest::get(format!("{}/api/status", broker.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(api.contains("\"client_credentials\""), "{api}");
    assert!(
        !api.contains(bearer.trim_start_matches("Bearer ")) && !api.contains("m2m-secret"),
        "no token or secret in the status"
    );
    // The next probe reuses the cached token.
    let deletes = up.recorder().count("DELETE", "/mcp");
    broker.broker.health().check_now(&name("robot"));
    let ended = up
        .recorder()
        .wait_until(|all| all.iter().filter(|r| r.method == "DELETE").count() > deletes);
    tokio::time::timeout(STATUS_WAIT, ended)
        .await
        .expect("a second probe ran");
    assert_eq!(count(&up.counters().tools_list), 2);
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 1);
    assert!(broker.browser.opened().is_empty());
}

#[tokio::test]
async fn an_m2m_server_whose_token_endpoint_is_down_reports_the_cause() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    up.auth_server.stop();
    let broker = m2m_broker(&up).await;
    let s = wait_settled(&mut broker.broker.status(), "robot").await;
    match &s.state {
        HealthState::Unreachable { cause: text } | HealthState::AuthRejected { detail: text } => {
            assert!(
                text.to_lowercase().contains("connect")
                    || text.contains(&up.auth_server.token_url()),
                "{text}"
            )
        }
        other => panic!("expected unreachable or auth rejected, got {other:?}"),
    }
    assert_eq!(
        count(&up.counters().tools_list),
        0,
        "no MCP call without a token"
    );
}

#[tokio::test]
async fn an_m2m_server_whose_token_endpoint_fails_reports_the_upstream_error() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    up.oauth().set_fault(TokenFault::Status(
        401,
        json!({"error": "invalid_client", "error_description": "client disabled by admin"}),
    ));
    let broker = m2m_broker(&up).await;
    let mut rx = broker.broker.status();
    let s = wait_settled(&mut rx, "robot").await;
    let HealthState::AuthRejected { detail } = &s.state else {
        panic!("expected auth rejected, got {:?}", s.state)
    };
    assert!(
        detail.contains("invalid_client") || detail.contains("client disabled by admin"),
        "{detail}"
    );
    assert!(broker.browser.opened().is_empty());
}

#[tokio::test]
async fn an_interactive_server_without_a_token_needs_sign_in_without_any_token_request() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let broker = interactive_broker(&up).await;
    let s = wait_settled(&mut broker.broker.status(), "human").await;
    assert!(
        matches!(s.state, HealthState::NeedsSignIn { .. }),
        "{:?}",
        s.state
    );
    assert_eq!(count(&up.oauth().counters.token), 0);
    assert_eq!(count(&up.oauth().counters.authorize), 0);
    assert!(
        broker.browser.opened().is_empty(),
        "a probe never opens a browser"
    );
    assert!(!s.token.has_token);
}

#[tokio::test]
async fn a_revoked_refresh_token_moves_the_server_to_needs_sign_in() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let broker = interactive_broker(&up).await;
    let mut rx = broker.broker.status();
    wait_settled(&mut rx, "human").await;
    broker.sign_in("human").await;
    // A finished sign-in restarts the monitor, which probes at once (the old one sleeps for a
    // whole interval after its failure, so this healthy state is the new monitor's).
    let s = wait_status(&mut rx, "human", |s| {
        matches!(s.state, HealthState::Healthy { .. })
    })
    .await;
    assert!(
        s.token.has_token && s.token.has_refresh_token,
        "{:?}",
        s.token
    );
    up.oauth().revoke_all();
    broker.broker.health().check_now(&name("human"));
    let s = wait_status(&mut rx, "human", |s| {
        matches!(s.state, HealthState::NeedsSignIn { .. })
    })
    .await;
    assert!(
        count(&up.oauth().counters.token_refresh) >= 1,
        "the broker tried its refresh token first"
    );
    assert_eq!(
        broker.browser.opened().len(),
        1,
        "only the explicit sign-in opened a browser"
    );
    assert!(!s.token.has_refresh_token, "{:?}", s.token);
}

#[tokio::test]
async fn an_upstream_that_changes_its_authorization_server_asks_for_sign_in_again() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let other = TestAs::start(AsOptions::default()).await;
    let broker = interactive_broker(&up).await;
    let mut rx = broker.broker.status();
    wait_settled(&mut rx, "human").await;
    broker.sign_in("human").await;
    // A finished sign-in restarts the monitor, which probes at once (the old one sleeps for a
    // whole interval after its failure, so this healthy state is the new monitor's).
    wait_status(&mut rx, "human", |s| {
        matches!(s.state, HealthState::Healthy { .. })
    })
    .await;
    up.set_authorization_server(&other.issuer);
    broker.broker.health().check_now(&name("human"));
    let s = wait_status(&mut rx, "human", |s| {
        matches!(s.state, HealthState::NeedsSignIn { .. })
    })
    .await;
    let HealthState::NeedsSignIn { reason } = s.state else {
        unreachable!()
    };
    assert!(reason.contains(&other.issuer), "{reason}");
    assert_eq!(count(&other.state.counters.token), 0);
}

#[tokio::test]
async fn status_is_unknown_before_the_first_probe_then_checking_while_it_runs() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    up.oauth().set_fault(TokenFault::Hold);
    let store = Arc::new(MemoryStore::default());
    store
        .set("config/robot/client_secret", &Secret::new("m2m-secret"))
        .unwrap();
    let config = json!({ "mcp_servers": { "robot": m2m_entry(&up, "robot") } });
    let broker = TestBroker::start_with(
        config,
        BrokerOptions {
            background: false,
            store,
        },
    )
    .await;
    let mut rx = broker.broker.status();
    assert_eq!(rx.borrow()[&name("robot")].state, HealthState::Unknown);
    broker.broker.start_health();
    wait_status(&mut rx, "robot", |s| s.state == HealthState::Checking).await;
    tokio::time::timeout(STATUS_WAIT, up.oauth().recorder.wait_for(1))
        .await
        .expect("the probe asks for a token");
    assert_eq!(
        rx.borrow()[&name("robot")].state,
        HealthState::Checking,
        "still checking while the token request is held"
    );
    up.oauth().release_token();
    let s = wait_status(&mut rx, "robot", |s| {
        matches!(s.state, HealthState::Healthy { .. })
    })
    .await;
    assert_eq!(
        s.flow.and_then(|c| c.flow),
        Some(mcp_auth_broker::upstream::Flow::ClientCredentials)
    );
}

#[tokio::test]
async fn an_api_key_server_is_probed_with_its_key_header() {
    let up = TestUpstream::start(UpstreamOptions {
        auth: Requires::Header("x-api-key".into(), "key-123".into()),
        ..Default::default()
    })
    .await;
    let store = Arc::new(MemoryStore::default());
    store
        .set("config/keyed/auth_value", &Secret::new("key-123"))
        .unwrap();
    let config = json!({ "mcp_servers": { "keyed": { "url": up.mcp_url, "auth_type": "api_key", "auth_value": "keychain:config/keyed/auth_value" } } });
    let broker = TestBroker::start_with(
        config,
        BrokerOptions {
            background: true,
            store,
        },
    )
    .await;
    let s = wait_settled(&mut broker.broker.status(), "keyed").await;
    assert!(
        matches!(s.state, HealthState::Healthy { tools: 3, .. }),
        "{:?}",
        s.state
    );
    let probe = up
        .recorder()
        .to_path("/mcp")
        .into_iter()
        .filter(|r| r.header("x-api-key").is_some())
        .count();
    assert!(
        probe >= 3,
        "initialize, initialized and tools/list carry the key"
    );
}

#[tokio::test]
async fn a_delegated_server_reads_reachable_with_clients_signing_in_themselves() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let config = json!({ "mcp_servers": { "passthru": { "url": up.mcp_url, "delegate_auth_to_upstream": true } } });
    let broker = TestBroker::start_with(
        config,
        BrokerOptions {
            background: true,
            ..Default::default()
        },
    )
    .await;
    let s = wait_settled(&mut broker.broker.status(), "passthru").await;
    let HealthState::Delegated { detail } = &s.state else {
        panic!("expected delegated, got {:?}", s.state)
    };
    assert!(
        detail.contains("each local client signs in to the upstream itself"),
        "{detail}"
    );
    assert_eq!(s.state.label(), "reachable");
    assert_eq!(count(&up.oauth().counters.token), 0);
    assert!(broker.browser.opened().is_empty());
}
