//! The aggregate endpoint `/mcp` over time: the official TypeScript SDK client through it while
//! upstreams change and sign-ins end, and announcements on the client's event stream.

use crate::gateway_common;
use crate::support;

use std::process::Stdio;
use std::time::Duration;

use gateway_common::*;
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_uses_two_oauth_servers_through_one_endpoint_and_hears_of_changes() {
    let interactive =
        TestUpstream::start(UpstreamOptions::oauth().with_response(ResponseMode::Sse)).await;
    let m2m = TestUpstream::start(UpstreamOptions::oauth()).await;
    std::env::set_var("AGGREGATE_M2M_SECRET", "m2m-secret");
    let b = TestBroker::start(json!({"mcp_servers": {
        "inter": {"url": interactive.mcp_url, "auth_type": "oauth2"},
        "m2m": {"url": m2m.mcp_url, "auth_type": "oauth2", "oauth_flow": "client_credentials",
                "client_id": "m2m-client", "client_secret": "os.environ/AGGREGATE_M2M_SECRET",
                "token_url": m2m.auth_server.token_url()}}}))
    .await;
    let cfg = b.broker.server("inter").unwrap();
    let sign_in = b
        .broker
        .upstream()
        .sign_in(&cfg, &b.browser.opener())
        .await
        .unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(30), sign_in.done)
            .await
            .unwrap()
            .unwrap(),
        Ok(())
    );

    let mut child = tokio::process::Command::from(node::node_command())
        .args([
            "aggregate_client.mjs",
            &format!("{}/mcp", b.base_url),
            "inter__echo",
            "m2m__add",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(Duration::from_secs(60), out.next_line())
            .await
            .expect("the SDK client reports within 60 s")
            .unwrap();
        match line {
            Some(l) => serde_json::from_str(&l).unwrap_or_else(|e| panic!("bad report {l}: {e}")),
            None => {
                let mut err = String::new();
                tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut err)
                    .await
                    .unwrap();
                panic!("the SDK client stopped early: {err}")
            }
        }
    };

    let listed = next().await;
    assert_eq!(listed["phase"], "listed");
    assert_eq!(
        listed["authorized"], true,
        "the SDK signed in through the broker: {listed}"
    );
    assert_eq!(listed["iss"], b.base_url);
    assert_eq!(
        listed["tools"],
        json!([
            "inter__echo",
            "inter__add",
            "inter__slow_stream",
            "m2m__echo",
            "m2m__add",
            "m2m__slow_stream"
        ]),
        "{listed}"
    );
    assert_eq!(
        listed["calls"]["inter__echo"]["content"][0]["text"], "hello inter__echo",
        "{listed}"
    );
    assert_eq!(
        listed["calls"]["m2m__add"]["content"][0]["text"], "5",
        "{listed}"
    );
    for up in [&interactive, &m2m] {
        let seen: Vec<_> = up
            .recorder()
            .to_path("/mcp")
            .iter()
            .filter_map(|r| r.authorization().map(str::to_string))
            .collect();
        assert!(
            !seen.is_empty()
                && seen.iter().all(|a| up
                    .oauth()
                    .validate(a.trim_start_matches("Bearer "))
                    .is_some()),
            "only the upstream's own tokens reach it"
        );
    }

    // A list change upstream reaches the client once the broker listens to both upstreams.
    let listening = async {
        while count(&interactive.counters().get_streams) == 0
            || count(&m2m.counters().get_streams) == 0
        {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), listening)
        .await
        .expect("the broker opened both upstream GET streams");
    let mut tools = mcp::default_tools();
    tools.push(json!({"name": "fresh", "inputSchema": {"type": "object"}}));
    m2m.set_tools(tools);
    m2m.notify_tools_changed();
    stdin.write_all(b"m2m__fresh\n").await.unwrap();
    let changed = next().await;
    assert_eq!(changed["phase"], "changed");
    assert!(
        changed["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("m2m__fresh")),
        "{changed}"
    );

    // Signed out of one server: the other still works and the client is told why.
    tokio::time::timeout(Duration::from_secs(20), b.broker.upstream().sign_out(&cfg))
        .await
        .expect("sign-out finishes")
        .unwrap();
    stdin.write_all(b"next\n").await.unwrap();
    let after = next().await;
    assert_eq!(after["phase"], "signed_out");
    assert_eq!(
        after["tools"],
        json!(["m2m__echo", "m2m__add", "m2m__slow_stream", "m2m__fresh"]),
        "{after}"
    );
    let notice = after["notices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["data"]["server"] == "inter")
        .unwrap_or_else(|| panic!("a notice names the server: {after}"));
    assert_eq!(notice["level"], "warning");
    assert!(
        notice["data"]["message"]
            .as_str()
            .unwrap()
            .contains("needs sign-in"),
        "{notice}"
    );
    assert_eq!(after["call"]["isError"], true, "{after}");
    assert!(
        after["call"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("\"inter\" needs sign-in"),
        "{after}"
    );
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the SDK client exits");
    assert!(status.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_turning_unusable_is_announced_on_the_clients_event_stream() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let flaky = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start_with(
        json!({"mcp_servers": {"a": {"url": up.mcp_url}, "flaky": {"url": flaky.mcp_url}}}),
        BrokerOptions {
            background: true,
            ..Default::default()
        },
    )
    .await;
    let mut status = b.broker.status();
    for server in ["a", "flaky"] {
        health::wait_status(&mut status, server, |s| {
            matches!(
                s.state,
                mcp_auth_broker::health::HealthState::Healthy { .. }
            )
        })
        .await;
    }
    let key = api_key(&b).await;
    let sid = aggregate_open(&b, &key).await;
    let mut stream = Messages::new(get_stream(&format!("{}/mcp", b.base_url), &key, &sid).await);
    flaky.stop();
    b.broker
        .health()
        .check_now(&mcp_auth_broker::config::ServerName::parse("flaky").unwrap());
    let notice = stream.next().await;
    assert_eq!(notice["method"], "notifications/message", "{notice}");
    assert_eq!(notice["params"]["level"], "warning", "{notice}");
    assert_eq!(notice["params"]["data"]["server"], "flaky", "{notice}");
    assert!(
        notice["params"]["data"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{notice}"
    );
    assert_eq!(
        stream.next().await["method"],
        "notifications/tools/list_changed",
        "the notice comes first, then the change"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_idle_for_an_hour_is_closed_when_the_next_one_opens() {
    use mcp_auth_broker::aggregate::Aggregate;
    use mcp_auth_broker::issuer::Principal;
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"a": {"url": up.mcp_url}}})).await;
    let aggregate = Aggregate::new(b.broker.clone());
    let owner = Principal::ApiKey { id: "k".into() };
    let old = aggregate.open(owner.clone(), "2025-11-25".into(), 1_000);
    let busy = aggregate.open(owner.clone(), "2025-11-25".into(), 1_000);
    assert!(
        aggregate.get(&busy, &owner, 3_000).is_some(),
        "a request keeps a session alive"
    );
    let fresh = aggregate.open(owner.clone(), "2025-11-25".into(), 1_000 + 3_601);
    assert!(
        aggregate.get(&old, &owner, 4_602).is_none(),
        "the idle session was closed"
    );
    assert!(aggregate.get(&busy, &owner, 4_602).is_some());
    assert!(aggregate.get(&fresh, &owner, 4_602).is_some());
    let stranger = Principal::ApiKey { id: "other".into() };
    assert!(
        aggregate.get(&fresh, &stranger, 4_602).is_none(),
        "only its owner sees a session"
    );
}
