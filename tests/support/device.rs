//! The test AS's device authorization grant (RFC 8628), on when `AsOptions::device_interval` is
//! set: `/device_authorization` hands out codes, `GET /device?user_code=…` is the person
//! approving on the verification page, and the token endpoint answers `authorization_pending`
//! until then. The test scripts the rest deterministically: `slow_down` answers
//! ([`AsState::slow_down_polls`]), a refusal ([`AsState::deny_device`]) and an expiry
//! ([`AsState::expire_device`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;

use super::auth_server::AsState;
use super::random_token;
use super::token::oauth_error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Approved,
    Denied,
    Expired,
}

/// One device code the AS handed out.
pub(crate) struct DeviceGrant {
    pub(crate) client_id: String,
    pub(crate) user_code: String,
    pub(crate) scope: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) status: DeviceStatus,
}

impl AsState {
    /// The next `n` device polls are answered `slow_down`.
    pub fn slow_down_polls(&self, n: usize) {
        self.slow_downs.store(n, Ordering::SeqCst);
    }

    /// The person approves `user_code` (as the verification page does).
    pub fn approve_device(&self, user_code: &str) {
        self.set_device(user_code, DeviceStatus::Approved);
    }

    /// The person refuses `user_code` on the verification page.
    pub fn deny_device(&self, user_code: &str) {
        self.set_device(user_code, DeviceStatus::Denied);
    }

    /// `user_code` runs out before anyone confirms it.
    pub fn expire_device(&self, user_code: &str) {
        self.set_device(user_code, DeviceStatus::Expired);
    }

    /// The user codes handed out so far, in order.
    pub fn user_codes(&self) -> Vec<String> {
        self.user_codes.lock().unwrap().clone()
    }

    fn set_device(&self, user_code: &str, status: DeviceStatus) {
        let mut devices = self.devices.lock().unwrap();
        let found = devices.values_mut().find(|d| d.user_code == user_code);
        found.expect("a user code the AS handed out").status = status;
    }
}

pub(crate) async fn authorization(
    State(s): State<Arc<AsState>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    s.counters
        .device_authorization
        .fetch_add(1, Ordering::SeqCst);
    let Some(interval) = s.options.device_interval else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(client_id) = form.get("client_id").cloned() else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id is required",
        );
    };
    let device_code = random_token();
    let user_code = format!("{}-{}", &random_token()[..4], &random_token()[..4]).to_uppercase();
    s.user_codes.lock().unwrap().push(user_code.clone());
    s.devices.lock().unwrap().insert(
        device_code.clone(),
        DeviceGrant {
            client_id,
            user_code: user_code.clone(),
            scope: form.get("scope").cloned(),
            resource: form.get("resource").cloned(),
            status: DeviceStatus::Pending,
        },
    );
    let page = format!("{}/device", s.issuer);
    Json(json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": page,
        "verification_uri_complete": format!("{page}?user_code={user_code}"),
        "expires_in": 600,
        "interval": interval,
    }))
    .into_response()
}

/// The verification page: opening the complete address approves the code.
pub(crate) async fn verify(
    State(s): State<Arc<AsState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match q.get("user_code") {
        Some(code) if s.user_codes().contains(code) => {
            s.approve_device(code);
            "Device approved; you can close this page.".into_response()
        }
        _ => (StatusCode::BAD_REQUEST, "unknown user code").into_response(),
    }
}

/// The device_code grant at the token endpoint: `(resource, scope)` of an approved code
/// (spent), else the RFC 8628 §3.5 error to answer with (HTTP 400).
pub(crate) fn redeem(
    s: &AsState,
    form: &HashMap<String, String>,
    client_id: &str,
) -> Result<(Option<String>, Option<String>), &'static str> {
    s.counters.token_device_code.fetch_add(1, Ordering::SeqCst);
    let refuse = Err;
    let mut devices = s.devices.lock().unwrap();
    let code = form.get("device_code").cloned().unwrap_or_default();
    let Some(grant) = devices.get(&code) else {
        return refuse("invalid_grant");
    };
    if grant.client_id != client_id {
        return refuse("invalid_grant");
    }
    if s.slow_downs
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return refuse("slow_down");
    }
    match grant.status {
        DeviceStatus::Pending => refuse("authorization_pending"),
        DeviceStatus::Denied => refuse("access_denied"),
        DeviceStatus::Expired => refuse("expired_token"),
        DeviceStatus::Approved => {
            let grant = devices.remove(&code).expect("found above");
            Ok((grant.resource, grant.scope))
        }
    }
}
