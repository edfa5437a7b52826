//! The proxy's wire work, apart from its decisions: which request headers go upstream, which
//! response headers come back, the capped request body, and the upstream's answer streamed (or,
//! for a refusal the translation looks at, read whole).

use axum::body::{Body, Bytes};
use axum::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::Response;
use http_body_util::LengthLimitError;
use tokio_util::task::AbortOnDropHandle;

use super::super::error::GatewayError;
use super::{describe, MAX_BODY};
use crate::protocol::headers::{self, names};

const ALLOW: HeaderName = HeaderName::from_static("allow");
/// Sent by servers on SSE answers so buffering proxies pass events at once (2026-07-28).
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// Response headers passed back; `WWW-Authenticate` and `Set-Cookie` never are.
const FORWARD_RESPONSE: [HeaderName; 8] = [
    CONTENT_TYPE,
    CONTENT_LENGTH,
    names::SESSION_ID,
    names::PROTOCOL_VERSION,
    CACHE_CONTROL,
    RETRY_AFTER,
    ALLOW,
    X_ACCEL_BUFFERING,
];

/// Copies the request headers that go upstream: `Accept`, `Content-Type` and every MCP transport
/// header ([`headers::is_mcp_request_header`]), all their values. Everything else (the client's
/// Authorization, cookies, Host, Origin, hop-by-hop headers) stays here. Known names are copied
/// as static names, so a call allocates nothing here; only an `Mcp-Param-*` name is cloned.
pub(in crate::gateway) fn forward_request_headers(client: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in client {
        if let Some(name) = forwarded(name) {
            to.append(name, value.clone());
        }
    }
}

fn forwarded(name: &HeaderName) -> Option<HeaderName> {
    if name == ACCEPT || name == CONTENT_TYPE {
        return Some(name.clone());
    }
    let text = name.as_str();
    if !headers::is_mcp_request_header(text) {
        return None;
    }
    Some(match text {
        headers::SESSION_ID => names::SESSION_ID,
        headers::PROTOCOL_VERSION => names::PROTOCOL_VERSION,
        headers::LAST_EVENT_ID => names::LAST_EVENT_ID,
        headers::METHOD => names::METHOD,
        headers::NAME => names::NAME,
        _ => name.clone(),
    })
}

/// Reads the request body up to [`MAX_BODY`] (413 beyond, checked on `Content-Length` first).
///
/// The body is read by a task of its own. Taking a chunk from hyper's body channel wakes the
/// connection's task, and inside a handler that task is the one running: tokio treats a task
/// woken while it runs as a yield, sends it to the back of the queue and wakes another worker,
/// which may take the connection over. From a task of its own the same wake is an ordinary one.
/// The proxy benchmark measures the difference (docs/benchmarks.md, session 24: about 25 µs a
/// call on a 2-core VM; 2025-11-25's added p50 1.16–1.33× the floor's on `/{server}/mcp` and
/// 1.19–1.43× on `/mcp` read in the handler, 0.94–1.00× and 1.01–1.11× so). The task is
/// aborted if the request is dropped first.
pub(in crate::gateway) async fn read_body(
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, GatewayError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(GatewayError::PayloadTooLarge(MAX_BODY));
    }
    let read = tokio::spawn(axum::body::to_bytes(body, MAX_BODY));
    match AbortOnDropHandle::new(read).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if std::error::Error::source(&e).is_some_and(|e| e.is::<LengthLimitError>()) => {
            Err(GatewayError::PayloadTooLarge(MAX_BODY))
        }
        Ok(Err(_)) | Err(_) => Err(GatewayError::BadRequest(
            "the request body broke off or is not valid HTTP/1.1 framing; send it again whole"
                .into(),
        )),
    }
}

/// The upstream response, headers filtered in place, body streamed as it arrives (data only:
/// trailers, like headers, would carry what the allow-list keeps back).
pub(in crate::gateway) fn stream_back(mut upstream: reqwest::Response) -> Response {
    let status = upstream.status();
    keep_only(upstream.headers_mut(), &FORWARD_RESPONSE);
    let headers = std::mem::take(upstream.headers_mut());
    let empty = status == StatusCode::ACCEPTED
        || status == StatusCode::NO_CONTENT
        || upstream.content_length() == Some(0);
    let body = if empty {
        Body::empty()
    } else {
        Body::from_stream(upstream.bytes_stream())
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// An upstream answer read whole (capped at [`MAX_BODY`]), for a look at a refusal: its status,
/// its body, and the response to pass back if the broker does not answer itself.
pub(super) async fn read_answer(
    mut upstream: reqwest::Response,
) -> Result<(StatusCode, Bytes, Response), String> {
    let status = upstream.status();
    keep_only(upstream.headers_mut(), &FORWARD_RESPONSE);
    let headers = std::mem::take(upstream.headers_mut());
    let mut body = Vec::new();
    let failed = |e| format!("reading the upstream's answer failed: {}", describe(&e));
    while let Some(chunk) = upstream.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err("the upstream's refusal is too large to read".into());
        }
        body.extend_from_slice(&chunk);
    }
    let body = Bytes::from(body);
    let mut response = Response::new(Body::from(body.clone()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok((status, body, response))
}

/// Removes every header whose name is not in `allowed` (all its values), without a new map.
fn keep_only(headers: &mut HeaderMap, allowed: &[HeaderName]) {
    while let Some(name) = headers.keys().find(|n| !allowed.contains(n)).cloned() {
        headers.remove(&name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_allow_listed_response_headers_survive_with_all_their_values() {
        let mut h = HeaderMap::new();
        h.append(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.append("set-cookie", HeaderValue::from_static("a=1"));
        h.append("set-cookie", HeaderValue::from_static("b=2"));
        h.append(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.append(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.append("www-authenticate", HeaderValue::from_static("Bearer"));
        h.append("x-upstream-secret", HeaderValue::from_static("s"));
        keep_only(&mut h, &FORWARD_RESPONSE);
        let names: Vec<_> = h.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["content-type", "cache-control"]);
        assert_eq!(h.get_all(CACHE_CONTROL).iter().count(), 2);
    }

    #[test]
    fn every_mcp_request_header_is_forwarded_and_nothing_else() {
        let mut client = HeaderMap::new();
        for (name, value) in [
            ("accept", "application/json, text/event-stream"),
            ("content-type", "application/json"),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?d8OrYXRoZXI=?="),
            ("mcp-param-region", "us-west1"),
            ("mcp-param-region", "eu-west1"),
            ("mcp-session-id", "s"),
            ("last-event-id", "7"),
            ("authorization", "Bearer client-token"),
            ("cookie", "a=1"),
            ("x-api-key", "k"),
            ("mcp-other", "x"),
        ] {
            client.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static(value),
            );
        }
        let mut to = HeaderMap::new();
        forward_request_headers(&client, &mut to);
        let mut names: Vec<_> = to.keys().map(|n| n.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "accept",
                "content-type",
                "last-event-id",
                "mcp-method",
                "mcp-name",
                "mcp-param-region",
                "mcp-protocol-version",
                "mcp-session-id",
            ]
        );
        assert_eq!(to.get_all("mcp-param-region").iter().count(), 2);
        assert_eq!(to["mcp-name"], "=?base64?d8OrYXRoZXI=?=");
    }
}
