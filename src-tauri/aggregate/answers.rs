//! Reading from an upstream link: one request in flight ([`InFlight`]: its answer, and the
//! messages the upstream sends before it — notifications, and a legacy upstream's own requests),
//! and the one listener per link that follows list changes (a legacy server's GET stream, a
//! modern server's `subscriptions/listen`).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::{broadcast, oneshot};

use super::link::{protocol, read_failure, Link, LinkError};
use crate::protocol::client::{read_answer_raw, read_capped};
use crate::protocol::envelope::{self, Kind};
use crate::protocol::raw::Answer;
use crate::protocol::shallow::Params;
use crate::protocol::sse::SseParser;
use crate::protocol::{meta, Era};

/// Failed listener connects in a row before the link stops listening.
const MAX_RECONNECTS: u32 = 6;
/// The most held of one event of a listener's stream.
const MAX_EVENT: usize = 4 * 1024 * 1024;
/// `_meta` key of the subscription a `subscriptions/listen` notification belongs to.
const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// What happened next to a request in flight.
pub enum Step {
    /// A notification or a request from the upstream, before the answer.
    Message(Value),
    /// The upstream's JSON-RPC answer (`result` or `error`), or why there is none.
    Done(Result<Answer, LinkError>),
}

/// The request's exchange with the upstream: polled by [`InFlight::next`] in the task that
/// awaits the answer (no task of its own: nothing to spawn, schedule and abort per request).
type Exchange = Pin<Box<dyn Future<Output = Result<Answer, LinkError>> + Send>>;

/// One request on its way through a link. Dropping it stops reading (a modern upstream takes
/// the closed stream as cancellation).
pub struct InFlight {
    pub link: Arc<Link>,
    /// The link's id of the request (0 for one passed through under the client's own id).
    pub id: u64,
    /// The request's params as the caller gave them (for a retry with answers, or after a
    /// forgotten session: they are written again as the link's era sends them).
    pub sent: Params,
    /// What the exchange met before the answer; only the exchange adds to it, and only while
    /// [`InFlight::next`] polls it, so no waker is needed (nor a channel per request).
    incoming: Inbox,
    /// `None` once the exchange ended.
    exchange: Option<Exchange>,
    /// The answer, read while messages sent before it were still to be handed out.
    answer: Option<Result<Answer, LinkError>>,
}

impl InFlight {
    /// Sends `method` over `link`, declaring `offered` to a modern upstream. `timeout` bounds
    /// the wait for response headers; an answer may then stream for as long as it takes.
    pub fn start(
        link: &Arc<Link>,
        method: &str,
        params: Params,
        offered: &Value,
        timeout: Duration,
    ) -> InFlight {
        let id = link.next_id();
        let (headers, text) = link.outgoing(id, method, &params, offered);
        let incoming = Inbox::default();
        let asked = (method.to_string(), headers, text);
        let exchange = Box::pin(exchange(link.clone(), id, asked, timeout, incoming.clone()));
        InFlight {
            link: link.clone(),
            id,
            sent: params,
            incoming,
            exchange: Some(exchange),
            answer: None,
        }
    }

    /// A request already sent under `id` (the client's own: [`super::pass`]) whose response is
    /// `response`, read on as [`InFlight::start`] reads its own.
    pub fn answered(
        link: &Arc<Link>,
        (id, method): (Value, &'static str),
        params: Params,
        response: reqwest::Response,
    ) -> InFlight {
        let incoming = Inbox::default();
        let read = read(link.clone(), id, method, response, incoming.clone());
        InFlight {
            link: link.clone(),
            id: 0,
            sent: params,
            incoming,
            exchange: Some(Box::pin(read)),
            answer: None,
        }
    }

    /// The next message from the upstream, or the answer (messages sent before the answer
    /// always come first).
    pub async fn next(&mut self) -> Step {
        if let Some(m) = self.incoming.take() {
            return Step::Message(m);
        }
        if let Some(answer) = self.answer.take() {
            return Step::Done(answer);
        }
        let Some(exchange) = self.exchange.as_mut() else {
            let why = "the request to the upstream stopped without an answer".into();
            return Step::Done(Err(LinkError::Upstream(protocol(self.link.cfg(), why))));
        };
        let incoming = &self.incoming;
        let step = std::future::poll_fn(|cx| match exchange.as_mut().poll(cx) {
            Poll::Ready(answer) => Poll::Ready(Err(answer)),
            Poll::Pending => incoming
                .take()
                .map_or(Poll::Pending, |m| Poll::Ready(Ok(m))),
        });
        match step.await {
            Ok(m) => Step::Message(m),
            Err(answer) => {
                self.exchange = None;
                match self.incoming.take() {
                    // Sent before the answer, read with it: hand it out first.
                    Some(m) => {
                        self.answer = Some(answer);
                        Step::Message(m)
                    }
                    None => Step::Done(answer),
                }
            }
        }
    }

    /// Messages that already arrived, without waiting.
    pub fn ready(&mut self) -> Vec<Value> {
        std::iter::from_fn(|| self.incoming.take()).collect()
    }
}

/// Messages an exchange met before its answer, oldest first.
#[derive(Clone, Default)]
struct Inbox(Arc<std::sync::Mutex<std::collections::VecDeque<Value>>>);

impl Inbox {
    fn put(&self, m: Value) {
        super::session::lock(&self.0).push_back(m);
    }
    fn take(&self) -> Option<Value> {
        super::session::lock(&self.0).pop_front()
    }
}

/// POSTs one request and reads its answer ([`read`]).
async fn exchange(
    link: Arc<Link>,
    id: u64,
    (method, headers, body): (String, reqwest::header::HeaderMap, bytes::Bytes),
    timeout: Duration,
    tx: Inbox,
) -> Result<Answer, LinkError> {
    let response = link
        .wire()
        .exchange(Method::POST, headers, Some(body), timeout)
        .await?;
    read(link, json!(id), &method, response, tx).await
}

/// Reads the answer to `id` from the upstream's `response`; requests and notifications met on
/// the way go to `tx`.
async fn read(
    link: Arc<Link>,
    id: Value,
    method: &str,
    response: reqwest::Response,
    tx: Inbox,
) -> Result<Answer, LinkError> {
    let cfg = link.cfg();
    let status = response.status();
    if !status.is_success() {
        if link.forgot_session(status) {
            return Err(LinkError::Gone);
        }
        // A modern server answers some errors with a 4xx and the JSON-RPC error in the body.
        let text = Box::pin(read_capped(response, 64 * 1024)).await; // rare: kept out of line
        let text = text.unwrap_or_default();
        let answer = serde_json::from_str(&text)
            .ok()
            .and_then(|b| envelope::find_answer(b, &id));
        return answer.map(Answer::Value).ok_or_else(|| {
            protocol(
                cfg,
                format!("{method}: the upstream answered HTTP {status}"),
            )
            .into()
        });
    }
    let streams = response.headers().get(CONTENT_TYPE);
    if streams.is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream")) {
        tx.put(super::session::STREAMING);
    }
    let mut on_message = |m: Value| {
        if matches!(envelope::kind(&m), Kind::Request | Kind::Notification) {
            tx.put(m);
        }
    };
    read_answer_raw(response, &id, method, &mut on_message)
        .await
        .map_err(|e| read_failure(cfg, e).into())
}

/// Follows the link's list changes (and, for a modern link, the updates of the resources its
/// clients watch) for as long as the link lives: reconnects with backoff (at least 2 s after a
/// stream that was open); stops when the upstream offers no such stream (404, 405, or a modern
/// `-32601`) or after [`MAX_RECONNECTS`] failed connects in a row. `acked` gets the filter a
/// modern upstream acknowledged first (dropped unanswered when the listener gives up).
pub(super) async fn listen(
    link: Weak<Link>,
    changes: broadcast::Sender<Value>,
    mut acked: Option<oneshot::Sender<Value>>,
) {
    let mut failures = 0;
    while failures < MAX_RECONNECTS {
        if failures > 0 {
            tokio::time::sleep(Duration::from_secs(1 << failures.min(5))).await;
        }
        failures += 1;
        let Some(l) = link.upgrade() else { return };
        let Some(response) = open_stream(&l).await else {
            continue;
        };
        match response.status() {
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_FOUND => return,
            s if !s.is_success() => continue,
            _ => failures = 1,
        }
        let content_type = response.headers().get(CONTENT_TYPE).cloned();
        if !content_type.is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream")) {
            return; // an answer instead of a stream: the upstream does not offer one
        }
        drop(l);
        let mut parser = SseParser::default();
        let mut stream = response.bytes_stream();
        while let Some(Ok(chunk)) = stream.next().await {
            let Some(l) = link.upgrade() else { return };
            for event in parser.push(&chunk) {
                let Ok(message) = serde_json::from_str::<Value>(&event.data) else {
                    continue;
                };
                if message["method"] == "notifications/subscriptions/acknowledged" {
                    if let Some(tx) = acked.take() {
                        let _ = tx.send(message["params"]["notifications"].clone());
                    }
                    continue;
                }
                heard(&l, message, &changes);
            }
            if parser.buffered() > MAX_EVENT {
                break;
            }
        }
    }
}

/// Opens the listener's stream: the GET stream of a legacy link, `subscriptions/listen` of a
/// modern one; `None` when the request could not be sent.
async fn open_stream(link: &Link) -> Option<reqwest::Response> {
    let wire = link.wire();
    let forever = Duration::from_secs(30);
    if link.era() == Era::Legacy {
        let mut headers = link.client.headers(None);
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        return wire
            .exchange(Method::GET, headers, None, forever)
            .await
            .ok();
    }
    let mut filter = json!({"notifications": {
        "toolsListChanged": true, "promptsListChanged": true, "resourcesListChanged": true}});
    let watched = link.watched_uris();
    if !watched.is_empty() {
        filter["notifications"]["resourceSubscriptions"] = json!(watched);
    }
    let params = meta::with_modern_meta(filter, &link.offered);
    let body = envelope::request(link.next_id(), "subscriptions/listen", params);
    let headers = link.client.headers(Some(&body));
    let sent = wire.exchange(
        Method::POST,
        headers,
        Some(envelope::to_bytes(&body)),
        forever,
    );
    sent.await.ok()
}

/// One message of a listener's stream: a resource's update goes to the clients that watch it,
/// other notifications to every client of `/mcp` (without the upstream's subscription id),
/// requests (legacy) to a session that uses the link.
fn heard(link: &Arc<Link>, message: Value, changes: &broadcast::Sender<Value>) {
    match envelope::kind(&message) {
        Kind::Request => super::relay::from_stream(link, &message),
        Kind::Notification => {
            let mut note = message;
            if let Some(params) = note.get_mut("params").and_then(Value::as_object_mut) {
                let meta = params.get_mut("_meta").and_then(Value::as_object_mut);
                if meta.is_some_and(|m| m.remove(SUBSCRIPTION_ID).is_some() && m.is_empty()) {
                    params.remove("_meta");
                }
            }
            if note["method"] == "notifications/resources/updated" {
                link.updated(&note);
                return;
            }
            if let Some(note) = super::relay::on_note(link, note) {
                let _ = changes.send(note);
            }
        }
        // An answer replayed for a request already read, or the listen's graceful end.
        Kind::Response | Kind::Invalid => {}
    }
}
