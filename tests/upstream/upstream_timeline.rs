//! Each server's auth timeline, read from the running broker's `/api/status`: the steps of an
//! interactive sign-in and of a machine-to-machine token, each upstream rejection and what the
//! broker did about it, in order, with no secret in any detail. Real broker, upstream and AS.

use crate::gateway_common;
use crate::support;

use gateway_common::*;
use mcp_auth_broker::health::HealthState;
use serde_json::{json, Value};
use support::providers;
use support::*;

async fn timeline(b: &TestBroker, server: &str) -> Vec<Value> {
    let status: Value = reqwest::get(format!("{}/api/status", b.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    status["servers"][server]["timeline"]
        .as_array()
        .unwrap_or_else(|| panic!("no timeline for {server}: {status}"))
        .clone()
}

/// Asserts `steps` contains `wanted` (kind, ok, a piece of the detail) in this order, other
/// steps (health checks) allowed in between.
fn in_order(steps: &[Value], wanted: &[(&str, bool, &str)]) {
    let mut rest = steps.iter();
    for (kind, ok, piece) in wanted {
        let found = rest.any(|s| {
            s["kind"] == *kind
                && s["ok"] == *ok
                && s["detail"].as_str().is_some_and(|d| d.contains(piece))
        });
        assert!(
            found,
            "no {kind} step (ok: {ok}) saying \"{piece}\" after the ones before: {steps:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interactive_servers_timeline_reads_from_discovery_to_a_refused_token_and_its_refresh() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"human": {"url": up.mcp_url}}})).await;
    b.sign_in("human").await;
    // The upstream forgets the access token: the next call is refused and the broker refreshes.
    up.oauth().expire_access_tokens();
    let key = api_key(&b).await;
    let sid = open_session(&b.client_url("human"), &key).await;
    let listed = post(&b.client_url("human"), &key, Some(&sid), &TOOLS_LIST(2)).await;
    assert_eq!(listed.status(), 200, "the call works after the refresh");

    let steps = timeline(&b, "human").await;
    in_order(
        &steps,
        &[
            (
                "discovery",
                true,
                &format!("authorization server {}", up.as_url),
            ),
            ("registration", true, "dynamically registered client"),
            ("sign_in", true, "started"),
            ("sign_in", true, "signed in"),
            ("rejected", false, "HTTP 401"),
            ("refresh", true, "token refreshed"),
        ],
    );
    let text = serde_json::to_string(&steps).unwrap();
    let token = oauth_token(&b, "human");
    assert!(!text.contains(&token), "no token in the timeline");
    assert!(steps
        .iter()
        .all(|s| s["at"].as_u64().is_some_and(|t| t > 1_700_000_000)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_servers_timeline_shows_each_token_fetch_and_why_one_failed() {
    std::env::set_var("TIMELINE_M2M_SECRET", "m2m-secret");
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"svc": {
        "url": up.mcp_url, "auth_type": "oauth2", "client_id": "m2m-client",
        "client_secret": "os.environ/TIMELINE_M2M_SECRET", "token_url": up.auth_server.token_url()}}}))
    .await;
    let server = b.broker.server("svc").unwrap();
    let upstream = b.broker.upstream();
    let first = upstream.credential(&server).await.expect("a token");
    up.oauth().revoke_all();
    up.oauth().set_fault(TokenFault::ServerError);
    let refused = upstream.after_rejection(&server, &first).await;
    assert!(refused.is_err(), "the AS is failing");

    let steps = timeline(&b, "svc").await;
    in_order(
        &steps,
        &[
            ("token", true, "fetched, valid for"),
            ("rejected", false, "HTTP 401"),
            ("token", false, "500"),
        ],
    );
    let text = serde_json::to_string(&steps).unwrap();
    assert!(!text.contains("m2m-secret"), "no client secret");
    assert!(
        !text.contains(first.bearer.unwrap().expose()),
        "no token in the timeline"
    );
}

/// A broker with health monitors over one server, once its status says it needs sign-in.
async fn waiting_for_sign_in(name: &str, entry: Value) -> TestBroker {
    let b = TestBroker::start_with(
        json!({ "mcp_servers": { name: entry } }),
        BrokerOptions {
            background: true,
            ..Default::default()
        },
    )
    .await;
    support::health::wait_status(&mut b.broker.status(), name, |s| {
        matches!(s.state, HealthState::NeedsSignIn { .. })
    })
    .await;
    b
}

/// Waits until the status line of `name` says its last sign-in failed; returns that reason.
async fn failed_sign_in_reason(b: &TestBroker, name: &str) -> String {
    let s = support::health::wait_status(&mut b.broker.status(), name, |s| {
        matches!(&s.state, HealthState::NeedsSignIn { reason } if reason.contains("the last sign-in failed"))
    })
    .await;
    match s.state {
        HealthState::NeedsSignIn { reason } => reason,
        other => unreachable!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pkce_refusal_names_the_configured_endpoints_in_the_timeline_and_the_status_line() {
    let up = providers::entra().await;
    let entry = json!({"url": up.mcp_url, "client_id": providers::ENTRA_CLIENT_ID});
    let b = waiting_for_sign_in("entra", entry).await;
    let server = b.broker.server("entra").unwrap();
    let refused = b
        .broker
        .upstream()
        .sign_in(&server, &b.broker.settings().opener)
        .await
        .err()
        .expect("metadata without PKCE is refused")
        .to_string();
    for piece in [
        "does not advertise PKCE S256",
        "\"authorization_url\" and \"token_url\"",
        "bypass",
    ] {
        assert!(refused.contains(piece), "{piece}: {refused}");
    }
    assert!(b.browser.opened().is_empty(), "no browser was opened");
    in_order(
        &timeline(&b, "entra").await,
        &[(
            "sign_in",
            false,
            "configured endpoints bypass the metadata check",
        )],
    );
    let reason = failed_sign_in_reason(&b, "entra").await;
    assert!(
        reason.contains("\"authorization_url\" and \"token_url\""),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_resource_says_to_set_send_resource_false_in_readable_words_everywhere() {
    let up = providers::entra().await;
    let mut entry = providers::entra_config(&up);
    entry.as_object_mut().unwrap().remove("send_resource");
    let b = waiting_for_sign_in("entra", entry).await;
    let server = b.broker.server("entra").unwrap();
    let started = b
        .broker
        .upstream()
        .sign_in(&server, &b.broker.settings().opener)
        .await
        .expect("configured endpoints: the sign-in starts");
    let failed = tokio::time::timeout(SIGN_IN_WAIT, started.done)
        .await
        .expect("the callback arrives")
        .unwrap()
        .expect_err("the authorization server refuses resource");
    let words = "not supported. Trace ID:";
    let fix = "set \"send_resource\": false";
    for said in [failed.clone(), failed_sign_in_reason(&b, "entra").await] {
        assert!(
            said.contains("invalid_target") && said.contains(words),
            "{said}"
        );
        assert!(said.contains(fix), "{said}");
    }
    in_order(&timeline(&b, "entra").await, &[("sign_in", false, fix)]);
    let text = serde_json::to_string(&timeline(&b, "entra").await).unwrap();
    assert!(!text.contains("supported.Trace"), "no glued words: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_refusing_resource_says_to_set_send_resource_false() {
    std::env::set_var("TIMELINE_TARGET_SECRET", "m2m-secret");
    let up = TestUpstream::start(UpstreamOptions {
        auth_server: AsOptions {
            refuse_resource: Some(("invalid_target".into(), providers::AADSTS901002.into())),
            ..AsOptions::default()
        },
        ..UpstreamOptions::oauth()
    })
    .await;
    let b = TestBroker::start(json!({"mcp_servers": {"svc": {
        "url": up.mcp_url, "auth_type": "oauth2", "client_id": "m2m-client",
        "client_secret": "os.environ/TIMELINE_TARGET_SECRET", "token_url": up.auth_server.token_url()}}}))
    .await;
    let server = b.broker.server("svc").unwrap();
    let refused = b
        .broker
        .upstream()
        .credential(&server)
        .await
        .expect_err("refused")
        .to_string();
    assert!(
        refused.contains("set \"send_resource\": false") && refused.contains("supported. Trace ID"),
        "{refused}"
    );
    in_order(
        &timeline(&b, "svc").await,
        &[("token", false, "set \"send_resource\": false")],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entra_shaped_server_signs_in_with_endpoints_configured_and_no_resource() {
    let up = providers::entra().await;
    let b =
        TestBroker::start(json!({"mcp_servers": {"entra": providers::entra_config(&up)}})).await;
    b.sign_in("entra").await;
    let key = api_key(&b).await;
    let sid = open_session(&b.client_url("entra"), &key).await;
    let listed = post(&b.client_url("entra"), &key, Some(&sid), &TOOLS_LIST(2)).await;
    assert_eq!(listed.status(), 200, "calls work with the Entra token");
    let authorize = up.oauth().recorder.to_path("/authorize");
    let asked = authorize[0].query.clone().unwrap_or_default();
    assert!(!asked.contains("resource="), "no resource sent: {asked}");
    assert!(asked.contains("client_id=9c2f5a3e"), "{asked}");
    let scope = url::form_urlencoded::parse(asked.as_bytes())
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    assert!(
        scopes.contains(&providers::ENTRA_SCOPE) && scopes.contains(&"offline_access"),
        "the API's scope and offline_access are asked for: {scope}"
    );
    let name = mcp_auth_broker::config::ServerName::parse("entra").unwrap();
    let facts = b.broker.upstream().token_facts(&name).await;
    assert!(
        facts.has_refresh_token,
        "offline_access brought a refresh token: no sign-in again every hour"
    );
}
