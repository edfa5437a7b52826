//! The streaming parts of the test upstream's two-era tools: `subscriptions/listen` (modern
//! change notifications, fed by the same broadcast as the legacy GET streams) and `ask_user`
//! in a legacy session (a server→client `elicitation/create` on the call's SSE stream).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use mcp_auth_broker::protocol::{codes, envelope};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::mcp::{self, sse_body, sse_frame, text_result};
use super::modern::{ask_user_request, SUBSCRIPTION_ID};
use super::upstream::UpstreamState;

/// How long a legacy session's `ask_user` waits for the client's answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(20);

/// `"{action}: {answer}"`, or `"{action}"` when the content has no `answer`.
pub(crate) fn answer_text(elicit_result: &Value) -> String {
    let action = elicit_result["action"].as_str().unwrap_or("none");
    match elicit_result["content"]["answer"].as_str() {
        Some(answer) => format!("{action}: {answer}"),
        None => action.to_string(),
    }
}

/// `ask_user` in a legacy session: `elicitation/create` (id `ask-N`) on the answer's SSE
/// stream, then the result once the client POSTs its answer.
pub(crate) fn legacy_ask_user(s: Arc<UpstreamState>, id: Value, msg: &Value) -> Response {
    let question = msg["params"]["arguments"]["question"]
        .as_str()
        .unwrap_or("Please confirm")
        .to_string();
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let n = s.counters.asked.fetch_add(1, Ordering::SeqCst);
        let ask_id = format!("ask-{n}");
        let (done, answer) = oneshot::channel();
        s.asks.lock().unwrap().insert(ask_id.clone(), done);
        let mut request = ask_user_request(&question);
        request["jsonrpc"] = json!("2.0");
        request["id"] = json!(ask_id);
        if tx.send(sse_frame(&request)).await.is_err() {
            return;
        }
        let message = match tokio::time::timeout(ASK_TIMEOUT, answer).await {
            Ok(Ok(a)) if a.get("result").is_some() => {
                mcp::result(&id, text_result(&answer_text(&a["result"])))
            }
            _ => envelope::error(id, codes::INTERNAL_ERROR, "the client did not answer", None),
        };
        let _ = tx.send(sse_frame(&message)).await;
    });
    event_stream(rx)
}

fn event_stream(rx: mpsc::Receiver<axum::body::Bytes>) -> Response {
    (
        [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
            ("x-accel-buffering", "no"),
        ],
        sse_body(rx),
    )
        .into_response()
}

/// The part of a `subscriptions/listen` filter this server honours.
fn honoured(s: &UpstreamState, wanted: &Value) -> Value {
    let mut h = json!({});
    let mut flags = vec!["toolsListChanged"];
    if s.catalog.is_some() {
        flags.extend(["promptsListChanged", "resourcesListChanged"]);
    }
    for flag in flags {
        if wanted[flag] == true {
            h[flag] = json!(true);
        }
    }
    let subscribe = mcp::capabilities(s)["resources"]["subscribe"] == true;
    if let (true, Some(uris)) = (subscribe, wanted["resourceSubscriptions"].as_array()) {
        h["resourceSubscriptions"] = json!(uris);
    }
    h
}

/// Whether a change notification is one the stream opted in to.
fn wanted(honoured: &Value, note: &Value) -> bool {
    let flag = match note["method"].as_str().unwrap_or_default() {
        "notifications/tools/list_changed" => "toolsListChanged",
        "notifications/prompts/list_changed" => "promptsListChanged",
        "notifications/resources/list_changed" => "resourcesListChanged",
        "notifications/resources/updated" => {
            return honoured["resourceSubscriptions"]
                .as_array()
                .is_some_and(|uris| uris.contains(&note["params"]["uri"]))
        }
        _ => return false,
    };
    honoured[flag] == true
}

/// `subscriptions/listen`: an SSE stream that opens with the acknowledgement, then carries
/// the opted-in change notifications (each with the subscription id in `_meta`) until the
/// client leaves or [`super::TestUpstream::end_listens`] closes it with its result.
pub(crate) fn listen(s: &Arc<UpstreamState>, id: Value, msg: &Value) -> Response {
    let honoured = honoured(s, &msg["params"]["notifications"]);
    let mut notes = s.notes.subscribe();
    let mut end = s.listen_end.subscribe();
    let (tx, rx) = mpsc::channel(16);
    let ack = envelope::notification(
        "notifications/subscriptions/acknowledged",
        Some(json!({"_meta": {SUBSCRIPTION_ID: id}, "notifications": honoured})),
    );
    let _ = tx.try_send(sse_frame(&ack));
    s.counters.listens.fetch_add(1, Ordering::SeqCst);
    s.listening.send_modify(|n| *n += 1);
    let s = s.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                note = notes.recv() => match note {
                    Ok(mut note) if wanted(&honoured, &note) => {
                        note["params"]["_meta"][SUBSCRIPTION_ID] = id.clone();
                        if tx.send(sse_frame(&note)).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                },
                _ = end.changed() => {
                    let done = json!({"resultType": "complete", "_meta": {SUBSCRIPTION_ID: id}});
                    let _ = tx.send(sse_frame(&envelope::result(id.clone(), done))).await;
                    break;
                }
                () = tx.closed() => break,
            }
        }
        s.listening.send_modify(|n| *n -= 1);
    });
    event_stream(rx)
}
