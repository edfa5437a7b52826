//! The rest of a request body nobody read. A route that refuses a body (413 beyond its cap, a
//! 4xx before reading it) drops it unread; the server then closes a connection with data still
//! arriving, the kernel answers the client's next bytes with a reset, and a client that writes
//! its whole body before reading (most do) gets EPIPE/ECONNRESET instead of the answer. So a
//! large body is wrapped, and what its route left unread is read and discarded in the
//! background, up to [`DRAIN_LIMIT`] and [`DRAIN_TIME`], so the client can read its answer.
//! Small bodies (every ordinary MCP or OAuth request) are not wrapped: no cost on the hot path.

use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use axum::http::HeaderMap;
use futures_util::{Stream, StreamExt};

/// Bodies up to this size are not wrapped: the kernel's socket buffers hold them whole, so an
/// unread one cannot make the client's write fail.
const WRAP_ABOVE: u64 = 64 * 1024;
/// Most bytes read and discarded after a route stopped reading; a bigger upload is cut.
pub const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;
/// Longest time spent reading what a route left unread.
const DRAIN_TIME: Duration = Duration::from_secs(30);

/// The layer that wraps a body that may be left unread so that its rest is drained. A plain
/// `tower` layer: a request pays one header lookup, no boxed future.
#[derive(Debug, Clone, Copy, Default)]
pub struct DrainLayer;

impl<S> tower::Layer<S> for DrainLayer {
    type Service = Drain<S>;
    fn layer(&self, inner: S) -> Drain<S> {
        Drain(inner)
    }
}

/// See [`DrainLayer`].
#[derive(Debug, Clone)]
pub struct Drain<S>(S);

impl<S: tower::Service<Request>> tower::Service<Request> for Drain<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> S::Future {
        if !worth_draining(request.headers()) {
            return self.0.call(request);
        }
        let (parts, body) = request.into_parts();
        let body = Body::from_stream(Unread {
            rest: Some(body.into_data_stream()),
            ended: false,
        });
        self.0.call(Request::from_parts(parts, body))
    }
}

/// A body bigger than the socket buffers and small enough to be drained (a chunked one's size
/// is unknown: it is wrapped).
fn worth_draining(headers: &HeaderMap) -> bool {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) => n > WRAP_ABOVE && n <= DRAIN_LIMIT,
        None => headers.contains_key(TRANSFER_ENCODING),
    }
}

/// The request body as its route reads it; dropped before its end, it drains the rest.
struct Unread {
    rest: Option<BodyDataStream>,
    ended: bool,
}

impl Stream for Unread {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(rest) = self.rest.as_mut() else {
            return Poll::Ready(None);
        };
        let item = ready!(rest.poll_next_unpin(cx));
        if !matches!(item, Some(Ok(_))) {
            self.ended = true;
        }
        Poll::Ready(item)
    }
}

impl Drop for Unread {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        if let (Some(rest), Ok(runtime)) = (self.rest.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(drain(rest));
        }
    }
}

/// Reads and discards `rest` up to the limits; dropping it then lets the connection close.
async fn drain(mut rest: BodyDataStream) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut read = 0u64;
        while let Some(Ok(chunk)) = rest.next().await {
            read += chunk.len() as u64;
            if read > DRAIN_LIMIT {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_bodies_between_the_socket_buffers_and_the_drain_limit_are_wrapped() {
        assert!(!worth_draining(&headers(&[])));
        assert!(!worth_draining(&headers(&[("content-length", "1200")])));
        assert!(worth_draining(&headers(&[("content-length", "5242880")])));
        assert!(!worth_draining(&headers(&[(
            "content-length",
            "99999999999"
        )])));
        assert!(worth_draining(&headers(&[(
            "transfer-encoding",
            "chunked"
        )])));
    }
}
