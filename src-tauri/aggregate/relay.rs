//! Requests an upstream sends to its client on a `/mcp` session (sampling, elicitation, roots)
//! go on to the session's client when that client declared the capability; the broker declares
//! the same capabilities upstream, so an upstream only asks for what the person's client can
//! give. Each passed-on request gets an id of the broker's (`SERVER#N`), and the client's answer
//! goes back where it is awaited: to that upstream under the upstream's own id, or to the broker
//! itself when it asked on behalf of a modern upstream's `input_required` ([`super::bridge`]).
//! `ping` is answered by the broker; anything else is refused, naming `/{server}/mcp`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, oneshot};

use super::link::Link;
use super::session::{lock, Session};

/// Requests of one session waiting for its client's answer, at most. An upstream that asks for
/// more is refused until the client answers some.
pub const MAX_WAITING: usize = 64;
/// The client capabilities a `/mcp` session passes on to its upstreams.
const PASSED_ON: [&str; 3] = ["sampling", "elicitation", "roots"];

/// What the broker does with one request from an upstream.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Send this answer back to the upstream.
    Answer(Value),
    /// Pass the request on to the client.
    PassOn,
}

/// Decides what happens to an upstream's `method` request (pure): `offered` is what the client
/// declared, `waiting` how many requests already wait for it.
pub fn verdict(
    offered: &Value,
    server: &str,
    id: &Value,
    method: &str,
    params: &Value,
    waiting: usize,
) -> Verdict {
    let refuse = |code: i64, message: String| {
        Verdict::Answer(
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
        )
    };
    let elicitation = &offered["elicitation"];
    let declared = match method {
        "ping" => return Verdict::Answer(json!({"jsonrpc": "2.0", "id": id, "result": {}})),
        "sampling/createMessage" => offered.get("sampling").is_some(),
        "roots/list" => offered.get("roots").is_some(),
        // 2025-11-25: `elicitation: {}` means form mode only; URL mode must be declared.
        "elicitation/create" => match params.get("mode").and_then(Value::as_str) {
            Some("url") => elicitation.get("url").is_some(),
            _ => {
                elicitation.get("form").is_some()
                    || elicitation.as_object().is_some_and(Map::is_empty)
            }
        },
        _ => false,
    };
    if !declared {
        return refuse(-32601, format!(
            "the client of MCP Auth Broker's /mcp did not declare the capability {method} needs, so it was not passed on; connect to /{server}/mcp to use it"
        ));
    }
    if waiting >= MAX_WAITING {
        return refuse(-32603, format!(
            "{MAX_WAITING} requests already wait for the client of MCP Auth Broker's /mcp to answer; try again later"
        ));
    }
    Verdict::PassOn
}

/// The part of a client's `capabilities` the broker passes on (and declares upstream).
pub fn passed_on(capabilities: &Value) -> Value {
    // The key's text is copied only for a capability that is there (most clients declare few).
    let picked: Map<String, Value> = PASSED_ON
        .iter()
        .filter_map(|k| Some((*k, capabilities.get(*k).filter(|v| v.is_object())?)))
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Value::Object(picked)
}

/// An upstream's request as the client sees it: the person sees which server asks.
pub fn shown(server: &str, method: &str, mut params: Value) -> Value {
    if method == "elicitation/create" {
        if let Some(text) = params.get("message").and_then(Value::as_str) {
            params["message"] = Value::String(format!("[{server}] {text}"));
        }
    }
    params
}

/// Where a client's answer to a passed-on request goes.
enum Waiter {
    /// Back to the upstream that asked, under its own id.
    Upstream(Arc<Link>, Value),
    /// To the broker, which asked for a modern upstream's `input_required`.
    Broker(oneshot::Sender<Value>),
}

/// One session's passed-on requests.
pub struct Relay {
    /// What the session's client declared, of [`PASSED_ON`]; declared to every upstream.
    pub offered: Value,
    /// The session's own event stream (GET), where requests not tied to a client's request go.
    pub notes: broadcast::Sender<Value>,
    /// Requests waiting for the client's answer, by the broker's id.
    waiting: Mutex<HashMap<String, Waiter>>,
    /// Numbers the broker's ids.
    next: AtomicU64,
    /// Whether the person is shown which server asks (`/mcp`; a scoped `/{server}/mcp` has one).
    pub(super) name_server: bool,
}

impl Relay {
    pub fn new(client_capabilities: &Value) -> Relay {
        Relay {
            offered: passed_on(client_capabilities),
            notes: broadcast::channel(16).0,
            waiting: Mutex::default(),
            next: AtomicU64::new(1),
            name_server: true,
        }
    }

    fn ours(&self, server: &str) -> String {
        format!("{server}#{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// An upstream's request: `Ok` with the message for the client (under a new id), or `Err`
    /// with the answer for the upstream.
    pub(super) fn pass_on(&self, link: &Arc<Link>, request: &Value) -> Result<Value, Value> {
        let server = link.cfg().name.to_string();
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let method = request["method"].as_str().unwrap_or_default();
        let params = request.get("params").cloned().unwrap_or(json!({}));
        let mut waiting = lock(&self.waiting);
        if let Verdict::Answer(a) =
            verdict(&self.offered, &server, &id, method, &params, waiting.len())
        {
            return Err(a);
        }
        let ours = self.ours(&server);
        waiting.insert(ours.clone(), Waiter::Upstream(link.clone(), id));
        let mut message = request.clone();
        message["id"] = Value::String(ours);
        if self.name_server {
            message["params"] = shown(&server, method, params);
        }
        Ok(message)
    }

    /// The broker asks the client itself (`method`, `params` for `server`): the message for the
    /// client and where its answer (the whole JSON-RPC answer) arrives, or why it cannot ask.
    pub(super) fn ask(
        &self,
        server: &str,
        method: &str,
        params: Value,
    ) -> Result<(Value, oneshot::Receiver<Value>), String> {
        let mut waiting = lock(&self.waiting);
        if let Verdict::Answer(a) = verdict(
            &self.offered,
            server,
            &Value::Null,
            method,
            &params,
            waiting.len(),
        ) {
            return Err(a["error"]["message"].as_str().unwrap_or("").to_string());
        }
        let ours = self.ours(server);
        let (tx, rx) = oneshot::channel();
        waiting.insert(ours.clone(), Waiter::Broker(tx));
        let params = match self.name_server {
            true => shown(server, method, params),
            false => params,
        };
        let message = json!({"jsonrpc": "2.0", "id": ours, "method": method, "params": params});
        Ok((message, rx))
    }

    /// The client's answer to a passed-on request: taken by whoever waits for it. `false` when
    /// nothing waits under that id (answered, or cancelled).
    pub(super) async fn answered(&self, answer: &Value) -> bool {
        let Some(key) = answer.get("id").and_then(Value::as_str) else {
            return false;
        };
        let Some(waiter) = lock(&self.waiting).remove(key) else {
            return false;
        };
        match waiter {
            Waiter::Upstream(link, id) => {
                let mut back = answer.clone();
                back["id"] = id;
                link.deliver(&back).await;
            }
            Waiter::Broker(tx) => {
                let _ = tx.send(answer.clone());
            }
        }
        true
    }

    /// An upstream's `notifications/cancelled` of a passed-on request, re-keyed for the client
    /// (and forgotten); `None` when it names nothing that waits.
    pub(super) fn cancelled(&self, link: &Arc<Link>, note: &Value) -> Option<Value> {
        let theirs = note["params"].get("requestId")?;
        let mut waiting = lock(&self.waiting);
        let ours = waiting
            .iter()
            .find(|(_, w)| matches!(w, Waiter::Upstream(l, id) if Arc::ptr_eq(l, link) && id == theirs))
            .map(|(k, _)| k.clone())?;
        waiting.remove(&ours);
        let mut out = note.clone();
        out["params"]["requestId"] = Value::String(ours);
        Some(out)
    }
}

/// A request on a link's own stream (not tied to a client's request): passed on to a session
/// that uses the link — one whose client has its event stream open, if any — or answered.
pub(super) fn from_stream(link: &Arc<Link>, request: &Value) {
    let users = link.users();
    let relay = users
        .iter()
        .find(|r| r.notes.receiver_count() > 0)
        .or(users.first());
    let answer = match relay.map(|r| (r, r.pass_on(link, request))) {
        Some((relay, Ok(message))) => {
            let _ = relay.notes.send(message);
            return;
        }
        Some((_, Err(answer))) => answer,
        None => match verdict(
            &json!({}),
            link.cfg().name.as_str(),
            &request["id"],
            request["method"].as_str().unwrap_or(""),
            &request["params"],
            0,
        ) {
            Verdict::Answer(a) => a,
            Verdict::PassOn => return,
        },
    };
    let link = link.clone();
    tokio::spawn(async move { link.deliver(&answer).await });
}

/// A notification from an upstream as clients get it: log messages name the server; a
/// cancellation of a passed-on request is re-keyed for the session that has it (other
/// cancellations name ids no client saw, and are dropped).
pub(super) fn on_note(link: &Arc<Link>, mut note: Value) -> Option<Value> {
    match note["method"].as_str() {
        Some("notifications/message") => {
            let params = note.get_mut("params").and_then(Value::as_object_mut)?;
            params.insert("logger".into(), json!(link.cfg().name.as_str()));
            Some(note)
        }
        Some("notifications/cancelled") => {
            for relay in link.users() {
                if let Some(out) = relay.cancelled(link, &note) {
                    let _ = relay.notes.send(out);
                }
            }
            None
        }
        _ => Some(note),
    }
}

impl Session {
    /// A message from the client that is an answer (`result` or `error`) to a request passed on
    /// from an upstream: sent to whoever waits for it. Returns whether one waited under its id.
    pub async fn answered(&self, answer: &Value) -> bool {
        self.relay.answered(answer).await
    }

    /// The client's `notifications/roots/list_changed`, for every upstream of the session.
    pub async fn tell_upstreams(&self, note: &Value) {
        if self.relay.offered.get("roots").is_none() {
            return; // the upstreams were not told the client has roots
        }
        for link in self.open_links() {
            if link.era() == crate::protocol::Era::Legacy {
                link.deliver(note).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(offered: Value, method: &str, params: Value) -> Verdict {
        verdict(&offered, "docs", &json!(7), method, &params, 0)
    }

    fn refused(v: Verdict) -> String {
        match v {
            Verdict::Answer(a) => a["error"]["message"].as_str().unwrap().to_string(),
            Verdict::PassOn => panic!("passed on"),
        }
    }

    #[test]
    fn only_sampling_elicitation_and_roots_objects_are_passed_on() {
        let caps = json!({"sampling": {"tools": {}}, "roots": {"listChanged": true},
            "elicitation": {}, "experimental": {"x": {}}, "tasks": {}});
        assert_eq!(
            passed_on(&caps),
            json!({"sampling": {"tools": {}}, "roots": {"listChanged": true}, "elicitation": {}})
        );
        assert_eq!(passed_on(&json!({"sampling": true})), json!({}));
    }

    #[test]
    fn a_request_passes_on_only_when_the_client_declared_its_capability() {
        assert_eq!(
            decide(json!({"sampling": {}}), "sampling/createMessage", json!({})),
            Verdict::PassOn
        );
        assert_eq!(
            decide(json!({"roots": {}}), "roots/list", json!({})),
            Verdict::PassOn
        );
        let why = refused(decide(
            json!({"roots": {}}),
            "sampling/createMessage",
            json!({}),
        ));
        assert!(why.contains("connect to /docs/mcp"), "{why}");
        refused(decide(json!({"sampling": {}}), "tools/call", json!({})));
    }

    #[test]
    fn an_empty_elicitation_capability_means_form_mode_only() {
        let form = json!({"mode": "form", "message": "name?"});
        let url = json!({"mode": "url", "url": "https://example.com"});
        let empty = json!({"elicitation": {}});
        assert_eq!(
            decide(empty.clone(), "elicitation/create", json!({})),
            Verdict::PassOn
        );
        assert_eq!(
            decide(empty.clone(), "elicitation/create", form.clone()),
            Verdict::PassOn
        );
        refused(decide(empty, "elicitation/create", url.clone()));
        let url_only = json!({"elicitation": {"url": {}}});
        assert_eq!(
            decide(url_only.clone(), "elicitation/create", url),
            Verdict::PassOn
        );
        refused(decide(url_only, "elicitation/create", form));
    }

    #[test]
    fn ping_is_answered_by_the_broker_and_a_full_queue_refuses() {
        match decide(json!({}), "ping", json!({})) {
            Verdict::Answer(a) => assert_eq!(a, json!({"jsonrpc": "2.0", "id": 7, "result": {}})),
            Verdict::PassOn => panic!("ping is not passed on"),
        }
        let full = verdict(
            &json!({"sampling": {}}),
            "docs",
            &json!(1),
            "sampling/createMessage",
            &json!({}),
            MAX_WAITING,
        );
        assert!(refused(full).contains("already wait"));
    }
}
