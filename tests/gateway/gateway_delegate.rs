//! Delegate mode (`delegate_auth_to_upstream: true`) over real sockets: the official TypeScript
//! SDK signs in with the upstream's own authorization server *through* the broker, and the
//! client's credential reaches that one upstream only (not another server, its AS, health
//! probes, the broker's files nor its log). Challenges, metadata and refusals are in
//! `gateway_delegate_http.rs`. Needs Node >= 22 and `tests/js`.

use crate::gateway_common;
use crate::support;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use gateway_common::*;
use mcp_auth_broker::health::HealthState;
use serde_json::{json, Value};
use support::*;

/// Every log line of this test process, unredacted, at trace level for the broker: a credential
/// that reaches a log statement shows up here even if the log file's redaction would hide it.
fn captured_log() -> &'static Path {
    static LOG: OnceLock<PathBuf> = OnceLock::new();
    LOG.get_or_init(|| {
        let path = std::env::temp_dir().join(format!(
            "gateway-delegate-{}-{}.log",
            std::process::id(),
            random_token()
        ));
        let file = std::fs::File::create(&path).expect("log file");
        tracing_subscriber::fmt()
            .with_env_filter("debug,mcp_auth_broker=trace")
            .with_ansi(false)
            .with_writer(Mutex::new(file))
            .try_init()
            .expect("this test binary installs the only subscriber");
        path
    })
}

use support::node::sdk_client;

/// The bearer tokens an upstream's `/mcp` received.
fn bearers(up: &TestUpstream) -> Vec<String> {
    up.recorder()
        .to_path("/mcp")
        .iter()
        .filter_map(|r| {
            r.authorization()
                .map(|a| a.trim_start_matches("Bearer ").to_string())
        })
        .collect()
}

fn delegate(up: &TestUpstream) -> Value {
    json!({"url": up.mcp_url, "delegate_auth_to_upstream": true})
}

/// True when `needle` occurs in any recorded request (path, query or any header value).
fn seen_by(recorded: &[Recorded], needle: &str) -> bool {
    recorded.iter().any(|r| {
        r.path.contains(needle)
            || r.query.as_deref().is_some_and(|q| q.contains(needle))
            || r.headers
                .values()
                .any(|v| String::from_utf8_lossy(v.as_bytes()).contains(needle))
    })
}

/// Files under `dir` (recursively) whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|b| String::from_utf8_lossy(&b).contains(needle))
            {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_signs_in_with_the_upstreams_own_authorization_server_through_a_delegate_server(
) {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(config(json!({"deleg": delegate(&up)}))).await;
    let report = sdk_client(&b.client_url("deleg")).await;
    assert_eq!(
        report["tools"],
        json!(["echo", "add", "slow_stream"]),
        "{report}"
    );
    assert_eq!(
        report["echo"]["content"][0]["text"],
        "hello through the broker"
    );
    assert_eq!(
        report["authorized"], true,
        "the SDK ran an OAuth flow: {report}"
    );
    assert_eq!(
        report["iss"], up.auth_server.issuer,
        "the authorization response came from the upstream's AS, not the broker"
    );
    assert!(
        b.broker.issuer().list_clients().is_empty(),
        "nobody registered with the broker"
    );
    assert_eq!(
        count(&up.oauth().counters.register),
        1,
        "the SDK registered with the upstream's AS"
    );
    assert_eq!(count(&up.oauth().counters.token_authorization_code), 1);
    let tokens = bearers(&up);
    assert!(
        !tokens.is_empty(),
        "the client's token reached the upstream"
    );
    for t in &tokens {
        assert!(!t.starts_with("mab_"), "no broker credential goes upstream");
        let issued = up
            .oauth()
            .validate(t)
            .expect("every token upstream is the upstream AS's");
        assert_eq!(
            Some(&issued.client_id),
            report["clientId"].as_str().map(String::from).as_ref()
        );
        assert_eq!(
            issued.resource.as_deref(),
            Some(b.client_url("deleg").as_str()),
            "the documented limitation: the AS sees the broker's URL as the resource"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegated_clients_credential_never_reaches_another_server_nor_the_brokers_files_or_log()
{
    let log = captured_log();
    let deleg = TestUpstream::start(UpstreamOptions::oauth()).await;
    let other = TestUpstream::start(UpstreamOptions::oauth()).await;
    let fixed = TestUpstream::start(UpstreamOptions {
        auth: Requires::Static("static-upstream-token".into()),
        ..Default::default()
    })
    .await;
    std::env::set_var("GATEWAY_DELEGATE_STATIC", "static-upstream-token");
    let b = TestBroker::start_with(
        config(json!({
            "deleg": delegate(&deleg),
            "other": {"url": other.mcp_url, "auth_type": "oauth2"},
            "fixed": {"url": fixed.mcp_url, "auth_type": "bearer_token", "auth_value": "os.environ/GATEWAY_DELEGATE_STATIC"},
        })),
        BrokerOptions { background: true, ..Default::default() },
    )
    .await;
    let mut status = b.broker.health().subscribe();
    let health = support::health::wait_settled(&mut status, "deleg").await;
    assert!(
        matches!(&health.state, HealthState::Delegated { detail } if detail.contains("each local client signs in")),
        "a delegate server asking for sign-in is reachable, not an error: {health:?}"
    );
    // The broker's own upstream sign-in for "other", used by a script through the broker.
    let cfg = b.broker.config().server("other").unwrap().clone();
    let sign_in = b
        .broker
        .upstream()
        .sign_in(&cfg, &b.broker.settings().opener)
        .await
        .unwrap();
    sign_in
        .done
        .await
        .unwrap()
        .expect("the broker signed in to other");

    sdk_client(&b.client_url("deleg")).await;
    let token = bearers(&deleg)
        .pop()
        .expect("the client's token reached its upstream");

    // A mistaken client sends its delegated token to other servers: refused at the broker.
    for server in ["other", "fixed"] {
        let r = http()
            .post(b.client_url(server))
            .bearer_auth(&token)
            .json(&initialize())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{server}: not a broker token");
    }
    // Normal traffic and health probes of the other servers, after the delegated session.
    let key = api_key(&b).await;
    for server in ["other", "fixed"] {
        let r = post(&b.client_url(server), &key, None, &initialize()).await;
        assert_eq!(r.status(), 200, "{server} works through the broker");
    }
    let before = (
        other.recorder().len(),
        fixed.recorder().len(),
        deleg.recorder().len(),
    );
    for server in ["other", "fixed", "deleg"] {
        b.broker
            .health()
            .check_now(&mcp_auth_broker::config::ServerName::parse(server).unwrap());
    }
    other.recorder().wait_until(|r| r.len() > before.0).await;
    fixed.recorder().wait_until(|r| r.len() > before.1).await;
    deleg.recorder().wait_until(|r| r.len() > before.2).await;

    assert!(
        !seen_by(&other.recorder().all(), &token),
        "the other upstream never saw it"
    );
    assert!(
        !seen_by(&other.auth_server.state.recorder.all(), &token),
        "nor its AS"
    );
    assert!(
        !seen_by(&fixed.recorder().all(), &token),
        "nor the static-token upstream"
    );
    assert!(
        !seen_by(&deleg.auth_server.state.recorder.all(), &token),
        "the broker's discovery of the delegate upstream's AS never carries it"
    );
    let with_token = deleg
        .recorder()
        .to_path("/mcp")
        .into_iter()
        .filter(|r| seen_by(std::slice::from_ref(r), &token))
        .count();
    let probes_without = deleg
        .recorder()
        .all()
        .iter()
        .filter(|r| r.authorization().is_none())
        .count();
    assert!(
        with_token > 0 && probes_without > 0,
        "health probes and discovery go without it"
    );
    assert_eq!(
        files_containing(b.dir.path(), &token),
        Vec::<PathBuf>::new(),
        "not in the broker's files"
    );
    let logged = std::fs::read_to_string(log).unwrap();
    assert!(logged.contains("mcp_auth_broker"), "the capture works");
    assert!(!logged.contains(&token), "not in the broker's log");
}
