//! `/oauth/callback`: where an upstream authorization server sends the person's browser after
//! an upstream sign-in. Completes the sign-in and tells the person in plain words what happened
//! (no scripts, never framed, no referrer, not cached — see [`pages::page`]).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::pages::{self, escape, page};
use crate::broker::Broker;
use crate::upstream::{CallbackQuery, FailureKind};
use crate::words;

pub fn routes() -> Router<Broker> {
    Router::new().route("/oauth/callback", get(callback))
}

async fn callback(
    State(broker): State<Broker>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "<p>This address was opened with parameters the broker cannot read. Start the sign-in again from the MCP Auth Broker tray menu.</p>",
            None,
        );
    };
    match broker.upstream().callback(&query).await {
        Ok(server) => page(
            StatusCode::OK,
            "Signed in",
            &format!(
                "<p class=\"ready\">You are signed in to <b>{}</b>.</p><p>MCP Auth Broker uses this sign-in for every app on this computer that you allow. You can close this tab.</p>",
                escape(server.as_str())
            ),
            None,
        ),
        Err(e) => {
            let status = match e.kind() {
                FailureKind::Protocol | FailureKind::AuthRejected | FailureKind::NeedsSignIn => StatusCode::BAD_REQUEST,
                FailureKind::Unreachable => StatusCode::BAD_GATEWAY,
                FailureKind::Setup => StatusCode::SERVICE_UNAVAILABLE,
            };
            let problem = words::explain_sign_in(&e);
            pages::problem_page(status, "Sign-in failed", "The sign-in did not complete.", &problem)
        }
    }
}
