//! The gateway: one axum server on 127.0.0.1 that is both the MCP resource server / OAuth
//! authorization server local clients talk to, and the OAuth callback for upstream sign-ins.
//!
//! Architecture Invariant: only `gateway` imports axum; route modules return `Router<Broker>`
//! and are composed in [`router`], under the loopback guard.

pub mod admin;
pub mod aggregate;
pub mod authorize;
pub mod authserver;
pub mod callback;
pub mod consent;
pub mod delegate;
pub mod drain;
pub mod error;
pub mod guard;
pub mod host;
pub mod legacy;
pub mod limit;
pub mod pages;
pub mod proxy;
pub mod resource;
pub mod rpc;
pub mod signin;
pub mod state;
pub mod status;
pub mod token;
pub mod toolfilter;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Extension, Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::broker::Broker;

/// The name `/healthz` answers with, so a second instance can tell who holds the port.
pub const SERVICE_NAME: &str = "mcp-auth-broker";

/// All routes, behind the loopback guard.
pub fn router(broker: Broker) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(admin::routes())
        .merge(proxy::routes())
        .merge(aggregate::routes())
        .merge(resource::routes())
        .merge(authserver::routes())
        .merge(authorize::routes())
        .merge(consent::routes())
        .merge(token::routes())
        .merge(status::routes())
        .merge(callback::routes())
        .merge(signin::routes())
        .fallback(not_found)
        // One composed layer (the body drain, then the guard), so a request pays for one boxed
        // route service, not one per layer.
        .layer(
            tower::ServiceBuilder::new()
                // Outermost: a body refused anywhere (the guard included) is drained.
                .layer(drain::DrainLayer)
                .layer(axum::middleware::from_fn_with_state(
                    broker.clone(),
                    guard::loopback_guard,
                ))
                .layer(Extension(Arc::new(state::GatewayState::default())))
                .layer(Extension(Arc::new(crate::aggregate::Aggregate::new(
                    broker.clone(),
                )))),
        )
        .with_state(broker)
}

async fn healthz(State(broker): State<Broker>) -> Json<Value> {
    Json(
        json!({ "status": "ok", "service": SERVICE_NAME, "version": env!("CARGO_PKG_VERSION"), "port": broker.settings().port }),
    )
}

async fn not_found(uri: axum::http::Uri) -> error::GatewayError {
    error::GatewayError::NotFound(uri.path().to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("port {port} on 127.0.0.1 is already in use by another mcp-auth-broker (version {version}); use that one, stop it, or start this one with --port N")]
    HeldByBroker { port: u16, version: String },
    #[error("port {port} on 127.0.0.1 is already in use by another program; find it with `ss -ltnp 'sport = :{port}'` (Linux) or `lsof -i :{port}` (macOS), or start with --port N")]
    InUse { port: u16 },
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Other { port: u16, source: std::io::Error },
}

/// Binds the gateway's listener on 127.0.0.1 only. A busy port is an error naming the port and,
/// when it is another broker, saying so — never a silent random port.
pub async fn bind(port: u16) -> Result<TcpListener, BindError> {
    match TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await {
        Ok(listener) => Ok(listener),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(identify_holder(port).await),
        Err(source) => Err(BindError::Other { port, source }),
    }
}

async fn identify_holder(port: u16) -> BindError {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .build();
    let url = format!("http://127.0.0.1:{port}/healthz");
    if let Ok(client) = client {
        if let Ok(resp) = client
            .get(&url)
            .header("host", format!("127.0.0.1:{port}"))
            .send()
            .await
        {
            if let Ok(v) = resp.json::<Value>().await {
                if v["service"] == SERVICE_NAME {
                    return BindError::HeldByBroker {
                        port,
                        version: v["version"].as_str().unwrap_or("?").to_string(),
                    };
                }
            }
        }
    }
    BindError::InUse { port }
}

/// Serves the gateway on a bound listener until `shutdown` resolves. Sets `TCP_NODELAY` on every
/// accepted connection (Nagle plus delayed ACK costs ~40 ms per SSE response otherwise).
pub async fn serve(
    listener: TcpListener,
    broker: Broker,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(broker))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use crate::config::{ServerName, RESERVED_NAMES};

    /// The fixed first path segments of every route the gateway's modules declare, read from
    /// their source (each route call's path literal, tests left out): the routes themselves are
    /// the list's origin.
    fn fixed_first_segments() -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src-tauri/gateway");
        let mut segments = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let file = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let text = file.split("#[cfg(test)]").next().unwrap();
            for (at, _) in text.match_indices(".route(") {
                let rest = text[at + ".route(".len()..].trim_start();
                let Some(path) = rest.strip_prefix('"').and_then(|r| r.split('"').next()) else {
                    continue;
                };
                let first = path.trim_start_matches('/').split('/').next().unwrap();
                if !first.starts_with('{') && !segments.iter().any(|s| s == first) {
                    segments.push(first.to_string());
                }
            }
        }
        segments.sort();
        segments
    }

    #[test]
    fn every_fixed_first_path_segment_is_a_reserved_server_name_and_nothing_else_is() {
        let segments = fixed_first_segments();
        assert!(segments.iter().any(|s| s == "signin"), "{segments:?}");
        for segment in &segments {
            assert!(
                ServerName::parse(segment).is_err(),
                "a server named {segment:?} would be shadowed by /{segment}/…"
            );
        }
        let nameable: Vec<&String> = segments.iter().filter(|s| !s.starts_with('.')).collect();
        let mut reserved: Vec<&str> = RESERVED_NAMES.to_vec();
        reserved.sort();
        assert_eq!(
            nameable, reserved,
            "one list: the routes' fixed first segments"
        );
    }
}
