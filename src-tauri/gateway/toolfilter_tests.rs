//! Unit tests of `toolfilter` (pure parts: plans, stripping, event writing).

use super::*;

fn server(lists: &str) -> ServerConfig {
    let text =
        format!(r#"{{"mcp_servers": {{"s": {{"url": "https://a.example/mcp", {lists}}}}}}}"#);
    let raw = crate::config::file::parse(std::path::Path::new("t.json"), &text).unwrap();
    let mut config = crate::config::validate(&raw).unwrap().config;
    config.servers.pop_first().unwrap().1
}

/// What a client receives when `lists` rewrites an upstream answer of content type `kind`.
async fn rewritten(lists: &Lists, cfg: &ServerConfig, kind: &str, body: String) -> String {
    let upstream = Response::builder()
        .header(CONTENT_TYPE, kind)
        .body(Body::from(body))
        .unwrap();
    let answer = lists.rewrite(cfg, upstream).await.unwrap();
    let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn plan_of(cfg: &ServerConfig, body: Value) -> Result<Option<Lists>, Box<Response>> {
    plan(cfg, &Method::POST, &Bytes::from(body.to_string()))
}

#[test]
fn servers_without_lists_and_non_posts_are_never_parsed() {
    let open = server(r#""enabled": true"#);
    let garbage = Bytes::from_static(b"[not json");
    assert!(matches!(plan(&open, &Method::POST, &garbage), Ok(None)));
    let deny = server(r#""disallowed_tools": ["x"]"#);
    assert!(matches!(plan(&deny, &Method::GET, &garbage), Ok(None)));
    assert!(matches!(plan(&deny, &Method::POST, &garbage), Ok(None)));
}

#[test]
fn hidden_calls_are_refused_and_lists_remember_their_ids() {
    let cfg = server(r#""allowed_tools": ["a"]"#);
    let call = |name: Value| json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name}});
    assert!(matches!(plan_of(&cfg, call(json!("a"))), Ok(None)));
    assert!(plan_of(&cfg, call(json!("b"))).is_err());
    assert!(
        plan_of(&cfg, call(json!(7))).is_err(),
        "a name that is not a string"
    );
    let batch = json!([{"id": "x", "method": "tools/list"}, {"id": 2, "method": "ping"}, {"method": "tools/list"}]);
    let lists = plan_of(&cfg, batch).unwrap().unwrap();
    assert_eq!(lists.ids, [json!("x")]);
}

#[test]
fn only_answers_to_the_awaited_lists_are_stripped() {
    let cfg = server(r#""disallowed_tools": ["b"]"#);
    let tools = json!({"tools": [{"name": "a"}, {"name": "b"}, {"title": "nameless"}]});
    let mut batch = json!([
        {"id": 1, "result": tools.clone()},
        {"id": 2, "result": tools.clone()},
        {"id": 1, "method": "tools/list", "result": tools.clone()},
        {"id": 1.0, "result": tools.clone()},
    ]);
    let mut pending = vec![json!(1)];
    assert!(strip_answers(&cfg, &mut batch, &[json!(1)], &mut pending));
    assert!(pending.is_empty());
    assert_eq!(batch[0]["result"], json!({"tools": [{"name": "a"}]}));
    assert_eq!(
        batch[1]["result"], tools,
        "not a list the client asked for here"
    );
    assert_eq!(batch[2]["result"], tools, "a request, not an answer");
    assert_eq!(
        batch[3]["result"],
        json!({"tools": [{"name": "a"}]}),
        "a repeated answer, its id spelt as a JavaScript client reads it"
    );
}

#[test]
fn written_events_parse_back_to_the_same_events() {
    let event = SseEvent {
        event: "custom".into(),
        data: "line one\n\nline three".into(),
        id: Some("e-1".into()),
        retry: Some(500),
    };
    let mut out = String::new();
    write_event(&mut out, &event, &event.data);
    assert_eq!(SseParser::default().push(out.as_bytes()), [event]);
}

#[tokio::test]
async fn a_list_answer_goes_out_as_checked_so_duplicate_keys_cannot_smuggle_a_hidden_tool() {
    let cfg = server(r#""disallowed_tools": ["secret"]"#);
    let lists = Lists {
        ids: vec![json!(1)],
    };
    // serde_json keeps the last of duplicate keys; a client parser keeping the first would read
    // "secret" in the upstream's own bytes.
    let sneaky = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"secret","name":"ok"}]},"result":{"tools":[]}}"#;
    for (kind, body) in [
        ("application/json", sneaky.to_string()),
        (
            "text/event-stream",
            format!("event: message\ndata: {sneaky}\n\n"),
        ),
    ] {
        let text = rewritten(&lists, &cfg, kind, body).await;
        assert!(!text.contains("secret"), "{kind}: {text}");
        assert!(text.contains(r#""tools":[]"#), "{kind}: {text}");
    }
}

#[tokio::test]
async fn a_re_serialized_list_answer_keeps_every_number_as_a_client_reads_it() {
    let cfg = server(r#""disallowed_tools": ["secret"]"#);
    // The id as the proxy read it from the client's request.
    let lists = Lists {
        ids: vec![serde_json::from_str("1e-49").unwrap()],
    };
    // Parsed to the nearest double and written shortest, each number reads back as the same
    // double: the id the client awaits still matches, a schema bound is not moved by one ULP.
    let ok = r#"{"name":"ok","inputSchema":{"type":"object","properties":{"x":{"type":"number","minimum":1e-49,"maximum":2.2250738585072014e-308}}}}"#;
    let answer = format!(
        r#"{{"jsonrpc":"2.0","id":1e-49,"result":{{"tools":[{ok},{{"name":"secret"}}]}}}}"#
    );
    assert_eq!(
        rewritten(&lists, &cfg, "application/json", answer).await,
        format!(r#"{{"jsonrpc":"2.0","id":1e-49,"result":{{"tools":[{ok}]}}}}"#)
    );
}

#[tokio::test]
async fn a_modern_list_answer_keeps_its_result_type_cache_fields_and_cursor() {
    let cfg = server(r#""allowed_tools": ["a"]"#);
    let lists = Lists {
        ids: vec![json!(7)],
    };
    let answer = json!({"jsonrpc": "2.0", "id": 7, "result": {"resultType": "complete",
        "tools": [{"name": "a"}, {"name": "b"}], "nextCursor": "c2", "ttlMs": 60000,
        "cacheScope": "private"}});
    for (kind, body) in [
        ("application/json", answer.to_string()),
        (
            "text/event-stream",
            format!("event: message\ndata: {answer}\n\n"),
        ),
    ] {
        let text = rewritten(&lists, &cfg, kind, body).await;
        let json = text.trim_start_matches("event: message\ndata: ").trim_end();
        let m: Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            m["result"],
            json!({"resultType": "complete", "tools": [{"name": "a"}], "nextCursor": "c2",
                "ttlMs": 60000, "cacheScope": "private"}),
            "{kind}"
        );
    }
}
