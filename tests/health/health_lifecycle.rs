//! Monitors follow the config: removed and disabled servers stop probing at once, changed ones
//! are probed again right away; counts of upstream requests prove it.

use crate::support;

use mcp_auth_broker::config::ServerName;
use mcp_auth_broker::health::HealthState;
use serde_json::json;
use support::health::{wait_removed, wait_settled, wait_status};
use support::*;

fn name(s: &str) -> ServerName {
    ServerName::parse(s).unwrap()
}

/// Runs one more probe of `server` on `up` and waits until it ended (its session `DELETE`).
async fn probe_once_more(broker: &TestBroker, up: &TestUpstream, server: &str) {
    let deletes = up.recorder().count("DELETE", "/mcp");
    broker.broker.health().check_now(&name(server));
    let ended = up.recorder().wait_until(|all| {
        all.iter()
            .filter(|r| r.method == "DELETE" && r.path == "/mcp")
            .count()
            > deletes
    });
    tokio::time::timeout(support::health::STATUS_WAIT, ended)
        .await
        .expect("the other server is probed");
}

#[tokio::test]
async fn a_removed_server_gets_no_further_upstream_requests() {
    let (a, b) = (
        TestUpstream::start(UpstreamOptions::default()).await,
        TestUpstream::start(UpstreamOptions::default()).await,
    );
    let config = |with_a: bool| {
        let mut servers = json!({ "keep": { "url": b.mcp_url } });
        if with_a {
            servers["drop"] = json!({ "url": a.mcp_url });
        }
        json!({ "mcp_servers": servers })
    };
    let broker = TestBroker::start_with(
        config(true),
        BrokerOptions {
            background: true,
            ..Default::default()
        },
    )
    .await;
    let mut rx = broker.broker.status();
    wait_settled(&mut rx, "drop").await;
    wait_settled(&mut rx, "keep").await;
    broker.write_config(config(false)).await;
    wait_removed(&mut rx, "drop").await;
    let seen_by_a = a.recorder().len();
    assert!(seen_by_a >= 4);
    assert_eq!(broker.broker.health().monitored(), vec![name("keep")]);
    broker.broker.health().check_now(&name("drop"));
    probe_once_more(&broker, &b, "keep").await;
    probe_once_more(&broker, &b, "keep").await;
    assert_eq!(
        a.recorder().len(),
        seen_by_a,
        "no request reached the removed server"
    );
    let api: serde_json::Value = reqwest::get(format!("{}/api/status", broker.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(api["servers"].get("drop").is_none());
}

#[tokio::test]
async fn a_disabled_server_is_reported_disabled_and_not_probed() {
    let (a, b) = (
        TestUpstream::start(UpstreamOptions::default()).await,
        TestUpstream::start(UpstreamOptions::default()).await,
    );
    let config = |enabled: bool| json!({ "mcp_servers": { "pause": { "url": a.mcp_url, "enabled": enabled }, "keep": { "url": b.mcp_url } } });
    let broker = TestBroker::start_with(
        config(true),
        BrokerOptions {
            background: true,
            ..Default::default()
        },
    )
    .await;
    let mut rx = broker.broker.status();
    wait_status(&mut rx, "pause", |s| {
        matches!(s.state, HealthState::Healthy { .. })
    })
    .await;
    broker.write_config(config(false)).await;
    wait_status(&mut rx, "pause", |s| s.state == HealthState::Disabled).await;
    let seen = a.recorder().len();
    broker.broker.health().check_now(&name("pause"));
    probe_once_more(&broker, &b, "keep").await;
    assert_eq!(a.recorder().len(), seen);
    broker.write_config(config(true)).await;
    wait_status(&mut rx, "pause", |s| {
        matches!(s.state, HealthState::Healthy { .. })
    })
    .await;
    assert!(
        a.recorder().len() > seen,
        "enabling it again probes at once"
    );
}

#[tokio::test]
async fn a_disabled_server_at_start_is_never_probed() {
    let a = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestUpstream::start(UpstreamOptions::default()).await;
    let config = json!({ "mcp_servers": { "off": { "url": a.mcp_url, "enabled": false }, "on": { "url": b.mcp_url } } });
    let broker = TestBroker::start_with(
        config,
        BrokerOptions {
            background: true,
            ..Default::default()
        },
    )
    .await;
    let mut rx = broker.broker.status();
    wait_status(&mut rx, "off", |s| s.state == HealthState::Disabled).await;
    wait_settled(&mut rx, "on").await;
    probe_once_more(&broker, &b, "on").await;
    assert_eq!(a.recorder().len(), 0);
}

#[tokio::test]
async fn a_changed_url_is_probed_at_once_and_the_old_one_no_more() {
    let old = TestUpstream::start(UpstreamOptions::default()).await;
    let new = TestUpstream::start(UpstreamOptions::default()).await;
    new.set_tools(vec![
        json!({"name": "solo", "inputSchema": {"type": "object"}}),
    ]);
    let broker = TestBroker::start_with(
        json!({ "mcp_servers": { "moving": { "url": old.mcp_url } } }),
        BrokerOptions {
            background: true,
            ..Default::default()
        },
    )
    .await;
    let mut rx = broker.broker.status();
    wait_status(&mut rx, "moving", |s| {
        matches!(s.state, HealthState::Healthy { tools: 3, .. })
    })
    .await;
    broker
        .write_config(json!({ "mcp_servers": { "moving": { "url": new.mcp_url } } }))
        .await;
    wait_status(&mut rx, "moving", |s| {
        matches!(s.state, HealthState::Healthy { tools: 1, .. })
    })
    .await;
    let seen_by_old = old.recorder().len();
    probe_once_more(&broker, &new, "moving").await;
    assert_eq!(old.recorder().len(), seen_by_old);
}

#[tokio::test]
async fn status_is_unknown_until_the_monitors_start() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let broker =
        TestBroker::start(json!({ "mcp_servers": { "later": { "url": up.mcp_url } } })).await;
    assert_eq!(
        broker.broker.health().snapshot()[&name("later")].state,
        HealthState::Unknown
    );
    assert_eq!(up.recorder().len(), 0, "nothing probes before start");
    let mut rx = broker.broker.status();
    broker.broker.start_health();
    let s = wait_settled(&mut rx, "later").await;
    assert!(matches!(s.state, HealthState::Healthy { .. }));
}

#[tokio::test]
async fn shutdown_stops_every_monitor() {
    let a = TestUpstream::start(UpstreamOptions::default()).await;
    let broker = TestBroker::start_with(
        json!({ "mcp_servers": { "s": { "url": a.mcp_url } } }),
        BrokerOptions {
            background: true,
            ..Default::default()
        },
    )
    .await;
    wait_settled(&mut broker.broker.status(), "s").await;
    broker.broker.shutdown();
    let wait = async {
        while !broker.broker.health().monitored().is_empty() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(support::health::STATUS_WAIT, wait)
        .await
        .expect("monitors stop on shutdown");
}

#[tokio::test]
async fn a_new_health_interval_takes_effect_with_a_probe_right_away() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let config = |secs: u64| json!({ "health_interval_secs": secs, "mcp_servers": { "s": { "url": up.mcp_url } } });
    let broker = TestBroker::start_with(
        config(86_400),
        BrokerOptions {
            background: true,
            ..Default::default()
        },
    )
    .await;
    wait_settled(&mut broker.broker.status(), "s").await;
    let before = count(&up.counters().tools_list);
    broker.write_config(config(30)).await;
    tokio::time::timeout(support::health::STATUS_WAIT, async {
        loop {
            // Snapshot first, then check: a request landing in between is not missed.
            let seen = up.recorder().len();
            if count(&up.counters().tools_list) > before {
                break;
            }
            up.recorder().wait_for(seen + 1).await;
        }
    })
    .await
    .expect("the monitor probes under the new interval at once");
}
