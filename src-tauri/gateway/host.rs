//! The gateway root URL as the client addressed it.
//!
//! Decision: the issuer and every URL the gateway hands out (PRM `resource`,
//! `resource_metadata`, `authorization_servers`, AS metadata endpoints, `iss`) use the loopback
//! spelling of the request's `Host` (`127.0.0.1:PORT`, `localhost:PORT` or `[::1]:PORT`; the
//! loopback guard has already refused anything else). So a client configured with
//! `http://localhost:PORT/x/mcp` sees `http://localhost:PORT` everywhere, byte-identical to
//! what it used (RFC 9728 §3.3, RFC 8414 §3.3). All spellings share one state: a token issued
//! via `localhost` works via `127.0.0.1` too (tokens are bound to the server, not the host).

use axum::extract::FromRequestParts;
use axum::http::header::HOST;
use axum::http::request::Parts;

use crate::aggregate::AUDIENCE;
use crate::broker::Broker;

/// `/{server}/mcp`, or `/mcp` for the aggregate endpoint.
fn mcp_path(server: &str) -> String {
    if server == AUDIENCE {
        "/mcp".to_string()
    } else {
        format!("/{server}/mcp")
    }
}

/// `http://<host as sent>` without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOrigin(pub String);

impl ClientOrigin {
    /// The client URL of `server` (of the aggregate endpoint for [`AUDIENCE`]).
    pub fn resource(&self, server: &str) -> String {
        format!("{}{}", self.0, mcp_path(server))
    }

    pub fn resource_metadata(&self, server: &str) -> String {
        format!(
            "{}/.well-known/oauth-protected-resource{}",
            self.0,
            mcp_path(server)
        )
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

impl FromRequestParts<Broker> for ClientOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        broker: &Broker,
    ) -> Result<Self, Self::Rejection> {
        let port = broker.settings().port;
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| super::guard::is_loopback_authority(h, port));
        Ok(ClientOrigin(match host {
            Some(h) => format!("http://{}", h.to_ascii_lowercase()),
            None => format!("http://127.0.0.1:{port}"),
        }))
    }
}
