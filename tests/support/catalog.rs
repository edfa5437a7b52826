//! The test upstream's optional catalog (`UpstreamOptions::catalog`): prompts, resources
//! (subscribable), resource templates and completions, each marked with the upstream's label so
//! a test can tell which upstream answered.

use serde_json::{json, Value};

use super::mcp::result;
use super::upstream::UpstreamState;

/// What `initialize` declares besides tools. A label starting with `nosub` declares no
/// resource subscriptions.
pub(crate) fn capabilities(label: &str) -> Value {
    json!({
        "prompts": {"listChanged": true},
        "resources": {"listChanged": true, "subscribe": !label.starts_with("nosub")},
        "completions": {},
    })
}

/// The answer to a catalog request, if `method` is one (and the upstream has a catalog).
pub(crate) fn answer(s: &UpstreamState, method: &str, id: &Value, msg: &Value) -> Option<Value> {
    let label = s.catalog.as_deref()?;
    let params = msg.get("params").cloned().unwrap_or(json!({}));
    let readme = format!("test://{label}/readme");
    let notes = format!("test://{label}/notes/");
    let answer = match method {
        "prompts/list" => result(
            id,
            json!({"prompts": [{"name": "greet", "title": "Greet", "arguments": [{"name": "who"}]}]}),
        ),
        "prompts/get" if params["name"] == "greet" => result(
            id,
            json!({"messages": [{"role": "user", "content": {"type": "text", "text": format!("Hello {} from {label}", params["arguments"]["who"].as_str().unwrap_or("you"))}}]}),
        ),
        "resources/list" => result(
            id,
            json!({"resources": [{"uri": readme, "name": "readme", "mimeType": "text/plain"}]}),
        ),
        "resources/templates/list" => result(
            id,
            json!({"resourceTemplates": [{"uriTemplate": format!("{notes}{{id}}"), "name": "note"}]}),
        ),
        "resources/read" => {
            let uri = params["uri"].as_str().unwrap_or_default();
            if uri != readme && !uri.starts_with(&notes) {
                return Some(
                    json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32002, "message": format!("{label} has no resource {uri}")}}),
                );
            }
            result(
                id,
                json!({"contents": [{"uri": uri, "mimeType": "text/plain", "text": format!("{label}: {uri}")}]}),
            )
        }
        "resources/subscribe" => {
            // Tells every open GET stream at once that the resource changed.
            let _ = s.notes.send(json!({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": params["uri"]}}));
            result(id, json!({}))
        }
        "resources/unsubscribe" => result(id, json!({})),
        "completion/complete" => {
            let r = &params["ref"];
            let what = r["name"].as_str().or(r["uri"].as_str()).unwrap_or_default();
            result(
                id,
                json!({"completion": {"values": [format!("{label}:{what}")], "total": 1, "hasMore": false}}),
            )
        }
        _ => return None,
    };
    Some(answer)
}
