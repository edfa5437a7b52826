//! `/{server}/mcp` when the client or the upstream cannot be used: the 401 challenge per host,
//! audience binding, missing upstream tokens (never a 500), unreachable upstreams, one retry
//! after an upstream 401.

use crate::gateway_common;
use crate::support;

use std::time::Duration;

use mcp_auth_broker::events::Event;

use gateway_common::*;
use serde_json::{json, Value};
use support::*;

#[tokio::test]
async fn requests_without_a_valid_token_get_401_with_resource_metadata_for_the_host_used() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(config(json!({"demo": {"url": up.mcp_url}}))).await;
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("http://{host}:{}/demo/mcp", b.port);
        let r = http()
            .post(&url)
            .header("host", format!("{host}:{}", b.port))
            .json(&initialize())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let challenge = r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(challenge, format!("Bearer resource_metadata=\"http://{host}:{}/.well-known/oauth-protected-resource/demo/mcp\"", b.port));
        let bad = http()
            .post(&url)
            .header("host", format!("{host}:{}", b.port))
            .bearer_auth("not-a-broker-token")
            .json(&initialize())
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 401);
        assert!(bad.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\""));
        let prm: Value = http()
            .get(format!(
                "http://{host}:{}/.well-known/oauth-protected-resource/demo/mcp",
                b.port
            ))
            .header("host", format!("{host}:{}", b.port))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            prm["resource"], url,
            "PRM resource is byte-identical to the URL the client used"
        );
        assert_eq!(
            prm["authorization_servers"][0],
            format!("http://{host}:{}", b.port)
        );
    }
    assert_eq!(
        up.recorder().to_path("/mcp").len(),
        0,
        "nothing unauthenticated reaches the upstream"
    );
    let missing = http()
        .get(format!(
            "{}/.well-known/oauth-protected-resource/nope/mcp",
            b.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.json::<Value>().await.unwrap()["error_description"]
        .as_str()
        .unwrap()
        .contains("nope"));
}

#[tokio::test]
async fn an_api_key_with_no_upstream_token_yet_gets_401_with_resource_metadata_never_500() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(config(
        json!({"demo": {"url": up.mcp_url, "auth_type": "oauth2"}}),
    ))
    .await;
    let key = api_key(&b).await;
    let r = post(&b.client_url("demo"), &key, None, &initialize()).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"].to_str().unwrap(),
        format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/demo/mcp\"",
            b.base_url
        )
    );
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("\"demo\" needs sign-in"),
        "{body}"
    );
}

#[tokio::test]
async fn an_oauth_client_with_no_upstream_token_gets_a_tool_error_naming_the_server_and_one_event()
{
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(config(
        json!({"demo": {"url": up.mcp_url, "auth_type": "oauth2"}}),
    ))
    .await;
    let mut events = b.broker.events();
    let token = oauth_token(&b, "demo");
    let url = b.client_url("demo");
    let send = |body: Value| {
        http()
            .post(&url)
            .header("accept", ACCEPT)
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let init = send(initialize()).await.unwrap();
    assert_eq!(init.status(), 200);
    assert!(
        init.headers().get("www-authenticate").is_none(),
        "the upstream's challenge never leaks"
    );
    let init: Value = init.json().await.unwrap();
    assert!(
        init["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"demo\" needs sign-in"),
        "{init}"
    );
    assert!(
        init["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Sign in from the tray"),
        "{init}"
    );
    let call: Value = send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}})).await.unwrap().json().await.unwrap();
    assert_eq!(call["id"], 2);
    assert_eq!(call["result"]["isError"], true);
    assert!(call["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("demo"));
    let first = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(Event::NeedsSignIn { server }) = events.recv().await {
                return server;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(first.as_str(), "demo");
    assert!(
        !matches!(events.try_recv(), Ok(Event::NeedsSignIn { .. })),
        "the event is sent once per change, not per request"
    );
}

#[tokio::test]
async fn needing_sign_in_and_an_unknown_session_are_told_apart_by_their_codes() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(config(
        json!({"demo": {"url": up.mcp_url, "auth_type": "oauth2"}}),
    ))
    .await;
    let token = oauth_token(&b, "demo");
    let needs: Value = http()
        .post(b.client_url("demo"))
        .header("accept", ACCEPT)
        .bearer_auth(&token)
        .json(&initialize())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(needs["error"]["code"], -32031, "{needs}");
    assert_eq!(needs["error"]["data"]["reason"], "needs_sign_in");
    // An unknown session: 404 (the transport's rule) with the SDKs' "session not found" code.
    let key = api_key(&b).await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let url = format!("{}/mcp", b.base_url);
    let gone = post(&url, &key, Some("no-such-session"), &list).await;
    assert_eq!(gone.status(), 404);
    let gone: Value = gone.json().await.unwrap();
    assert_eq!(gone["error"]["code"], -32001, "{gone}");
    assert!(gone["error"].get("data").is_none(), "{gone}");
}

#[tokio::test]
async fn a_token_for_one_server_is_rejected_at_another() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(config(
        json!({"alpha": {"url": up.mcp_url}, "beta": {"url": up.mcp_url}}),
    ))
    .await;
    let token = oauth_token(&b, "alpha");
    let ok = http()
        .post(b.client_url("alpha"))
        .header("accept", ACCEPT)
        .bearer_auth(&token)
        .json(&initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let other = http()
        .post(b.client_url("beta"))
        .header("accept", ACCEPT)
        .bearer_auth(&token)
        .json(&initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 401);
    assert!(other.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("/.well-known/oauth-protected-resource/beta/mcp"));
}

#[tokio::test]
async fn an_unreachable_upstream_gets_a_json_rpc_error_naming_server_and_cause() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let b = TestBroker::start(config(
        json!({"gone": {"url": format!("http://127.0.0.1:{port}/mcp")}}),
    ))
    .await;
    let key = api_key(&b).await;
    let r = post(&b.client_url("gone"), &key, None, &initialize()).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"gone\" is unreachable") && message.to_lowercase().contains("refused"),
        "{message}"
    );
    assert_eq!(body["id"], 1);
}

#[tokio::test]
async fn an_upstream_401_mid_session_gets_one_fresh_credential_and_one_retry() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    std::env::set_var("GATEWAY_PROXY_M2M_SECRET", "m2m-secret");
    let b = TestBroker::start(config(json!({"demo": {
        "url": up.mcp_url, "auth_type": "oauth2", "oauth_flow": "client_credentials",
        "client_id": "m2m-client", "client_secret": "os.environ/GATEWAY_PROXY_M2M_SECRET",
        "token_url": up.auth_server.token_url()}})))
    .await;
    let key = api_key(&b).await;
    let url = b.client_url("demo");
    let sid = open_session(&url, &key).await;
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 1);
    up.oauth().expire_access_tokens();
    let unauthorized_before = count(&up.counters().unauthorized);
    let r = post(
        &url,
        &key,
        Some(&sid),
        &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["result"]["tools"].is_array(),
        "the retry with a fresh token answered: {body}"
    );
    assert_eq!(
        count(&up.counters().unauthorized),
        unauthorized_before + 1,
        "exactly one rejected attempt"
    );
    assert_eq!(
        count(&up.oauth().counters.token_client_credentials),
        2,
        "one fresh credential"
    );
}
