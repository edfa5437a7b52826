//! Upstreams that only speak the older HTTP+SSE transport (2024-11-05; config
//! `"transport": "sse"`), served to local clients as Streamable HTTP.
//!
//! Per client session the broker holds one upstream event stream: `initialize` opens it
//! (GET, `endpoint` event → the message URL, which must be on the upstream's origin), each
//! client POST is relayed to the message URL, and the answer with the same JSON-RPC `id` is
//! taken from the event stream and returned as `application/json`. Server-initiated messages go
//! to the client's GET stream. The session id handed to the client is the broker's own (random);
//! it is bound to the principal that opened it. When the upstream stream ends, the session is
//! gone (404) and the client re-initializes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use url::Url;

use super::host::ClientOrigin;
use super::proxy::{describe, unreachable, HEADERS_TIMEOUT};
use super::rpc::{self, Asked};
use super::state::GatewayState;
use super::toolfilter;
use crate::broker::Broker;
use crate::config::ServerConfig;
use crate::issuer::{crypto, Principal};
use crate::protocol::headers::names;
use crate::protocol::sse::SseParser;
use crate::sync::lock;
use crate::upstream::{exchange, Credential, UpstreamError};

/// How long the upstream may take to name its message endpoint.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(15);
/// Server-initiated messages buffered for a client's GET stream.
const OUTBOUND_BUFFER: usize = 64;

/// One authenticated client request to a legacy upstream.
pub struct Ctx<'a> {
    pub broker: &'a Broker,
    pub gw: &'a Arc<GatewayState>,
    pub cfg: &'a ServerConfig,
    pub asked: &'a Asked<'a>,
    pub principal: &'a Principal,
    pub origin: &'a ClientOrigin,
}

impl Ctx<'_> {
    fn fail(&self, e: UpstreamError) -> Response {
        rpc::failure(e, self.cfg, self.asked, self.principal, self.origin, None)
    }

    fn protocol(&self, detail: impl Into<String>) -> UpstreamError {
        UpstreamError::Protocol {
            server: self.cfg.name.to_string(),
            detail: detail.into(),
        }
    }
}

/// A bridged session: the upstream's message URL and the answers awaited from its stream.
pub struct Session {
    server: String,
    owner: Principal,
    post_url: Url,
    waiters: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    outbound: Mutex<Option<mpsc::Receiver<Value>>>,
    /// Stops the stream reader when the client ends the session.
    stop: tokio_util::sync::CancellationToken,
}

pub async fn handle(ctx: &Ctx<'_>, session_id: Option<&str>) -> Response {
    let owner = ctx.principal.clone();
    let session = match session_id {
        Some(id) => match lock(&ctx.gw.legacy).get(id).cloned() {
            Some(s) if s.owner == *ctx.principal && s.server == ctx.cfg.name.as_str() => {
                Some((id.to_string(), s))
            }
            _ => return rpc::session_not_found(),
        },
        None => None,
    };
    match (ctx.asked.method, session) {
        (&Method::POST, Some((id, s))) => relay(ctx, &id, &s).await,
        (&Method::POST, None) => {
            let message: Value = serde_json::from_slice(ctx.asked.body).unwrap_or(Value::Null);
            if message["method"] != "initialize" {
                return (StatusCode::BAD_REQUEST, Json(json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "no session: send initialize first (Mcp-Session-Id missing)"}}))).into_response();
            }
            match open(ctx, owner).await {
                Ok((id, s)) => relay(ctx, &id, &s).await,
                Err(e) => ctx.fail(e),
            }
        }
        (&Method::GET, Some((_, s))) => match lock(&s.outbound).take() {
            Some(rx) => event_stream(rx),
            None => (StatusCode::CONFLICT, Json(json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "this session already has its GET stream open"}}))).into_response(),
        },
        (&Method::DELETE, Some((id, s))) => {
            s.stop.cancel();
            lock(&ctx.gw.legacy).remove(&id);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => (StatusCode::METHOD_NOT_ALLOWED, [("allow", "POST")]).into_response(),
    }
}

/// One request to the upstream through the exchange (credential, refresh on 401, step-up).
async fn send(
    ctx: &Ctx<'_>,
    method: Method,
    url: &Url,
    headers: &HeaderMap,
    body: Option<&Bytes>,
) -> Result<reqwest::Response, UpstreamError> {
    let build = |c: &Credential| exchange::request(&method, url, headers, body, c);
    exchange::send(ctx.broker.upstream(), ctx.cfg, HEADERS_TIMEOUT, build).await
}

/// Opens the upstream event stream and waits for its `endpoint` event.
async fn open(ctx: &Ctx<'_>, owner: Principal) -> Result<(String, Arc<Session>), UpstreamError> {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    let response = send(ctx, Method::GET, &ctx.cfg.url, &headers, None).await?;
    if !response.status().is_success() {
        return Err(ctx.protocol(format!(
            "opening the event stream answered HTTP {}",
            response.status()
        )));
    }
    let mut bytes = response.bytes_stream();
    let mut parser = SseParser::default();
    let mut early = Vec::new();
    let endpoint = tokio::time::timeout(ENDPOINT_TIMEOUT, async {
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk.map_err(|e| unreachable(ctx.cfg, describe(&e)))?;
            for event in parser.push(&chunk) {
                if event.event == "endpoint" {
                    return Ok(event.data);
                }
                early.push(event);
            }
        }
        Err(ctx.protocol("the event stream ended before naming its message endpoint"))
    })
    .await
    .map_err(|_| ctx.protocol("the event stream did not name its message endpoint in time"))??;
    let post_url = message_endpoint(ctx, &endpoint)?;
    let (tx, rx) = mpsc::channel(OUTBOUND_BUFFER);
    let session = Arc::new(Session {
        server: ctx.cfg.name.to_string(),
        owner,
        post_url,
        waiters: Mutex::default(),
        outbound: Mutex::new(Some(rx)),
        stop: tokio_util::sync::CancellationToken::new(),
    });
    let id = crypto::random_id();
    lock(&ctx.gw.legacy).insert(id.clone(), session.clone());
    for event in early {
        deliver(&session, &tx, event);
    }
    let reader = read_events(
        ctx.gw.clone(),
        session.clone(),
        id.clone(),
        bytes,
        parser,
        tx,
    );
    tokio::spawn(reader);
    Ok((id, session))
}

/// The `endpoint` event's URL, resolved against the server's URL: on the server's own origin only.
fn message_endpoint(ctx: &Ctx<'_>, endpoint: &str) -> Result<Url, UpstreamError> {
    let post_url = ctx
        .cfg
        .url
        .join(endpoint.trim())
        .map_err(|_| ctx.protocol("the message endpoint is not a URL"))?;
    if post_url.origin() != ctx.cfg.url.origin() {
        return Err(ctx.protocol(format!(
            "the message endpoint {} is not on the server's own origin; refusing it",
            post_url.origin().ascii_serialization()
        )));
    }
    Ok(post_url)
}

/// Reads the upstream event stream until it ends or the session stops, then forgets the session.
async fn read_events<S>(
    gw: Arc<GatewayState>,
    session: Arc<Session>,
    id: String,
    mut bytes: S,
    mut parser: SseParser,
    tx: mpsc::Sender<Value>,
) where
    S: futures_util::Stream<Item = reqwest::Result<Bytes>> + Unpin,
{
    loop {
        tokio::select! {
            _ = session.stop.cancelled() => break,
            chunk = bytes.next() => match chunk {
                Some(Ok(chunk)) => {
                    for event in parser.push(&chunk) {
                        deliver(&session, &tx, event);
                    }
                }
                _ => break,
            },
        }
    }
    lock(&gw.legacy).remove(&id);
    lock(&session.waiters).clear();
}

/// One upstream event: an answer goes to the request waiting for it, anything else to the
/// client's stream.
fn deliver(session: &Session, tx: &mpsc::Sender<Value>, event: crate::protocol::sse::SseEvent) {
    if event.event != "message" {
        return;
    }
    let Ok(message) = serde_json::from_str::<Value>(&event.data) else {
        return;
    };
    let is_response = message.get("method").is_none()
        && (message.get("result").is_some() || message.get("error").is_some());
    if is_response {
        let key = message["id"].to_string();
        if let Some(waiter) = lock(&session.waiters).remove(&key) {
            let _ = waiter.send(message);
        }
    } else {
        let _ = tx.try_send(message);
    }
}

/// Relays one client message; a request waits for its answer on the event stream.
async fn relay(ctx: &Ctx<'_>, session_id: &str, session: &Session) -> Response {
    let message: Value = match serde_json::from_slice(ctx.asked.body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": format!("parse error: {e}")}}))).into_response(),
    };
    let waiter = (message.get("method").is_some()
        && message.get("id").is_some_and(|id| !id.is_null()))
    .then(|| {
        let (tx, rx) = oneshot::channel();
        lock(&session.waiters).insert(message["id"].to_string(), tx);
        rx
    });
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = Some(ctx.asked.body);
    match send(ctx, Method::POST, &session.post_url, &headers, body).await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            return ctx
                .fail(ctx.protocol(format!("the message endpoint answered HTTP {}", r.status())))
        }
        Err(e) => return ctx.fail(e),
    }
    let session_header =
        HeaderValue::from_str(session_id).unwrap_or(HeaderValue::from_static("invalid"));
    let Some(rx) = waiter else {
        return (StatusCode::ACCEPTED, [(names::SESSION_ID, session_header)]).into_response();
    };
    match tokio::time::timeout(HEADERS_TIMEOUT, rx).await {
        Ok(Ok(mut answer)) => {
            toolfilter::filter_answer(ctx.cfg, &message, &mut answer);
            ([(names::SESSION_ID, session_header)], Json(answer)).into_response()
        }
        Ok(Err(_)) => ctx
            .fail(ctx.protocol("the upstream closed its event stream before answering; reconnect")),
        Err(_) => ctx.fail(ctx.protocol("no answer on the event stream in time")),
    }
}

/// The client's GET stream: server-initiated messages as `message` events.
pub(super) fn event_stream(rx: mpsc::Receiver<Value>) -> Response {
    event_stream_after(Vec::new(), rx)
}

/// [`event_stream`] of `first`, then what `rx` carries (`null`, an outbox's mark that an
/// upstream streams, is no message and is left out).
pub(super) fn event_stream_after(first: Vec<Value>, rx: mpsc::Receiver<Value>) -> Response {
    let rest =
        futures_util::stream::unfold(rx, |mut rx| async move { Some((rx.recv().await?, rx)) });
    let stream = futures_util::stream::iter(first)
        .chain(rest)
        .filter(|message| std::future::ready(!message.is_null()))
        .map(|message| {
            Ok::<_, Infallible>(Bytes::from(format!("event: message\ndata: {message}\n\n")))
        });
    let mut response = Response::new(Body::from_stream(stream));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    response
}
