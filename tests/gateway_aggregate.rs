//! The aggregate endpoint `/mcp`: one MCP server over every configured server, names prefixed
//! `SERVER__NAME`, its own protected resource. Real broker, real upstreams, real sockets; the
//! done-when test drives it with the official TypeScript SDK client.

mod gateway_common;
mod support;

use std::process::Stdio;
use std::time::Duration;

use gateway_common::{api_key, approve, authorize_url, exchange, oauth_token, pkce, register};
use mcp_auth_broker::health::sse::SseParser;
use serde_json::{json, Value};
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// POSTs one JSON-RPC message to `/mcp`; returns the notifications that came first and the
/// response (the broker answers with an event stream when the client accepts one).
async fn rpc(b: &TestBroker, key: &str, session: Option<&str>, body: Value) -> (Vec<Value>, Value) {
    let mut req = gateway_common::http()
        .post(format!("{}/mcp", b.base_url))
        .header("accept", gateway_common::ACCEPT)
        .header("x-api-key", key);
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let r = req.json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200, "{body}");
    let sse = r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream");
    let text = r.text().await.unwrap();
    let mut messages: Vec<Value> = if sse {
        let mut parser = SseParser::default();
        parser
            .push(text.as_bytes())
            .iter()
            .map(|e| serde_json::from_str(&e.data).unwrap())
            .collect()
    } else {
        vec![serde_json::from_str(&text).unwrap()]
    };
    let response = messages.pop().expect("a response");
    assert_eq!(
        response["id"], body["id"],
        "the response carries the client's id"
    );
    (messages, response)
}

/// `initialize` on `/mcp`; returns the session id.
async fn open(b: &TestBroker, key: &str) -> String {
    let r = gateway_common::post(
        &format!("{}/mcp", b.base_url),
        key,
        None,
        &gateway_common::initialize(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let sid = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let init: Value = r.json().await.unwrap();
    assert_eq!(init["result"]["capabilities"]["tools"]["listChanged"], true);
    sid
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn call(id: u64, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments}})
}

const LIST: fn(u64) -> Value = |id| json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"});

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
async fn aggregate_lists_omit_filtered_tools_and_calls_to_them_never_reach_the_upstream() {
    let a = TestUpstream::start(UpstreamOptions::default().with_response(ResponseMode::Sse)).await;
    let open_up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {
        "a": {"url": a.mcp_url, "allowed_tools": ["echo", "add"], "disallowed_tools": ["add"]},
        "b": {"url": open_up.mcp_url}}}))
    .await;
    let key = api_key(&b).await;
    let sid = open(&b, &key).await;
    let (_, list) = rpc(&b, &key, Some(&sid), LIST(2)).await;
    assert_eq!(
        names(&list),
        ["a__echo", "b__add", "b__echo", "b__slow_stream"]
    );
    for (id, hidden) in [(3, "a__add"), (4, "a__slow_stream")] {
        let (_, r) = rpc(
            &b,
            &key,
            Some(&sid),
            call(id, hidden, json!({"a": 1, "b": 2})),
        )
        .await;
        assert_eq!(r["error"]["code"], -32602, "{r}");
        let text = r["error"]["message"].as_str().unwrap();
        assert!(
            text.contains("allowed_tools") && text.contains("\"a\""),
            "{text}"
        );
    }
    assert_eq!(
        count(&a.counters().tools_call),
        0,
        "a filtered call is never forwarded"
    );
    let (_, ok) = rpc(
        &b,
        &key,
        Some(&sid),
        call(5, "a__echo", json!({"text": "hi"})),
    )
    .await;
    assert_eq!(ok["result"]["content"][0]["text"], "hi", "{ok}");
    assert_eq!(count(&a.counters().tools_call), 1);
    assert_eq!(
        count(&a.counters().initialize),
        1,
        "one upstream session per server per client session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_the_endpoint_does_not_offer_get_clear_errors() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {
        "a": {"url": up.mcp_url},
        "deleg": {"url": up.mcp_url, "delegate_auth_to_upstream": true}}}))
    .await;
    let key = api_key(&b).await;
    let sid = open(&b, &key).await;
    let (_, list) = rpc(&b, &key, Some(&sid), LIST(2)).await;
    assert_eq!(
        names(&list),
        ["a__add", "a__echo", "a__slow_stream"],
        "a delegating server is not aggregated"
    );
    for (name, says) in [
        ("nope__echo", "no server named \"nope\""),
        ("plain", "SERVER__NAME"),
        ("deleg__echo", "/deleg/mcp"),
    ] {
        let (_, r) = rpc(&b, &key, Some(&sid), call(3, name, json!({}))).await;
        assert_eq!(r["error"]["code"], -32602, "{r}");
        assert!(
            r["error"]["message"].as_str().unwrap().contains(says),
            "{name}: {r}"
        );
    }
    let (_, r) = rpc(
        &b,
        &key,
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 9, "method": "sampling/createMessage"}),
    )
    .await;
    assert_eq!(r["error"]["code"], -32601, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_named_in_a_notice_and_the_others_still_answer() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let gone = TestUpstream::start(UpstreamOptions::default()).await;
    let gone_url = gone.mcp_url.clone();
    gone.stop();
    let b = TestBroker::start(
        json!({"mcp_servers": {"a": {"url": up.mcp_url}, "gone": {"url": gone_url}}}),
    )
    .await;
    let key = api_key(&b).await;
    let sid = open(&b, &key).await;
    let (notes, list) = rpc(&b, &key, Some(&sid), LIST(2)).await;
    assert_eq!(names(&list), ["a__add", "a__echo", "a__slow_stream"]);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["method"], "notifications/message");
    assert_eq!(notes[0]["params"]["data"]["server"], "gone");
    assert!(
        notes[0]["params"]["data"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{notes:?}"
    );
    let (notes, r) = rpc(
        &b,
        &key,
        Some(&sid),
        call(3, "gone__echo", json!({"text": "x"})),
    )
    .await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("\"gone\" is unreachable"),
        "{r}"
    );
    assert_eq!(notes[0]["params"]["level"], "error", "{notes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_belong_to_the_client_that_opened_them_and_end_upstream_too() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"a": {"url": up.mcp_url}}})).await;
    let key = api_key(&b).await;
    let other = api_key(&b).await;
    let sid = open(&b, &key).await;
    rpc(&b, &key, Some(&sid), LIST(2)).await;
    assert_eq!(
        up.state.sessions.lock().unwrap().len(),
        1,
        "one upstream session opened lazily"
    );
    let url = format!("{}/mcp", b.base_url);
    let stolen = gateway_common::post(&url, &other, Some(&sid), &LIST(3)).await;
    assert_eq!(
        stolen.status(),
        404,
        "another client cannot use the session"
    );
    let missing = gateway_common::post(&url, &key, None, &LIST(4)).await;
    assert_eq!(missing.status(), 400);
    assert!(missing.text().await.unwrap().contains("Mcp-Session-Id"));
    let http = gateway_common::http();
    let end = http
        .delete(&url)
        .header("x-api-key", &key)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(end.status(), 200);
    assert!(
        up.state.sessions.lock().unwrap().is_empty(),
        "the upstream session was ended too"
    );
    assert_eq!(
        gateway_common::post(&url, &key, Some(&sid), &LIST(5))
            .await
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aggregate_is_its_own_protected_resource_with_its_own_audience() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start(
        json!({"mcp_servers": {"a": {"url": up.mcp_url}, "b": {"url": up.mcp_url}}}),
    )
    .await;
    let http = gateway_common::http();
    let url = format!("{}/mcp", b.base_url);
    let r = http
        .post(&url)
        .json(&gateway_common::initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    let prm_url = format!("{}/.well-known/oauth-protected-resource/mcp", b.base_url);
    assert!(
        challenge.contains(&format!("resource_metadata=\"{prm_url}\"")),
        "{challenge}"
    );
    let prm: Value = http
        .get(&prm_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], url);
    assert_eq!(prm["authorization_servers"], json!([b.base_url]));

    let for_a = oauth_token(&b, "a");
    let r = http
        .post(&url)
        .bearer_auth(&for_a)
        .json(&gateway_common::initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a token for one server does not open /mcp");

    // The consent for resource=/mcp lists the servers it covers; its token works on /mcp only.
    let client = register(&b, "Aggregate client").await;
    let mut params = pkce().to_vec();
    params.push(("resource", &url));
    let auth = authorize_url(&b, &client, &params);
    let page = http.get(&auth).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("All servers (/mcp)")
            && page.contains("a: ready")
            && page.contains("b: ready"),
        "{page}"
    );
    let code = approve(&b, &auth).await["code"].clone();
    let (status, tokens) = exchange(&b, &client, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let r = http
        .post(&url)
        .bearer_auth(access)
        .header("accept", gateway_common::ACCEPT)
        .json(&gateway_common::initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        gateway_common::mcp_status(&b, "a", access).await,
        401,
        "the /mcp token does not open /a/mcp"
    );
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
    let sid = open(&b, &key).await;
    let stream = gateway_common::http()
        .get(format!("{}/mcp", b.base_url))
        .header("accept", "text/event-stream")
        .header("x-api-key", &key)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    flaky.stop();
    b.broker
        .health()
        .check_now(&mcp_auth_broker::config::ServerName::parse("flaky").unwrap());
    let mut body = stream.bytes_stream();
    let mut parser = SseParser::default();
    let mut seen = Vec::new();
    let heard = async {
        while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
            for e in parser.push(&chunk.unwrap()) {
                let m: Value = serde_json::from_str(&e.data).unwrap();
                seen.push(m["method"].as_str().unwrap_or("").to_string());
                if m["method"] == "notifications/tools/list_changed" {
                    return;
                }
                assert_eq!(m["method"], "notifications/message", "{m}");
                assert_eq!(m["params"]["level"], "warning", "{m}");
                assert_eq!(m["params"]["data"]["server"], "flaky", "{m}");
                assert!(
                    m["params"]["data"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("unreachable"),
                    "{m}"
                );
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), heard)
        .await
        .expect("the change was announced");
    assert_eq!(
        seen,
        ["notifications/message", "notifications/tools/list_changed"]
    );
}
