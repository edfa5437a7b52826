//! Each server's auth timeline, read from the running broker's `/api/status`: the steps of an
//! interactive sign-in and of a machine-to-machine token, each upstream rejection and what the
//! broker did about it, in order, with no secret in any detail. Real broker, upstream and AS.

mod gateway_common;
mod support;

use gateway_common::*;
use serde_json::{json, Value};
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
