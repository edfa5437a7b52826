//! One request to one upstream, driven to its answer in the era of the client that asked —
//! where the two eras meet:
//!
//! - A legacy upstream asks its client (sampling, elicitation, roots) in the middle of a
//!   request. A legacy client gets the request passed on ([`super::relay`]). A modern client
//!   gets an `input_required` result at once while the broker holds the upstream's request open
//!   ([`Hub::hold`]); the retry's `inputResponses` are sent to the upstream as its answers and
//!   the same request goes on.
//! - A modern upstream answers `input_required`. A modern client gets it with the broker's own
//!   `requestState` around the upstream's, so its retry reaches the same upstream. A legacy
//!   client is asked each input request as a server→client request on its stream; the broker
//!   retries upstream with the answers.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::answers::{InFlight, Step};
use super::calls::{Caller, Retry};
use super::link::{protocol, Link, LinkError};
use super::relay::{shown, verdict, Verdict};
use crate::clock::unix_now;
use crate::config::ServerConfig;
use crate::protocol::envelope::{self, Kind};
use crate::protocol::raw::Answer;
use crate::protocol::shallow::Params;
use crate::protocol::{codes, mrtr, Era};
use crate::upstream::UpstreamError;

/// How a request driven to its end ended.
pub(super) enum Driven {
    /// The upstream's answer.
    Answer(Answer),
    /// The broker's `input_required` for a modern client, the upstream's request held.
    Held(Value),
}

/// Rounds of `input_required` the broker answers for a legacy client before it gives up.
const MAX_ROUNDS: usize = 8;
/// How long the broker waits for a legacy client's answer to a bridged request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

impl Caller<'_> {
    /// One request to one server, answered in this client's era; a forgotten upstream session
    /// is reopened once. `client_id` (the client's own request id) makes the request
    /// cancellable; `retry` continues a modern client's earlier `input_required`.
    pub(super) async fn ask(
        &self,
        cfg: &ServerConfig,
        method: &str,
        mut params: Params,
        timeout: Duration,
        client_id: Option<&Value>,
        retry: Option<Retry>,
    ) -> Result<Answer, UpstreamError> {
        if let Some(r) = retry {
            if let Some(key) = r.inner.as_deref().and_then(|i| i.strip_prefix("h:")) {
                return Box::pin(self.resume(cfg, key, r.responses)).await;
            }
            // `u:STATE` / `n:`: a modern upstream's own state, or none; no inner part: the
            // broker's own question (a sign-in link), which the upstream never asked.
            let inner = r.inner.as_deref();
            let theirs = inner.and_then(|i| i.strip_prefix("u:"));
            let values = inner.and_then(|_| params.value_mut().as_object_mut());
            if let Some(map) = values {
                map.extend(r.responses.map(|v| ("inputResponses".into(), v)));
                map.extend(theirs.map(|s| ("requestState".into(), json!(s))));
            }
        }
        for _ in 0..2 {
            let link = self.link(cfg).await?;
            // A modern `tools/call` mirrors the tool's `x-mcp-header` arguments as headers, known
            // only from its tool list: a link that never listed tools (the client kept its list
            // from an earlier session) lists them first, once. A failed listing is left to the
            // call itself to report.
            if method == "tools/call" && link.era() == Era::Modern && !link.client.knows_tools() {
                let _ = Box::pin(self.list_one(cfg, super::names::Listing::Tools)).await;
            }
            let mut flight = InFlight::start(&link, method, params, &self.offered, timeout);
            // Kept for a retry with answers, or for the one new try after a forgotten session.
            params = std::mem::take(&mut flight.sent);
            // A legacy client's cancellation is passed on to a legacy link under the link's id;
            // a modern link learns it from the closed stream, so nothing is tracked for it.
            let tracked = client_id.filter(|_| link.era() == Era::Legacy);
            if let (Some(s), Some(id)) = (self.session, tracked) {
                s.track(id, &link, flight.id);
            }
            let answer = self.drive(flight).await;
            if let (Some(s), Some(id)) = (self.session, tracked) {
                s.untrack(id);
            }
            match answer {
                Err(LinkError::Gone) => {
                    let (key, _) = self.hub.pool.link(cfg, &self.offered).await?;
                    self.hub.pool.forget(&key, &link).await;
                }
                driven => return self.outcome(&link, method, params, timeout, driven).await,
            }
        }
        let why = "the upstream forgot its session twice in a row".into();
        Err(protocol(cfg, why))
    }

    /// A request already sent and answered ([`InFlight::answered`]), or its parsed answer,
    /// driven to what this client gets as [`Caller::ask`] drives its own.
    pub(super) async fn pursue(
        &self,
        flight: Result<InFlight, (Arc<Link>, Params, Answer)>,
        method: &str,
    ) -> Result<Answer, UpstreamError> {
        let (link, params, driven) = match flight {
            Ok(mut flight) => {
                let params = std::mem::take(&mut flight.sent);
                (flight.link.clone(), params, self.drive(flight).await)
            }
            Err((link, params, answer)) => (link, params, Ok(Driven::Answer(answer))),
        };
        let timeout = super::calls::CALL_TIMEOUT;
        self.outcome(&link, method, params, timeout, driven).await
    }

    /// What a request driven to its end gives this client: a modern upstream's
    /// `input_required` settled ([`Caller::settle`]), anything else as it came.
    async fn outcome(
        &self,
        link: &Arc<Link>,
        method: &str,
        params: Params,
        timeout: Duration,
        driven: Result<Driven, LinkError>,
    ) -> Result<Answer, UpstreamError> {
        match driven {
            Ok(Driven::Held(answer)) => Ok(Answer::Value(answer)),
            Ok(Driven::Answer(answer)) if !answer.asks_for_input() => Ok(answer),
            Ok(Driven::Answer(answer)) => {
                let answer = answer.into_value();
                let settled = self.settle(link, method, params.into_value(), timeout, answer);
                Box::pin(settled).await.map(Answer::Value)
            }
            Err(e) => Err(e.upstream(link.cfg())),
        }
    }

    /// Reads a request to its answer: notifications go to the client; the upstream's own
    /// requests go on to a legacy client, or make a modern client's `input_required`.
    pub(super) async fn drive(&self, mut flight: InFlight) -> Result<Driven, LinkError> {
        loop {
            let message = match flight.next().await {
                Step::Done(answer) => return answer.map(Driven::Answer),
                Step::Message(m) => m,
            };
            if message.is_null() {
                let _ = self.out.send(message).await; // the upstream streams its answer
                continue;
            }
            if envelope::kind(&message) == Kind::Notification {
                self.note(&flight.link, message).await;
                continue;
            }
            let Some(session) = self.session else {
                let mut asked = vec![message];
                asked.extend(flight.ready());
                match Box::pin(self.hold(flight, asked)).await {
                    Ok(answer) => return Ok(Driven::Held(answer)),
                    Err(f) => {
                        flight = f;
                        continue;
                    }
                }
            };
            match session.relay.pass_on(&flight.link, &message) {
                Ok(passed) => {
                    let _ = self.out.send(passed).await;
                }
                Err(answer) => {
                    let link = flight.link.clone();
                    tokio::spawn(async move { link.deliver(&answer).await });
                }
            }
        }
    }

    /// A notification during a request, as this client gets it.
    async fn note(&self, link: &Arc<Link>, note: Value) {
        let mine = match (self.session, note["method"].as_str()) {
            (Some(s), Some("notifications/cancelled")) => s.relay.cancelled(link, &note),
            (None, Some("notifications/cancelled")) => None,
            _ => super::relay::on_note(link, note),
        };
        if let Some(note) = mine {
            let _ = self.out.send(note).await;
        }
    }

    /// A modern client meets a legacy upstream's requests: those it can answer become its
    /// `input_required` (the others are answered by the broker); `Err` gives the request back
    /// when none is left for the client.
    async fn hold(&self, flight: InFlight, messages: Vec<Value>) -> Result<Value, InFlight> {
        let link = flight.link.clone();
        let server = link.cfg().name.clone();
        let mut inputs = Map::new();
        let mut asked = Vec::new();
        for message in messages.into_iter().filter(|m| !m.is_null()) {
            if envelope::kind(&message) == Kind::Notification {
                self.note(&link, message).await;
                continue;
            }
            let id = message["id"].clone();
            let method = message["method"].as_str().unwrap_or_default();
            let params = message.get("params").cloned().unwrap_or(json!({}));
            match verdict(
                &self.offered,
                server.as_str(),
                &id,
                method,
                &params,
                asked.len(),
            ) {
                Verdict::Answer(a) => link.deliver(&a).await,
                Verdict::PassOn => {
                    let key = format!("{server}-{}", asked.len() + 1);
                    let shown = self.shown(server.as_str(), method, params);
                    inputs.insert(key.clone(), json!({"method": method, "params": shown}));
                    asked.push((key, id));
                }
            }
        }
        if asked.is_empty() {
            return Err(flight);
        }
        let key = self
            .hub
            .hold(self.principal, &server, flight, asked, unix_now());
        let state = self
            .hub
            .wrap(self.principal, &server, Some(format!("h:{key}")));
        let result = json!({"resultType": mrtr::INPUT_REQUIRED, "inputRequests": inputs, "requestState": state});
        Ok(envelope::result(json!(link.next_id()), result))
    }

    /// A modern client's retry of a held request: its answers go to the upstream under the
    /// upstream's ids (a missing one as an error), and the request is read on.
    async fn resume(
        &self,
        cfg: &ServerConfig,
        key: &str,
        responses: Option<Value>,
    ) -> Result<Answer, UpstreamError> {
        let Some(held) = self.hub.resume(key, self.principal, &cfg.name, unix_now()) else {
            let why = "the request this requestState continues is over (answered, timed out, or the broker restarted); send it again without requestState";
            let refused = envelope::error(json!(0), codes::INVALID_PARAMS, why, None);
            return Ok(Answer::Value(refused));
        };
        let responses = responses.unwrap_or(Value::Null);
        for (key, id) in &held.asked {
            let answer = match responses.get(key) {
                Some(r) => envelope::result(id.clone(), r.clone()),
                None => envelope::error(
                    id.clone(),
                    codes::INVALID_REQUEST,
                    "the client gave no answer to this request",
                    None,
                ),
            };
            held.flight.link.deliver(&answer).await;
        }
        match self.drive(held.flight).await {
            Ok(Driven::Answer(a)) => Ok(a),
            Ok(Driven::Held(a)) => Ok(Answer::Value(a)),
            Err(e) => Err(e.upstream(cfg)),
        }
    }

    /// An upstream answer as this client gets it: a modern upstream's `input_required` is
    /// wrapped for a modern client, or asked of a legacy client and retried upstream.
    async fn settle(
        &self,
        link: &Arc<Link>,
        method: &str,
        params: Value,
        timeout: Duration,
        mut answer: Value,
    ) -> Result<Value, UpstreamError> {
        let server = link.cfg().name.clone();
        for _ in 0..MAX_ROUNDS {
            let result = &answer["result"];
            if !result.is_object() || !mrtr::is_input_required(result) {
                return Ok(answer);
            }
            let Some(session) = self.session else {
                let inner = match result["requestState"].as_str() {
                    Some(s) => format!("u:{s}"),
                    None => "n:".to_string(),
                };
                let state = self.hub.wrap(self.principal, &server, Some(inner));
                answer["result"]["requestState"] = json!(state);
                if let Some(inputs) = answer["result"]["inputRequests"].as_object_mut() {
                    for request in inputs.values_mut().filter(|r| r.is_object()) {
                        let method = request["method"].as_str().unwrap_or_default().to_string();
                        let params = request.get("params").cloned().unwrap_or(json!({}));
                        request["params"] = self.shown(server.as_str(), &method, params);
                    }
                }
                return Ok(answer);
            };
            let responses = match self.ask_client(session, &server, result).await {
                Ok(r) => r,
                Err(why) => return Ok(envelope::error(json!(0), codes::INTERNAL_ERROR, why, None)),
            };
            let mut again = params.clone();
            again["inputResponses"] = Value::Object(responses);
            if let Some(state) = result.get("requestState") {
                again["requestState"] = state.clone();
            }
            let flight = InFlight::start(link, method, again.into(), &self.offered, timeout);
            answer = match self.drive(flight).await {
                Ok(Driven::Answer(a)) => a.into_value(),
                Ok(Driven::Held(a)) => a,
                Err(e) => return Err(e.upstream(link.cfg())),
            };
        }
        let why = format!("the server still asked for input after {MAX_ROUNDS} rounds");
        Err(protocol(link.cfg(), why))
    }

    /// An upstream's request as this client sees it: with the server named, unless scoped.
    fn shown(&self, server: &str, method: &str, params: Value) -> Value {
        match self.scope {
            Some(_) => params,
            None => shown(server, method, params),
        }
    }

    /// Asks a legacy client each of a modern upstream's input requests as a server→client
    /// request on its stream, and collects the answers (an unanswered one is left out: the
    /// upstream may ask again).
    async fn ask_client(
        &self,
        session: &super::session::Session,
        server: &crate::config::ServerName,
        result: &Value,
    ) -> Result<Map<String, Value>, String> {
        let mut waits = Vec::new();
        let empty = Map::new();
        let requests = result["inputRequests"].as_object().unwrap_or(&empty);
        for (key, request) in requests {
            let method = request["method"].as_str().unwrap_or_default();
            let params = request.get("params").cloned().unwrap_or(json!({}));
            let (message, rx) = session.relay.ask(server.as_str(), method, params)?;
            let _ = self.out.send(message).await;
            waits.push((key.clone(), rx));
        }
        let mut responses = Map::new();
        for (key, rx) in waits {
            if let Ok(Ok(answer)) = tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
                if let Some(r) = answer.get("result") {
                    responses.insert(key, r.clone());
                }
            }
        }
        Ok(responses)
    }
}
