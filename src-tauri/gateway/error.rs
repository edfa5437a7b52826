//! The gateway's one error type and its one conversion to an HTTP response.
//! Client mistakes are 4xx; nothing here is a 500 unless the broker itself is broken.

use axum::http::header::{CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::pages;
use crate::issuer::IssuerError;
use crate::upstream::{FailureKind, UpstreamError};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the Host header must be 127.0.0.1, localhost or [::1] with the gateway's port")]
    ForbiddenHost,
    #[error("requests from other web origins are not allowed")]
    ForbiddenOrigin,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("no server named \"{0}\" is configured in the broker; check the URL against the broker's server list")]
    UnknownServer(String),
    #[error("server \"{0}\" is disabled in the broker; enable it in the tray app")]
    DisabledServer(String),
    /// 401 with the RFC 9728 `resource_metadata` challenge (built from the client's Host).
    #[error("{description}")]
    Unauthorized {
        resource_metadata: String,
        invalid_token: bool,
        description: String,
    },
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    BadRequest(String),
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    #[error("too many requests; try again in a minute")]
    TooManyRequests,
    /// An RFC 6749 §5.2 / RFC 7591 §3.2.2 error body (never cached).
    #[error("{description}")]
    OAuth {
        status: StatusCode,
        code: &'static str,
        description: String,
    },
    /// An authorization request that must not be redirected back (unknown client, bad
    /// redirect URI, expired consent): shown to the person as a page.
    #[error("{message}")]
    Page {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] IssuerError),
    #[error(
        "this admin endpoint needs the broker's admin token (the CLI reads it from the data dir)"
    )]
    AdminTokenRequired,
    /// A delegate server's upstream did not say where its clients sign in (the broker's PRM).
    #[error("server \"{server}\" delegates sign-in to its upstream, but the broker could not learn the upstream's authorization server: {detail}. Check the server's URL, or try again later")]
    DelegateDiscovery { server: String, detail: String },
    /// An upstream failure reported to the admin API (the proxy answers in JSON-RPC instead).
    #[error(transparent)]
    AdminUpstream(UpstreamError),
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        if let GatewayError::Page {
            status,
            title,
            message,
        } = &self
        {
            return pages::error_page(*status, title, message);
        }
        let (status, code) = self.status_and_code();
        let mut response = (
            status,
            Json(json!({ "error": code, "error_description": self.to_string() })),
        )
            .into_response();
        self.add_headers(response.headers_mut());
        response
    }
}

impl GatewayError {
    /// The HTTP status and the OAuth-style `error` code of the JSON body.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            GatewayError::ForbiddenHost | GatewayError::ForbiddenOrigin => {
                (StatusCode::FORBIDDEN, "forbidden")
            }
            GatewayError::NotFound(_)
            | GatewayError::UnknownServer(_)
            | GatewayError::DisabledServer(_) => (StatusCode::NOT_FOUND, "not_found"),
            GatewayError::Unauthorized {
                invalid_token: true,
                ..
            } => (StatusCode::UNAUTHORIZED, "invalid_token"),
            GatewayError::Unauthorized {
                invalid_token: false,
                ..
            } => (StatusCode::UNAUTHORIZED, "unauthorized"),
            GatewayError::PayloadTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            GatewayError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            GatewayError::MethodNotAllowed(_) => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
            }
            GatewayError::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            GatewayError::OAuth { status, code, .. } => (*status, *code),
            GatewayError::Page { status, .. } => (*status, "page"),
            GatewayError::Store(e) => {
                tracing::error!("issuer store: {e}");
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
            }
            GatewayError::AdminTokenRequired => (StatusCode::UNAUTHORIZED, "unauthorized"),
            GatewayError::DelegateDiscovery { .. } => (StatusCode::BAD_GATEWAY, "upstream_failed"),
            GatewayError::AdminUpstream(e) => match e.kind() {
                FailureKind::Setup | FailureKind::NeedsSignIn => {
                    (StatusCode::CONFLICT, "upstream_not_ready")
                }
                FailureKind::Unreachable | FailureKind::AuthRejected | FailureKind::Protocol => {
                    (StatusCode::BAD_GATEWAY, "upstream_failed")
                }
            },
        }
    }

    /// The headers a kind of answer carries (the 401 challenge, no-store on OAuth errors).
    fn add_headers(&self, headers: &mut axum::http::HeaderMap) {
        match self {
            GatewayError::Unauthorized {
                resource_metadata,
                invalid_token,
                ..
            } => {
                let mut challenge = format!("Bearer resource_metadata=\"{resource_metadata}\"");
                if *invalid_token {
                    challenge.push_str(", error=\"invalid_token\", error_description=\"the access token is missing, expired, revoked or for another server\"");
                }
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    headers.insert(WWW_AUTHENTICATE, v);
                }
            }
            GatewayError::OAuth { .. } => {
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
            }
            GatewayError::ForbiddenHost
            | GatewayError::ForbiddenOrigin
            | GatewayError::NotFound(_)
            | GatewayError::UnknownServer(_)
            | GatewayError::DisabledServer(_)
            | GatewayError::PayloadTooLarge(_)
            | GatewayError::BadRequest(_)
            | GatewayError::MethodNotAllowed(_)
            | GatewayError::TooManyRequests
            | GatewayError::Page { .. }
            | GatewayError::Store(_)
            | GatewayError::AdminTokenRequired
            | GatewayError::DelegateDiscovery { .. }
            | GatewayError::AdminUpstream(_) => {}
        }
    }
}
