//! Request recording and the small server plumbing shared by the fixture servers.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, DropGuard};

/// One request as a fixture server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
}

impl Recorded {
    /// The `Authorization` header, if any.
    pub fn authorization(&self) -> Option<&str> {
        self.headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Every request a fixture server received, in order; wakes waiters on each new one.
#[derive(Clone, Default)]
pub struct Recorder {
    requests: Arc<Mutex<Vec<Recorded>>>,
    changed: Arc<Notify>,
}

impl Recorder {
    pub fn all(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Requests whose path equals `path`.
    pub fn to_path(&self, path: &str) -> Vec<Recorded> {
        self.all().into_iter().filter(|r| r.path == path).collect()
    }

    pub fn clear(&self) {
        self.requests.lock().unwrap().clear();
    }

    /// Waits until at least `n` requests were recorded (no timeout: wrap in `tokio::time::timeout`).
    pub async fn wait_for(&self, n: usize) {
        loop {
            let notified = self.changed.notified();
            if self.len() >= n {
                return;
            }
            notified.await;
        }
    }

    /// Waits until `done(all requests so far)` holds, re-checking on every new request
    /// (no timeout: wrap in `tokio::time::timeout`).
    pub async fn wait_until(&self, done: impl Fn(&[Recorded]) -> bool) {
        loop {
            let notified = self.changed.notified();
            if done(&self.requests.lock().unwrap()) {
                return;
            }
            notified.await;
        }
    }

    /// Number of requests with this method and path.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }

    fn push(&self, r: Recorded) {
        self.requests.lock().unwrap().push(r);
        self.changed.notify_waiters();
    }
}

pub(crate) async fn record(
    State(recorder): State<Recorder>,
    request: Request,
    next: Next,
) -> Response {
    recorder.push(Recorded {
        method: request.method().clone(),
        path: request.uri().path().to_string(),
        query: request.uri().query().map(str::to_string),
        headers: request.headers().clone(),
    });
    next.run(request).await
}

/// A running axum server on `127.0.0.1:0`; stops (gracefully) when dropped.
pub struct Served {
    pub addr: SocketAddr,
    stop: CancellationToken,
    _guard: DropGuard,
}

impl Served {
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections now (the port closes; new connects are refused).
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// Binds `127.0.0.1:0`, then builds the router knowing its own base URL.
pub(crate) async fn serve<F, Fut>(build: F) -> Served
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Router>,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    let router = build(format!("http://{addr}")).await;
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(token.cancelled_owned())
            .await;
    });
    Served {
        addr,
        stop: stop.clone(),
        _guard: stop.drop_guard(),
    }
}
