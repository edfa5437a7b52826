//! The shallow read against the full route (the fuzz target `client_call` does the same with
//! any input).
use super::*;
use crate::protocol::write::request_bytes;
use serde_json::json;

/// The full route: the body parsed, its params' name replaced, written from values.
fn full(body: &str, name: &str, modern: Option<&Value>) -> Value {
    let mut message: Value = serde_json::from_str(body).unwrap();
    let method = message["method"].as_str().unwrap().to_string();
    let mut params = message["params"].take();
    params["name"] = Value::String(name.into());
    serde_json::from_slice(&request_bytes(9, &method, &params, modern)).unwrap()
}

#[test]
fn the_shallow_route_writes_the_upstream_request_the_full_route_writes() {
    let caps = json!({"elicitation": {"url": {}}});
    let bodies = [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","arguments":{"q":"é\"\n\\u00e9 \u00e9","n":1.50,"deep":{"a":[1,{"b":[null,true]}]}}}}"#,
        r#"{"params":{"arguments":{},"name":"s__t","_meta":{"progressToken":"p-1"}},"method":"tools/call","id":"x","jsonrpc":"2.0"}"#,
        r#" { "jsonrpc" : "2.0" , "id" : 3 , "method" : "prompts/get" , "params" : { "_meta" : { "progressToken" : 4 } , "name" : "s__p" } } "#,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"s__t"}}"#,
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"s__t","arguments":[100,-0.0,"\u00e9"]}}"#,
        r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"_meta":{},"name":"s__t"}}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"_meta":{"a":1,"bé":{"d":[]}},"name":"s__t"}}"#,
    ];
    for body in bodies {
        let mut call = TextCall::read(&Bytes::from(body)).expect(body);
        assert!(call.name().starts_with("s__"), "{body}");
        call.set_name("t".into());
        for modern in [None, Some(&caps)] {
            let written: Value = serde_json::from_slice(&call.write(&json!(9), modern)).unwrap();
            let want = full(body, "t", modern);
            assert_eq!(written, want, "{body} modern: {}", modern.is_some());
            assert_eq!(written.to_string(), want.to_string(), "{body}");
        }
        let mut params = serde_json::from_str::<Value>(body).unwrap()["params"].take();
        params["name"] = json!("t");
        assert_eq!(call.to_value().to_string(), params.to_string(), "{body}");
    }
}

#[test]
fn a_modern_call_is_read_with_its_capabilities_and_written_without_its_protocol_meta() {
    let v = crate::protocol::MODERN_VERSION;
    let caps = json!({"sampling": {}});
    let bodies = [
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"s__t","arguments":{{"q":1}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"{v}","progressToken":"p","io.modelcontextprotocol/clientCapabilities":{{"elicitation":{{}}}},"io.modelcontextprotocol/clientInfo":{{"name":"c"}}}}}}}}"#
        ),
        format!(
            r#"{{"jsonrpc":"2.0","id":"x","method":"prompts/get","params":{{"_meta":{{"io.modelcontextprotocol/clientCapabilities":{{}},"io.modelcontextprotocol/protocolVersion":"{v}"}},"name":"s__p"}}}}"#
        ),
    ];
    for body in &bodies {
        let (mut call, declared) =
            TextCall::read_modern(&Bytes::from(body.clone()), v).expect(body);
        let message: Value = serde_json::from_str(body).unwrap();
        assert_eq!(&declared, meta::declared_capabilities(&message), "{body}");
        call.set_name("t".into());
        for modern in [None, Some(&caps)] {
            let written: Value = serde_json::from_slice(&call.write(&json!(9), modern)).unwrap();
            let want = full(body, "t", modern);
            assert_eq!(written.to_string(), want.to_string(), "{body}");
            // The client's protocol `_meta` stays behind; a modern upstream gets the broker's.
            let sent = &written["params"]["_meta"];
            let ours = sent[meta::CLIENT_INFO]["name"] == "mcp-auth-broker"
                && sent[meta::CLIENT_CAPABILITIES] == caps;
            let none = sent
                .as_object()
                .into_iter()
                .flatten()
                .all(|(k, _)| !meta::is_protocol_key(k));
            assert!(if modern.is_some() { ours } else { none }, "{written}");
        }
        assert!(
            TextCall::read(&Bytes::from(body.clone())).is_none(),
            "legacy read: {body}"
        );
    }
}

#[test]
fn a_modern_call_the_full_route_would_refuse_or_read_otherwise_is_not_read_shallowly() {
    let v = crate::protocol::MODERN_VERSION;
    let metas = [
        String::new(),
        r#","_meta":{"progressToken":1}"#.to_string(),
        format!(r#","_meta":{{"io.modelcontextprotocol/protocolVersion":"{v}"}}"#),
        r#","_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25","io.modelcontextprotocol/clientCapabilities":{}}"#.to_string(),
        format!(r#","_meta":{{"io.modelcontextprotocol/protocolVersion":"{v}","io.modelcontextprotocol/clientCapabilities":[]}}"#),
        r#","_meta":{"io.modelcontextprotocol/protocolVersion":null,"io.modelcontextprotocol/clientCapabilities":{}}"#.to_string(),
        format!(r#","_meta":{{"io.modelcontextprotocol\/protocolVersion":"{v}","io.modelcontextprotocol/clientCapabilities":{{}}}}"#),
        format!(r#","_meta":{{"io.modelcontextprotocol/protocolVersion":"{v}","io.modelcontextprotocol/protocolVersion":"{v}","io.modelcontextprotocol/clientCapabilities":{{}}}}"#),
    ];
    for m in metas {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"s__t"{m}}}}}"#
        );
        assert!(
            TextCall::read_modern(&Bytes::from(body.clone()), v).is_none(),
            "{body}"
        );
    }
}

#[test]
fn unusual_calls_take_the_full_route() {
    let bodies = [
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t"}}]"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","name":"s__u"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"s__t"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","requestState":"x"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","inputResponses":{}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","arguments":{"n":1e400}}}"#,
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"s__t","arguments":[1e2,"\ud83d\ude00"]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","arguments":"\ud800"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s\u005f_t"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","_meta":{"b\"c":1}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","_meta":{"a":1,"a":2}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","_meta":[1]}}"#,
        r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"s__t"}}"#,
        r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"s__t"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t"},"extra":1}"#,
    ];
    for body in bodies {
        assert!(TextCall::read(&Bytes::from(body)).is_none(), "{body}");
    }
}

#[test]
fn a_call_written_under_the_clients_own_id_differs_only_in_its_id() {
    let body = r#"{"jsonrpc":"2.0","id":"c-1","method":"tools/call","params":{"name":"a__t","arguments":{"x":[1,"é"]},"_meta":{"k":1}}}"#;
    let call = TextCall::read(&Bytes::from(body)).unwrap();
    let mut own: Value = serde_json::from_slice(&call.write(call.id(), None)).unwrap();
    let linked: Value = serde_json::from_slice(&call.write(&json!(7), None)).unwrap();
    assert_eq!(own["id"], "c-1");
    own["id"] = json!(7);
    assert_eq!(own, linked);
}
