//! The broker's one MCP client session answering a server's requests for input, in both eras,
//! against the test upstream on 127.0.0.1: a modern server's `input_required` result is answered
//! and the call sent again (new id, `inputResponses`, the exact `requestState`); a legacy
//! server's `elicitation/create` on the call's event stream is answered on the session while
//! the stream is still read.

use crate::support;

use std::time::Duration;

use mcp_auth_broker::protocol::client::Client;
use mcp_auth_broker::protocol::Era;
use serde_json::{json, Value};
use support::*;

const TIMEOUT: Duration = Duration::from_secs(10);

/// The person's answer to any form elicitation: accept with `answer: "yes"`.
fn yes(method: &str, _params: &Value) -> Option<Value> {
    (method == "elicitation/create")
        .then(|| json!({"action": "accept", "content": {"answer": "yes"}}))
}

fn ask() -> Value {
    json!({"name": "ask_user", "arguments": {"question": "Go on?"}})
}

#[tokio::test]
async fn a_modern_servers_question_is_answered_and_the_call_sent_again_with_its_state() {
    let up = TestUpstream::start(UpstreamOptions::default().with_era(UpstreamEra::Modern)).await;
    let client = Client::connect(
        HttpTransport::new(&up.mcp_url),
        json!({"elicitation": {}}),
        TIMEOUT,
    )
    .await
    .unwrap();
    assert_eq!(client.era(), Era::Modern);
    let answer = client
        .call("tools/call", ask(), &yes, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        answer["result"]["content"][0]["text"], "accept: yes",
        "{answer}"
    );
    let calls: Vec<Value> = up
        .state
        .messages
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m["method"] == "tools/call")
        .cloned()
        .collect();
    assert_eq!(calls.len(), 2, "the question, then the retry: {calls:?}");
    assert_ne!(calls[0]["id"], calls[1]["id"], "the retry has its own id");
    assert!(calls[0]["params"].get("requestState").is_none());
    assert!(
        calls[1]["params"]["requestState"].is_string(),
        "{}",
        calls[1]
    );
    assert_eq!(
        calls[1]["params"]["inputResponses"]["confirm"]["content"]["answer"],
        "yes"
    );
}

#[tokio::test]
async fn a_legacy_servers_question_on_the_call_stream_is_answered_on_the_session() {
    let mut options = UpstreamOptions::default();
    options.tools.push(modern::ask_user_tool());
    let up = TestUpstream::start(options).await;
    let client = Client::connect(
        HttpTransport::new(&up.mcp_url),
        json!({"elicitation": {}}),
        TIMEOUT,
    )
    .await
    .unwrap();
    assert_eq!(client.era(), Era::Legacy);
    let answer = client
        .call("tools/call", ask(), &yes, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        answer["result"]["content"][0]["text"], "accept: yes",
        "{answer}"
    );
    assert_eq!(TestUpstream::count(&up.counters().asked), 1);
    client.close().await;
}
