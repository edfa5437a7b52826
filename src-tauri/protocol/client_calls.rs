//! The client's side of a server's requests for input, in both eras. A legacy server sends its
//! own requests (elicitation, sampling, roots, ping) on the response stream of the request it is
//! serving and waits: they are answered on the session while that stream is still being read. A
//! modern server answers `input_required` instead (MRTR): the client answers its
//! `inputRequests` and sends the request again, under a new id, with `inputResponses` and the
//! exact `requestState`, for a bounded number of rounds.
//!
//! What to answer is the caller's business (a [`Respond`]): the protocol only says how.

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::MutexGuard;

use super::{Client, ClientError, Transport, MAX_ANSWER};
use crate::protocol::era::Era;
use crate::protocol::sse::{SseEvent, SseParser};
use crate::protocol::{codes, envelope, mrtr};

/// How the caller answers one of the server's requests for input: `(method, params)` → its
/// result, or `None` to refuse it (legacy: a `-32601` error; modern: left out of
/// `inputResponses`).
pub type Respond<'a> = &'a (dyn Fn(&str, &Value) -> Option<Value> + Sync);

/// Most `input_required` rounds one request goes through before the client gives up on it.
pub const MAX_INPUT_ROUNDS: usize = 8;

impl<T: Transport> Client<T> {
    /// Sends a request and follows it to its final answer: a legacy server's requests on the
    /// way are answered through `respond`, and so are a modern server's `inputRequests`, each
    /// round retried as MRTR says. Notifications go to `on_message`.
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        respond: Respond<'_>,
        on_message: &mut (dyn FnMut(Value) + Send),
    ) -> Result<Value, ClientError> {
        let mut current = params.clone();
        for _ in 0..MAX_INPUT_ROUNDS {
            let answer = self
                .request_answering(method, current, respond, on_message)
                .await?;
            let result = &answer["result"];
            let asks = self.era() == Era::Modern
                && mrtr::RETRYABLE.contains(&method)
                && mrtr::is_input_required(result);
            if !asks {
                return Ok(answer);
            }
            let mut responses = Map::new();
            for (key, asked, asked_params) in mrtr::input_requests(result) {
                if let Some(r) = respond(asked, asked_params) {
                    responses.insert(key.to_string(), r);
                }
            }
            current = mrtr::retry_params(&params, result, Value::Object(responses));
        }
        Err(ClientError::Protocol(format!(
            "{method} still asked for input after {MAX_INPUT_ROUNDS} rounds"
        )))
    }

    /// [`Client::request`], answering the server's own requests (legacy) through `respond`
    /// while the answer is awaited: those on its response stream, and — when this client
    /// declared a capability a server asks through (elicitation, sampling, roots) — those on
    /// the session's GET stream, where a server sends what belongs to no request of the
    /// client's. That stream is opened before the request is sent (a server drops a message
    /// when no stream is open) and kept for the session's later requests.
    pub async fn request_answering(
        &self,
        method: &str,
        params: Value,
        respond: Respond<'_>,
        on_message: &mut (dyn FnMut(Value) + Send),
    ) -> Result<Value, ClientError> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
        let listens = self.era() == Era::Legacy
            && self.session.is_some()
            && ["elicitation", "sampling", "roots"]
                .iter()
                .any(|c| self.client_capabilities.get(c).is_some());
        let standing = if listens {
            Some(self.standing().await)
        } else {
            None
        };
        let listen = listen(standing, tx.clone());
        let mut route = |m: Value| {
            if envelope::kind(&m) == envelope::Kind::Request {
                let _ = tx.send(m);
            } else {
                on_message(m);
            }
        };
        let answer = self.request(method, params, &mut route);
        tokio::pin!(answer, listen);
        loop {
            tokio::select! {
                done = &mut answer => return done,
                Some(asked) = rx.recv() => {
                    if let Err(e) = self.send_message(&reply(&asked, respond)).await {
                        tracing::debug!(error = %e, "the answer to the server's request was not accepted");
                    }
                }
                () = &mut listen => {}
            }
        }
    }

    /// The legacy session's GET stream, opened when it has not been tried yet (a server that
    /// refuses it, e.g. with 405, is not asked again).
    async fn standing(&self) -> MutexGuard<'_, Standing> {
        let mut guard = self.standing.lock().await;
        if matches!(*guard, Standing::Untried) {
            let mut h = self.headers(None);
            h.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
            let opened =
                tokio::time::timeout(self.timeout, self.transport.send(Method::GET, h, None)).await;
            *guard = match opened {
                Ok(Ok(r)) if r.status().is_success() && is_event_stream(&r) => {
                    Standing::Open(SseParser::default(), r.bytes_stream().boxed())
                }
                _ => Standing::Refused,
            };
        }
        guard
    }
}

/// The session's GET stream, as far as this client got with it.
#[derive(Default)]
pub(super) enum Standing {
    #[default]
    Untried,
    Open(SseParser, BoxStream<'static, reqwest::Result<Bytes>>),
    Refused,
}

fn is_event_stream(r: &reqwest::Response) -> bool {
    r.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/event-stream"))
}

/// Reads the session's GET stream (when open), passing the server's requests to `asked`; never
/// finishes. A stream that ends (or grows an event past the cap) is dropped, to be opened again
/// by a later request.
async fn listen(standing: Option<MutexGuard<'_, Standing>>, asked: UnboundedSender<Value>) {
    if let Some(mut guard) = standing {
        if let Standing::Open(parser, stream) = &mut *guard {
            while let Some(Ok(chunk)) = stream.next().await {
                for event in parser
                    .push(&chunk)
                    .into_iter()
                    .filter(SseEvent::carries_message)
                {
                    if let Ok(m) = serde_json::from_str::<Value>(&event.data) {
                        if envelope::kind(&m) == envelope::Kind::Request {
                            let _ = asked.send(m);
                        }
                    }
                }
                if parser.buffered() > MAX_ANSWER {
                    break;
                }
            }
            *guard = Standing::Untried;
        }
    }
    std::future::pending::<()>().await
}

/// The client's response to a server's request: `ping` is answered empty, the rest by
/// `respond`, and what it refuses with `-32601`.
pub fn reply(request: &Value, respond: Respond<'_>) -> Value {
    let id = request["id"].clone();
    let method = request["method"].as_str().unwrap_or("");
    if method == "ping" {
        return envelope::result(id, json!({}));
    }
    match respond(method, &request["params"]) {
        Some(result) => envelope::result(id, result),
        None => envelope::error(
            id,
            codes::METHOD_NOT_FOUND,
            format!("this client does not answer {method}"),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_request_is_answered_by_the_caller_or_refused() {
        let respond =
            |m: &str, p: &Value| (m == "roots/list").then(|| json!({"roots": [], "p": p}));
        let roots = reply(
            &json!({"id": 7, "method": "roots/list", "params": {"x": 1}}),
            &respond,
        );
        assert_eq!(roots["id"], 7);
        assert_eq!(roots["result"]["p"]["x"], 1);
        let refused = reply(
            &json!({"id": "a", "method": "sampling/createMessage"}),
            &respond,
        );
        assert_eq!(refused["error"]["code"], codes::METHOD_NOT_FOUND);
        assert_eq!(refused["id"], "a");
        let ping = reply(&json!({"id": 1, "method": "ping"}), &respond);
        assert_eq!(ping["result"], json!({}));
    }
}
