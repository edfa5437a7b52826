//! A probe over the older HTTP+SSE transport (2024-11-05 servers configured with
//! `"transport": "sse"`): GET the event stream, learn the message endpoint from its `endpoint`
//! event, POST requests there and read the responses from the stream.

use std::time::{Duration, Instant};

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{json, Value};
use url::Url;

use super::message::{
    chain, describe, failure, headers, initialize_message, negotiated_version, response_in_event,
    result_of, secrets_of, tools_page,
};
use super::probe::{ProbeError, ProbeOk, MAX_BODY};
use crate::protocol::sse::{SseEvent, SseParser};
use crate::upstream::Credential;

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

pub async fn probe(
    http: &reqwest::Client,
    url: &Url,
    credential: &Credential,
    per_request: Duration,
) -> Result<ProbeOk, ProbeError> {
    let secrets = secrets_of(credential);
    let secret = secrets.as_slice();
    let headers = headers(credential)?;
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
    let post = |body: Value| {
        let req = http
            .post(endpoint.clone())
            .headers(headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .timeout(per_request)
            .body(body.to_string());
        async move {
            let response = req
                .send()
                .await
                .map_err(|e| ProbeError::Unreachable(describe(&e, per_request)))?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(failure(
                    response,
                    body.get("method")
                        .and_then(Value::as_str)
                        .unwrap_or("a request"),
                    secret,
                )
                .await)
            }
        }
    };
    let started = Instant::now();
    post(initialize_message()).await?;
    let result = result_of(
        &stream.response(1, "initialize").await?,
        "initialize",
        secret,
    )?;
    let latency = started.elapsed();
    let version = negotiated_version(&result).or_else(|e| {
        match result.get("protocolVersion").and_then(Value::as_str) {
            // The old transport goes with the old protocol: accept it here.
            Some(v @ "2024-11-05") => Ok(v.to_string()),
            _ => Err(e),
        }
    })?;
    post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await?;
    let (mut tools, mut cursor) = (0, None::<String>);
    for page in 0..50i64 {
        let params = cursor.as_ref().map_or(json!({}), |c| json!({"cursor": c}));
        post(json!({"jsonrpc": "2.0", "id": 2 + page, "method": "tools/list", "params": params}))
            .await?;
        let (count, next) = tools_page(&result_of(
            &stream.response(2 + page, "tools/list").await?,
            "tools/list",
            secret,
        )?)?;
        tools += count;
        cursor = next;
        if cursor.is_none() {
            return Ok(ProbeOk {
                latency,
                tools,
                protocol_version: version,
            });
        }
    }
    Err(ProbeError::Protocol(
        "tools/list did not end after 50 pages".into(),
    ))
}
