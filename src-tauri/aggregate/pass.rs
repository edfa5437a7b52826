//! A modern client's `tools/call` / `prompts/get` on `/mcp`, passed through when the broker
//! already speaks 2026-07-28 to its server. The request goes upstream as the link's own route
//! writes it (the server's own name, the broker's protocol `_meta`, the link's headers) but
//! under the client's own id, so a plain JSON answer needs no rewriting: it goes back as the
//! bytes the upstream wrote, as `/{server}/mcp` passes answers back. Everything else is read
//! on by a [`Caller`] exactly as the link's route reads it ([`Caller::passed`]): an event
//! stream, an HTTP error, a failure to reach the server, an answer that is (or may be)
//! `input_required` or that lacks its `resultType` ([`mrtr::must_be_read`]).
//!
//! A call the link's route must send itself is given back untouched: a name the endpoint
//! refuses, a server without an open modern link, a tool list not read yet, a tool whose
//! arguments go in headers ([`Link::passes`]).

use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::Value;

use super::answers::InFlight;
use super::calls::{Caller, CALL_TIMEOUT};
use super::link::{protocol, Link};
use super::session::RpcError;
use super::{names, relay, Aggregate};
use crate::protocol::client::{answer_from, read_json_body, ClientError};
use crate::protocol::mrtr;
use crate::protocol::raw::Reply;
use crate::protocol::shallow::{Params, TextCall};
use crate::upstream::http::unreachable;
use crate::upstream::UpstreamError;

/// A call passed through.
pub enum Passed {
    /// The upstream's plain JSON answer, as it wrote it (its id is the client's).
    Plain(Bytes),
    /// An answer a [`Caller`] reads on ([`Caller::passed`]); boxed: the rare case.
    Read(Box<Sent>),
}

/// A call sent upstream whose answer must be read.
pub struct Sent {
    link: Arc<Link>,
    call: TextCall,
    got: Result<Got, UpstreamError>,
}

enum Got {
    /// The response, unread: not a JSON answer with a 2xx status.
    Response(reqwest::Response),
    /// A JSON answer's body.
    Body(Bytes),
}

impl Sent {
    /// The client's id of the call.
    pub fn id(&self) -> &Value {
        self.call.id()
    }
}

impl Aggregate {
    /// Sends `call` (a modern client's, declaring `caps`) through to its server, or gives it
    /// back when the link's own route must send it.
    pub async fn pass_through(&self, mut call: TextCall, caps: &Value) -> Result<Passed, TextCall> {
        let Some((link, prefix)) = self.passable(&call) else {
            return Err(call);
        };
        let mut name = call.take_name();
        name.drain(..prefix);
        call.set_name(name);
        let (headers, body) = link.passed(&call, &relay::passed_on(caps));
        let sent = link
            .wire()
            .exchange(Method::POST, headers, Some(body), CALL_TIMEOUT);
        let got = match sent.await {
            Ok(response) => plain(&link, response).await,
            Err(e) => Err(e),
        };
        match got {
            Ok(Got::Body(body)) if !mrtr::must_be_read(&body) => Ok(Passed::Plain(body)),
            got => Ok(Passed::Read(Box::new(Sent { link, call, got }))),
        }
    }

    /// The open modern link a call may pass through, and the length of its name's
    /// `SERVER__` prefix; `None` for a call the link's own route must send.
    fn passable(&self, call: &TextCall) -> Option<(Arc<Link>, usize)> {
        let (server, name) = names::split(call.name())?;
        let config = self.hub.broker.config();
        let found = config.server(server);
        let tool = (call.method() == "tools/call").then_some(name);
        let cfg = found.filter(|_| names::refusal(found, server, tool).is_none())?;
        let link = self.hub.pool.modern(cfg)?;
        let prefix = call.name().len() - name.len();
        link.passes(call.method(), name).then_some((link, prefix))
    }
}

/// A 2xx JSON answer's body, read; any other response is left unread.
async fn plain(link: &Link, response: reqwest::Response) -> Result<Got, UpstreamError> {
    let json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !json || !response.status().is_success() {
        return Ok(Got::Response(response));
    }
    read_json_body(response)
        .await
        .map(Got::Body)
        .map_err(|e| match e {
            ClientError::Unreachable(why) => unreachable(link.cfg(), why),
            e => protocol(link.cfg(), e.to_string()),
        })
}

impl Caller<'_> {
    /// The answer of a call passed through, as this client gets it: read on and driven as the
    /// link's route reads and drives its own ([`Caller::pursue`], [`Caller::replied`]).
    pub async fn passed(&self, sent: Box<Sent>) -> Result<Reply, RpcError> {
        let Sent { link, call, got } = *sent;
        let (method, id) = (call.method(), call.id().clone());
        let params = Params::Text(call);
        let asked = match got {
            Err(e) => Err(e),
            Ok(Got::Response(r)) => {
                let flight = InFlight::answered(&link, (id, method), params, r);
                self.pursue(Ok(flight), method).await
            }
            Ok(Got::Body(body)) => match answer_from(body, &id, method) {
                Ok(answer) => {
                    self.pursue(Err((link.clone(), params, answer)), method)
                        .await
                }
                Err(e) => Err(protocol(link.cfg(), e.to_string())),
            },
        };
        self.replied(link.cfg(), asked, method == "tools/call")
            .await
    }
}
