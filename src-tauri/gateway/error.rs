//! The gateway's one error type and its one conversion to an HTTP response.
//! Client mistakes are 4xx; nothing here is a 500 unless the broker itself is broken.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the Host header must be 127.0.0.1, localhost or [::1] with the gateway's port")]
    ForbiddenHost,
    #[error("requests from other web origins are not allowed")]
    ForbiddenOrigin,
    #[error("not found: {0}")]
    NotFound(String),
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = match &self {
            GatewayError::ForbiddenHost => StatusCode::FORBIDDEN,
            GatewayError::ForbiddenOrigin => StatusCode::FORBIDDEN,
            GatewayError::NotFound(_) => StatusCode::NOT_FOUND,
        };
        let body = Json(
            json!({ "error": status.canonical_reason().unwrap_or("error").to_ascii_lowercase().replace(' ', "_"), "error_description": self.to_string() }),
        );
        (status, body).into_response()
    }
}
