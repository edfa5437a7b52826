//! The loopback guard: every request must name the gateway by a loopback Host with its port,
//! and a browser Origin (when sent) must be the gateway itself. Stops DNS rebinding and
//! cross-site requests; the gateway sends no CORS headers at all. Several `Host` or `Origin`
//! headers are refused (400): the guard and the handlers must read the same one.

use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::middleware::Next;
use axum::response::Response;

use super::error::GatewayError;
use crate::broker::Broker;

/// True when `authority` is `127.0.0.1:port`, `localhost:port` or `[::1]:port`.
pub fn is_loopback_authority(authority: &str, port: u16) -> bool {
    let Some((host, p)) = authority.rsplit_once(':') else {
        return false;
    };
    if p.parse::<u16>().ok() != Some(port) {
        return false;
    }
    host == "127.0.0.1" || host.eq_ignore_ascii_case("localhost") || host == "[::1]"
}

/// True when an `Origin` header names the gateway itself over http.
pub fn is_own_origin(origin: &str, port: u16) -> bool {
    origin
        .strip_prefix("http://")
        .is_some_and(|authority| is_loopback_authority(authority, port))
}

pub async fn loopback_guard(
    State(broker): State<Broker>,
    request: Request,
    next: Next,
) -> Result<Response, GatewayError> {
    let port = broker.settings().port;
    for name in [HOST, ORIGIN] {
        if request.headers().get_all(&name).iter().nth(1).is_some() {
            return Err(GatewayError::BadRequest(format!(
                "send one {name} header, not several (which one names the gateway would be a guess)"
            )));
        }
    }
    let host = request.headers().get(HOST).and_then(|h| h.to_str().ok());
    match host {
        Some(h) if is_loopback_authority(h, port) => {}
        _ => return Err(GatewayError::ForbiddenHost),
    }
    if let Some(origin) = request.headers().get(ORIGIN) {
        let ok = origin.to_str().is_ok_and(|o| is_own_origin(o, port));
        if !ok {
            return Err(GatewayError::ForbiddenOrigin);
        }
    }
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_authorities_need_the_gateway_port() {
        assert!(is_loopback_authority("127.0.0.1:4000", 4000));
        assert!(is_loopback_authority("localhost:4000", 4000));
        assert!(is_loopback_authority("[::1]:4000", 4000));
        assert!(!is_loopback_authority("127.0.0.1:4001", 4000));
        assert!(!is_loopback_authority("evil.example:4000", 4000));
        assert!(!is_loopback_authority("127.0.0.1", 4000));
        assert!(!is_loopback_authority("localhost.evil.example:4000", 4000));
    }

    #[test]
    fn only_the_gateways_own_http_origin_is_accepted() {
        assert!(is_own_origin("http://127.0.0.1:4000", 4000));
        assert!(is_own_origin("http://localhost:4000", 4000));
        assert!(!is_own_origin("https://127.0.0.1:4000", 4000));
        assert!(!is_own_origin("http://evil.example", 4000));
        assert!(!is_own_origin("null", 4000));
    }
}
