//! Step-up after an upstream's 403 `insufficient_scope`: a client-credentials server gets a token
//! with the wider scope at once and the call succeeds; an interactive server tells the person to
//! sign in again, and that sign-in asks for the scopes held before plus the challenged ones
//! (SEP-2350); a challenge no sign-in satisfies stops asking (the retry limit). Real broker,
//! real upstream and AS.

use crate::gateway_common;
use crate::support;

use gateway_common::*;
use mcp_auth_broker::upstream::stepup::Forbidden;
use mcp_auth_broker::upstream::timeline::StepKind;
use serde_json::{json, Value};
use support::*;

/// The headers of a 403 step-up challenge for `scope`.
fn challenge(scope: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    let value = format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"");
    h.insert("www-authenticate", value.parse().unwrap());
    h
}

/// The `scope` of the last authorization URL the broker opened.
fn last_asked(b: &TestBroker) -> String {
    let opened = b.browser.opened();
    let last = opened.last().expect("a sign-in opened the browser");
    last.query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn scoped() -> UpstreamOptions {
    UpstreamOptions {
        scoped_tool: Some(("add".into(), "mcp:admin".into())),
        ..UpstreamOptions::oauth()
    }
}

fn m2m(up: &TestUpstream, var: &str) -> Value {
    json!({"url": up.mcp_url, "auth_type": "oauth2", "oauth_flow": "client_credentials",
        "client_id": "m2m-client", "client_secret": format!("os.environ/{var}"),
        "token_url": up.auth_server.token_url(), "scopes": ["mcp:read"]})
}

/// The scopes of the tokens the upstream has received on /mcp, each once, in order. (Not just
/// the last one: a session's background requests may still carry the narrower token.)
fn scopes_seen(up: &TestUpstream) -> Vec<String> {
    let mut scopes = Vec::new();
    for r in up.recorder().to_path("/mcp") {
        let Some(bearer) = r.authorization() else {
            continue;
        };
        let scope = up
            .oauth()
            .validate(bearer.trim_start_matches("Bearer "))
            .and_then(|t| t.scope)
            .unwrap_or_default();
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes
}

fn add(id: u64) -> Value {
    tool_call(id, "add", json!({"a": 1, "b": 2}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_credentials_server_asking_for_more_scope_gets_a_wider_token_and_the_call_succeeds(
) {
    std::env::set_var("STEP_UP_M2M_SECRET", "m2m-secret");
    let up = TestUpstream::start(scoped()).await;
    let b =
        TestBroker::start(json!({"mcp_servers": {"svc": m2m(&up, "STEP_UP_M2M_SECRET")}})).await;
    let key = api_key(&b).await;
    let url = b.client_url("svc");
    let sid = open_session(&url, &key).await;
    let echo: Value = post(
        &url,
        &key,
        Some(&sid),
        &tool_call(2, "echo", json!({"text": "hi"})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(echo["result"]["content"][0]["text"], "hi", "{echo}");
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 1);
    assert_eq!(scopes_seen(&up), ["mcp:read"]);

    let r = post(&url, &key, Some(&sid), &add(3)).await;
    assert_eq!(r.status(), 200);
    let sum: Value = r.json().await.unwrap();
    assert_eq!(sum["result"]["content"][0]["text"], "3", "{sum}");
    assert_eq!(
        count(&up.oauth().counters.token_client_credentials),
        2,
        "one token request for the wider scope"
    );
    assert_eq!(scopes_seen(&up), ["mcp:read", "mcp:read mcp:admin"]);

    // The wider token is cached: neither tool needs another token request.
    let again: Value = post(&url, &key, Some(&sid), &add(4))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["result"]["content"][0]["text"], "3", "{again}");
    post(
        &url,
        &key,
        Some(&sid),
        &tool_call(5, "echo", json!({"text": "x"})),
    )
    .await;
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aggregate_steps_up_a_client_credentials_server_too() {
    std::env::set_var("STEP_UP_M2M_AGG_SECRET", "m2m-secret");
    let up = TestUpstream::start(scoped()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"svc": m2m(&up, "STEP_UP_M2M_AGG_SECRET")}}))
        .await;
    let key = api_key(&b).await;
    let sid = aggregate_open(&b, &key).await;
    let (_, sum) = aggregate_rpc(
        &b,
        &key,
        Some(&sid),
        tool_call(2, "svc__add", json!({"a": 1, "b": 2})),
    )
    .await;
    assert_eq!(sum["result"]["content"][0]["text"], "3", "{sum}");
    assert_eq!(scopes_seen(&up), ["mcp:read", "mcp:read mcp:admin"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interactive_server_asking_for_more_scope_says_sign_in_again_and_that_sign_in_asks_for_it(
) {
    let up = TestUpstream::start(scoped()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"human": {
        "url": up.mcp_url, "auth_type": "oauth2", "oauth_flow": "authorization_code", "scopes": ["mcp:read"]}}}))
    .await;
    b.sign_in("human").await;
    let token = oauth_token(&b, "human");
    let send = |body: Value, sid: Option<String>| {
        let (url, token) = (b.client_url("human"), token.clone());
        async move {
            let mut r = http()
                .post(url)
                .header("accept", ACCEPT)
                .header("mcp-protocol-version", "2025-11-25")
                .bearer_auth(token);
            if let Some(sid) = sid {
                r = r.header("mcp-session-id", sid);
            }
            r.json(&body).send().await.unwrap()
        }
    };
    let opened = send(initialize(), None).await;
    let sid = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(send(initialized, Some(sid.clone())).await.status(), 202);
    let call = |body: Value| {
        let request = send(body, Some(sid.clone()));
        async move {
            let r = request.await;
            assert_eq!(r.status(), 200, "a tool result, never a bare 403");
            r.json::<Value>().await.unwrap()
        }
    };
    let refused = call(add(2)).await;
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    let text = refused["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("scope \"mcp:admin\"")
            && text.contains("sign in again")
            && text.contains("login human"),
        "{text}"
    );
    let name = mcp_auth_broker::config::ServerName::parse("human").unwrap();
    let facts = b.broker.upstream().token_facts(&name).await;
    assert_eq!(
        facts.needs_scope.as_deref(),
        Some("mcp:admin"),
        "the status says what to grant"
    );
    let echo = call(tool_call(3, "echo", json!({"text": "still fine"}))).await;
    assert_eq!(
        echo["result"]["content"][0]["text"], "still fine",
        "the old token keeps working"
    );

    b.sign_in("human").await;
    let asked: Vec<String> = up
        .oauth()
        .recorder
        .to_path("/authorize")
        .iter()
        .filter_map(|r| r.query.clone())
        .collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(
        asked[1].contains("scope=mcp%3Aread+mcp%3Aadmin")
            || asked[1].contains("scope=mcp%3Aread%20mcp%3Aadmin"),
        "the second sign-in asks for the usual scope plus the stepped-up one: {}",
        asked[1]
    );
    let facts = b.broker.upstream().token_facts(&name).await;
    assert_eq!(facts.needs_scope, None, "the new sign-in granted it");
    let sum = call(add(4)).await;
    assert_eq!(sum["result"]["content"][0]["text"], "3", "{sum}");
}

#[tokio::test]
async fn a_step_up_sign_in_asks_for_the_scopes_granted_before_and_the_challenged_ones() {
    let (_up, b, server) = demo_server(
        UpstreamOptions::oauth(),
        json!({"auth_type": "oauth2", "oauth_flow": "authorization_code"}),
    )
    .await;
    let upstream = b.broker.upstream().clone();
    // The first sign-in asked for what a 401 challenge named, not the usual scope.
    let started = upstream
        .sign_in_with_scope(
            &server,
            &b.broker.settings().opener,
            Some("mcp:write".into()),
        )
        .await
        .unwrap();
    tokio::time::timeout(SIGN_IN_WAIT, started.done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(last_asked(&b), "mcp:write");

    let forbidden = upstream
        .after_forbidden(&server, &challenge("mcp:admin"))
        .await;
    assert!(matches!(forbidden, Forbidden::SignIn(_)), "{forbidden:?}");
    b.sign_in("demo").await;
    let asked = last_asked(&b);
    let scopes: Vec<&str> = asked.split_whitespace().collect();
    for s in ["mcp:read", "mcp:write", "mcp:admin"] {
        assert!(scopes.contains(&s), "{s} is missing from {asked}");
    }
    let facts = upstream.token_facts(&server.name).await;
    assert_eq!(facts.needs_scope, None, "{facts:?}");
}

#[tokio::test]
async fn a_challenge_the_token_already_satisfies_gets_one_more_sign_in_then_passes_on() {
    let (_up, b, server) = demo_server(
        UpstreamOptions::oauth(),
        json!({"auth_type": "oauth2", "oauth_flow": "authorization_code"}),
    )
    .await;
    let upstream = b.broker.upstream().clone();
    b.sign_in("demo").await;
    assert_eq!(last_asked(&b), "mcp:read");

    let first = upstream
        .after_forbidden(&server, &challenge("mcp:read"))
        .await;
    assert!(matches!(first, Forbidden::SignIn(_)), "{first:?}");
    b.sign_in("demo").await;
    let second = upstream
        .after_forbidden(&server, &challenge("mcp:read"))
        .await;
    assert!(matches!(second, Forbidden::PassOn), "{second:?}");
    let third = upstream
        .after_forbidden(&server, &challenge("mcp:read"))
        .await;
    assert!(matches!(third, Forbidden::PassOn), "{third:?}");
    assert_eq!(b.browser.opened().len(), 2, "no third sign-in");
    let passed_on = upstream
        .timeline(&server.name)
        .into_iter()
        .any(|s| s.kind == StepKind::ScopeChallenge && s.detail.contains("passed on"));
    assert!(passed_on, "the timeline says why the 403 went through");

    // A scope the token really lacks is asked for again.
    let other = upstream
        .after_forbidden(&server, &challenge("mcp:admin"))
        .await;
    assert!(matches!(other, Forbidden::SignIn(_)), "{other:?}");
}
