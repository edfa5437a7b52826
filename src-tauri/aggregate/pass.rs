//! A `tools/call` / `prompts/get` on `/mcp` passed through to a server the broker already speaks
//! the client's era to, on a link that is open: the work `/{server}/mcp` does, plus the name.
//!
//! - A modern client's call goes up as the link's own route writes it (the server's own name,
//!   the broker's protocol `_meta`, the link's headers) but under the client's own id, so a
//!   plain JSON answer needs no rewriting: it goes back as the bytes the upstream wrote.
//! - A legacy client's call goes up on the link its session already uses for that server, under
//!   the link's id (the upstream session is shared), and a plain result goes back written
//!   around the upstream's text under the client's id; it is tracked for cancellation.
//!
//! Everything else is read on by a [`Caller`] exactly as the link's route reads it
//! ([`Caller::passed`]): an event stream, an HTTP error, a failure to reach the server, an answer
//! that is (or may be) `input_required` or lacks its `resultType` ([`raw::must_be_read`]), an
//! error. A call the link's route must send itself is given back untouched: a scoped endpoint,
//! a name the endpoint refuses, no open link of the client's era, a modern tool list not read
//! yet or a tool whose arguments go in headers ([`Link::passes`]), a legacy session the upstream
//! forgot (404: the link's route opens a new one).

use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};

use super::answers::InFlight;
use super::calls::{Caller, CALL_TIMEOUT};
use super::hub::Hub;
use super::link::{read_failure, Link, LinkError};
use super::session::{RpcError, Session};
use super::{names, relay, Aggregate};
use crate::config::ServerConfig;
use crate::protocol::client::{answer_from, read_json_body};
use crate::protocol::raw::{self, RawResult, Reply};
use crate::protocol::shallow::{Params, TextCall};
use crate::protocol::Era;
use crate::upstream::UpstreamError;

/// A call passed through.
pub enum Passed {
    /// The reply, ready: the upstream's plain answer under the client's id.
    Plain(Bytes),
    /// An answer a [`Caller`] reads on ([`Caller::passed`]); boxed: the rare case.
    Read(Box<Sent>),
}

/// A call sent upstream whose answer must be read.
pub struct Sent {
    link: Arc<Link>,
    call: TextCall,
    /// The id the upstream was asked under.
    asked: Value,
    got: Result<Got, UpstreamError>,
}

enum Got {
    /// The response, unread: not a JSON answer with a 2xx status.
    Response(reqwest::Response),
    /// A JSON answer's body.
    Body(Bytes),
    /// A legacy upstream's 404: it forgot the session (nothing was done).
    Gone,
}

impl Sent {
    /// The client's id of the call.
    pub fn id(&self) -> &Value {
        self.call.id()
    }
}

impl Aggregate {
    /// Sends a modern client's `call` (declaring `caps`) through to its server, or gives it back.
    pub async fn pass_through(&self, mut call: TextCall, caps: &Value) -> Result<Passed, TextCall> {
        let found = passable(&self.hub, &call, Era::Modern, |cfg| {
            self.hub.pool.modern(cfg)
        });
        let Some((link, prefix)) = found else {
            return Err(call);
        };
        upstream_name(&mut call, prefix);
        let (headers, body) = link.text_request(call.id(), &call, &relay::passed_on(caps));
        let got = send(&link, headers, body).await;
        let asked = call.id().clone();
        match got {
            Ok(Got::Body(body)) if !raw::must_be_read(&body) => Ok(Passed::Plain(body)),
            got => Ok(Passed::Read(Box::new(Sent {
                link,
                call,
                asked,
                got,
            }))),
        }
    }
}

impl Session {
    /// Sends a legacy client's `call` through on the link this session uses for its server, or
    /// gives it back.
    pub async fn pass_through(&self, mut call: TextCall) -> Result<Passed, TextCall> {
        let found = match self.scope {
            Some(_) => None, // a translating `/{server}/mcp`: the eras differ by definition
            None => passable(&self.hub, &call, Era::Legacy, |cfg| self.used_link(cfg)),
        };
        let Some((link, prefix)) = found else {
            return Err(call);
        };
        upstream_name(&mut call, prefix);
        let id = link.next_id();
        let asked = json!(id);
        let (headers, body) = link.text_request(&asked, &call, &link.offered);
        self.track(call.id(), &link, id);
        let got = send(&link, headers, body).await;
        let plain = match &got {
            Ok(Got::Gone) => {
                self.untrack(call.id());
                call.set_name(names::prefixed(link.cfg().name.as_str(), call.name()));
                return Err(call);
            }
            Ok(Got::Body(body)) => RawResult::read(body.clone(), &asked),
            _ => None,
        };
        if let Some(raw) = plain {
            self.untrack(call.id());
            return Ok(Passed::Plain(raw.reply(call.id())));
        }
        Ok(Passed::Read(Box::new(Sent {
            link,
            call,
            asked,
            got,
        })))
    }
}

/// The open link of `era` a call may pass through (found by `link`), and the length of its
/// name's `SERVER__` prefix; `None` for a call the link's own route must send.
fn passable(
    hub: &Hub,
    call: &TextCall,
    era: Era,
    link: impl FnOnce(&ServerConfig) -> Option<Arc<Link>>,
) -> Option<(Arc<Link>, usize)> {
    let (server, name) = names::split(call.name())?;
    let config = hub.broker.config();
    let found = config.server(server);
    let tool = (call.method() == "tools/call").then_some(name);
    let cfg = found.filter(|_| names::refusal(found, server, tool).is_none())?;
    let link = link(cfg)?;
    let prefix = call.name().len() - name.len();
    link.passes(era, call.method(), name)
        .then_some((link, prefix))
}

/// Puts the server's own name (the client's without its `prefix`) in the call.
fn upstream_name(call: &mut TextCall, prefix: usize) {
    let mut name = call.take_name();
    name.drain(..prefix);
    call.set_name(name);
}

/// POSTs a call over `link`; a 2xx JSON answer is read whole.
async fn send(
    link: &Link,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
) -> Result<Got, UpstreamError> {
    let response = link
        .wire()
        .exchange(Method::POST, headers, Some(body), CALL_TIMEOUT)
        .await?;
    let status = response.status();
    if link.forgot_session(status) {
        return Ok(Got::Gone);
    }
    let json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !json || !status.is_success() {
        return Ok(Got::Response(response));
    }
    read_json_body(response)
        .await
        .map(Got::Body)
        .map_err(|e| read_failure(link.cfg(), e))
}

impl Caller<'_> {
    /// The answer of a call passed through, as this client gets it: read on and driven as the
    /// link's route reads and drives its own ([`Caller::pursue`], [`Caller::replied`]).
    pub async fn passed(&self, sent: Box<Sent>) -> Result<Reply, RpcError> {
        let Sent {
            link,
            call,
            asked,
            got,
        } = *sent;
        let (method, id) = (call.method(), call.id().clone());
        let params = Params::Text(call);
        let answer = match got {
            Err(e) => Err(e),
            Ok(Got::Response(r)) => {
                let flight = InFlight::answered(&link, (asked, method), params, r);
                self.pursue(Ok(flight), method).await
            }
            Ok(Got::Body(body)) => match answer_from(body, &asked, method) {
                Ok(answer) => {
                    self.pursue(Err((link.clone(), params, answer)), method)
                        .await
                }
                Err(e) => Err(read_failure(link.cfg(), e)),
            },
            Ok(Got::Gone) => Err(LinkError::Gone.upstream(link.cfg())),
        };
        if let Some(session) = self.session {
            session.untrack(&id);
        }
        self.replied(link.cfg(), answer, method == "tools/call")
            .await
    }
}
