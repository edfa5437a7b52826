//! A probe over the older HTTP+SSE transport (2024-11-05 servers configured with
//! `"transport": "sse"`): GET the event stream, learn the message endpoint from its `endpoint`
//! event, POST requests there and read the responses from the stream. The protocol client
//! (`crate::protocol::client`) sends each request on its own HTTP exchange, which this
//! transport does not do; its messages still come from `crate::protocol`. Always legacy.

use std::time::{Duration, Instant};

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{json, Value};
use url::Url;

use super::message::{chain, describe, failure, headers, secrets_of, snippet};
use super::probe::{result_of, tools_page, ProbeError, ProbeOk, MAX_BODY};
use crate::protocol::era::{Era, LEGACY_VERSIONS};
use crate::protocol::sse::{SseEvent, SseParser};
use crate::protocol::{envelope, meta};
use crate::upstream::Credential;

/// The version of the old transport's own protocol, accepted from servers here only.
const HTTP_SSE_VERSION: &str = "2024-11-05";

/// The probe's `initialize` (id 1), asking for the newest legacy version.
fn initialize_message() -> Value {
    envelope::request(
        1,
        "initialize",
        json!({
            "protocolVersion": LEGACY_VERSIONS[0],
            "capabilities": {},
            "clientInfo": meta::broker_client_info(),
        }),
    )
}

/// The version an `initialize` result negotiated: a legacy one, or the old transport's own.
fn negotiated_version(result: &Value) -> Result<String, ProbeError> {
    match result.get("protocolVersion").and_then(Value::as_str) {
        Some(v) if Era::of(v) == Some(Era::Legacy) || v == HTTP_SSE_VERSION => Ok(v.to_string()),
        Some(v) => Err(ProbeError::Protocol(format!(
            "the server negotiated MCP protocol version {v}, which the broker does not speak over the HTTP+SSE transport (it speaks {}, {HTTP_SSE_VERSION})",
            LEGACY_VERSIONS.join(", ")
        ))),
        None => Err(ProbeError::Protocol(
            "the initialize result has no protocolVersion".into(),
        )),
    }
}

/// The JSON-RPC answer with `id` carried by one SSE `message` event, if it is that event;
/// notifications, server requests and events without data (a priming event) are `None`. An event
/// whose data is not JSON is a protocol error.
fn response_in_event(event: &SseEvent, id: i64, what: &str) -> Result<Option<Value>, ProbeError> {
    if event.event != "message" || !event.carries_message() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(&event.data).map_err(|e| {
        ProbeError::Protocol(format!(
            "{what} sent an event that is not JSON ({e}): {}",
            snippet(&event.data)
        ))
    })?;
    Ok(envelope::find_answer(value, &json!(id)))
}

struct Stream {
    bytes: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    parser: SseParser,
    queued: std::collections::VecDeque<SseEvent>,
    read: usize,
    per_request: Duration,
}

impl Stream {
    async fn next_event(&mut self) -> Result<SseEvent, ProbeError> {
        loop {
            if let Some(e) = self.queued.pop_front() {
                return Ok(e);
            }
            let chunk = tokio::time::timeout(self.per_request, self.bytes.next())
                .await
                .map_err(|_| {
                    ProbeError::Unreachable(format!(
                        "the event stream sent nothing for {} s",
                        self.per_request.as_secs()
                    ))
                })?
                .ok_or_else(|| ProbeError::Protocol("the event stream ended early".into()))?
                .map_err(|e| {
                    ProbeError::Unreachable(format!("the event stream broke off: {}", chain(&e)))
                })?;
            self.read += chunk.len();
            if self.read > MAX_BODY {
                return Err(ProbeError::Protocol(format!(
                    "the event stream sent more than {MAX_BODY} bytes during the check"
                )));
            }
            self.queued.extend(self.parser.push(&chunk));
        }
    }

    /// The response with `id`, skipping notifications and server requests.
    async fn response(&mut self, id: i64, what: &str) -> Result<Value, ProbeError> {
        loop {
            let event = self.next_event().await?;
            if let Some(m) = response_in_event(&event, id, what)? {
                return Ok(m);
            }
        }
    }
}

/// GETs the event stream and reads its `endpoint` event: the stream, and the URL to POST to
/// (same origin only: the credential goes nowhere else).
async fn open(
    http: &reqwest::Client,
    url: &Url,
    headers: &reqwest::header::HeaderMap,
    per_request: Duration,
    secret: &[String],
) -> Result<(Stream, Url), ProbeError> {
    let response = http
        .get(url.clone())
        .headers(headers.clone())
        .header(ACCEPT, "text/event-stream")
        .send();
    let response = tokio::time::timeout(per_request, response)
        .await
        .map_err(|_| {
            ProbeError::Unreachable(format!("no answer within {} s", per_request.as_secs()))
        })?
        .map_err(|e| ProbeError::Unreachable(describe(&e, per_request)))?;
    if !response.status().is_success() {
        return Err(failure(response, "the event stream request", secret).await);
    }
    let mut stream = Stream {
        bytes: response.bytes_stream().boxed(),
        parser: SseParser::default(),
        queued: Default::default(),
        read: 0,
        per_request,
    };
    let endpoint = loop {
        let event = stream.next_event().await?;
        if event.event == "endpoint" {
            break event.data;
        }
    };
    let endpoint = url
        .join(endpoint.trim())
        .map_err(|e| ProbeError::Protocol(format!("the endpoint event is not a URL ({e})")))?;
    if endpoint.origin() != url.origin() {
        return Err(ProbeError::Protocol(format!(
            "the endpoint event points to another origin ({}); credentials are not sent there",
            endpoint.origin().ascii_serialization()
        )));
    }
    Ok((stream, endpoint))
}

/// Where the old transport's messages are POSTed (the `endpoint` event's URL), and how.
struct Endpoint<'a> {
    http: &'a reqwest::Client,
    url: &'a Url,
    headers: &'a reqwest::header::HeaderMap,
    per_request: Duration,
    secret: &'a [String],
}

impl Endpoint<'_> {
    /// POSTs one message; its answer arrives on the SSE stream, so only a refusal matters here.
    async fn post(&self, body: Value) -> Result<(), ProbeError> {
        let response = self
            .http
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .timeout(self.per_request)
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| ProbeError::Unreachable(describe(&e, self.per_request)))?;
        if response.status().is_success() {
            return Ok(());
        }
        let method = body.get("method").and_then(Value::as_str);
        Err(failure(response, method.unwrap_or("a request"), self.secret).await)
    }
}

pub async fn probe(
    http: &reqwest::Client,
    url: &Url,
    credential: &Credential,
    per_request: Duration,
) -> Result<ProbeOk, ProbeError> {
    let secrets = secrets_of(credential);
    let secret = secrets.as_slice();
    let headers = headers(credential)?;
    let (mut stream, endpoint) = open(http, url, &headers, per_request, secret).await?;
    let to = Endpoint {
        http,
        url: &endpoint,
        headers: &headers,
        per_request,
        secret,
    };
    let post = |body: Value| to.post(body);
    post(initialize_message()).await?;
    let result = result_of(
        &stream.response(1, "initialize").await?,
        "initialize",
        secret,
    )?;
    let version = negotiated_version(&result)?;
    post(envelope::notification("notifications/initialized", None)).await?;
    let (mut tools, mut cursor, mut latency) = (0, None::<String>, None);
    for page in 0..50i64 {
        let params = cursor.as_ref().map_or(json!({}), |c| json!({"cursor": c}));
        let started = Instant::now();
        post(envelope::request(2 + page, "tools/list", params)).await?;
        let answer = stream.response(2 + page, "tools/list").await?;
        let first = *latency.get_or_insert_with(|| started.elapsed());
        let (count, next) = tools_page(&result_of(&answer, "tools/list", secret)?)?;
        tools += count;
        cursor = next;
        if cursor.is_none() {
            return Ok(ProbeOk {
                latency: first,
                tools,
                era: Era::Legacy,
                protocol_version: version,
            });
        }
    }
    Err(ProbeError::Protocol(
        "tools/list did not end after 50 pages".into(),
    ))
}
