//! URL-mode elicitation (MCP 2025-11-25) on `/mcp` and on `/{server}/mcp`: a client that
//! declares it gets a `-32042` error with a one-time sign-in link when it calls a tool of a server
//! that needs sign-in;
//! opening the link signs the broker in (the browser is redirected through the upstream's
//! authorization server), the session hears `notifications/elicitation/complete`, and the call
//! works. Real broker, upstream, AS and sockets; the SDK test uses the official TypeScript SDK.

use crate::gateway_common;
use crate::support;

use gateway_common::*;
use serde_json::{json, Value};
use support::*;

async fn signed_out_broker() -> (TestUpstream, TestBroker) {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"human": {
        "url": up.mcp_url, "auth_type": "oauth2", "oauth_flow": "authorization_code"}}}))
    .await;
    (up, b)
}

fn echo(id: u64) -> Value {
    tool_call(id, "human__echo", json!({"text": "hi"}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_link_signs_the_server_in_once_and_the_session_hears_it_complete() {
    let (up, b) = signed_out_broker().await;
    let key = api_key(&b).await;
    let endpoint = format!("{}/mcp", b.base_url);
    let sid = open_declaring(&endpoint, &key, json!({"elicitation": {"url": {}}})).await;
    let mut stream = Messages::new(get_stream(&endpoint, &key, &sid).await);

    let (_, refused) = aggregate_rpc(&b, &key, Some(&sid), echo(2)).await;
    assert_eq!(refused["error"]["code"], -32042, "{refused}");
    let e = &refused["error"]["data"]["elicitations"][0];
    assert_eq!(e["mode"], "url", "{refused}");
    let url = e["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/signin/", b.base_url)), "{url}");
    assert!(!url.contains(&key), "the link carries no credential");
    assert_eq!(
        count(&up.oauth().counters.authorize),
        0,
        "nothing started before the link is opened"
    );

    // The person's browser: follows the redirects to the AS (which approves) and back.
    let browser = reqwest::Client::new();
    let page = browser.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("You are signed in to <b>human</b>"));
    let complete = loop {
        let m = stream.next().await;
        if m["method"] == "notifications/elicitation/complete" {
            break m;
        }
    };
    assert_eq!(complete["params"]["elicitationId"], e["elicitationId"]);

    let (_, ok) = aggregate_rpc(&b, &key, Some(&sid), echo(3)).await;
    assert_eq!(ok["result"]["content"][0]["text"], "hi", "{ok}");

    let again = http().get(url).send().await.unwrap();
    assert_eq!(again.status(), 404, "a link works once");
    assert!(again
        .text()
        .await
        .unwrap()
        .contains("already used or has expired"));
    assert_eq!(count(&up.oauth().counters.authorize), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_url_elicitation_gets_the_error_result_and_no_link() {
    let (_up, b) = signed_out_broker().await;
    let key = api_key(&b).await;
    let sid = aggregate_open(&b, &key).await;
    let (_, r) = aggregate_rpc(&b, &key, Some(&sid), echo(2)).await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(!r.to_string().contains("/signin/"), "{r}");
    let made_up = http()
        .get(format!("{}/signin/not-a-link", b.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(made_up.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_sdk_follows_the_sign_in_link_and_retries() {
    let (_up, b) = signed_out_broker().await;
    let report = node::run_script(
        "elicit_client.mjs",
        &[&format!("{}/mcp", b.base_url), "human__echo"],
    )
    .await;
    assert_eq!(report["code"], -32042, "{report}");
    assert_eq!(report["elicitation"]["mode"], "url", "{report}");
    assert_eq!(
        report["page"],
        json!({"status": 200, "signedIn": true}),
        "{report}"
    );
    assert_eq!(
        report["completed"],
        json!([report["elicitation"]["elicitationId"]]),
        "{report}"
    );
    assert_eq!(
        report["second"]["content"][0]["text"], "after sign-in",
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_server_session_that_declared_url_elicitation_gets_a_link_after_a_sign_out() {
    let (up, b) = signed_out_broker().await;
    b.sign_in("human").await;
    let key = api_key(&b).await;
    let url = b.client_url("human");
    let sid = open_declaring(&url, &key, json!({"elicitation": {"url": {}}})).await;
    let plain = open_session(&url, &key).await;
    let cfg = b.broker.server("human").unwrap();
    b.broker.upstream().sign_out(&cfg).await.unwrap();

    let call = tool_call(2, "echo", json!({"text": "back"}));
    let refused: Value = post(&url, &key, Some(&sid), &call)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], -32042, "{refused}");
    let link = refused["error"]["data"]["elicitations"][0]["url"]
        .as_str()
        .unwrap();
    assert!(
        link.starts_with(&format!("{}/signin/", b.base_url)),
        "{link}"
    );
    let other = post(&url, &key, Some(&plain), &call).await;
    assert_ne!(
        other.status(),
        200,
        "a session without the capability keeps the old answer"
    );
    assert!(!other.text().await.unwrap().contains("/signin/"));

    let page = reqwest::Client::new().get(link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let ok: Value = post(&url, &key, Some(&sid), &call)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ok["result"]["content"][0]["text"], "back", "{ok}");
    assert_eq!(count(&up.oauth().counters.authorize), 2);
}
