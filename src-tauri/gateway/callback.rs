//! `/oauth/callback`: where an upstream authorization server sends the person's browser after
//! an upstream sign-in. Completes the sign-in and tells the person in plain words what happened
//! (no scripts, never framed, no referrer, not cached — see [`pages::page`]).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::pages::{escape, page};
use crate::broker::Broker;
use crate::upstream::{CallbackQuery, FailureKind};

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
                "<p>You are signed in to <b>{}</b>. MCP Auth Broker will use this sign-in for every app on this computer.</p><p>You can close this tab.</p>",
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
            page(
                status,
                "Sign-in failed",
                &format!(
                    "<p>The sign-in did not complete:</p><p>{}</p><p>Start the sign-in again from the MCP Auth Broker tray menu (or run <code>mcp-auth-broker login</code>). You can close this tab.</p>",
                    escape(&e.to_string())
                ),
                None,
            )
        }
    }
}
