//! `GET /signin/{nonce}`: the page a URL-mode elicitation sends the person to
//! ([`crate::aggregate::signin`]). A valid, unused link starts the named server's sign-in and
//! redirects this browser to its authorization server; the callback then finishes it as usual,
//! and the client session that asked hears `notifications/elicitation/complete`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};

use super::pages::{error_page, page, problem_page};
use crate::aggregate::{signin, Aggregate};
use crate::broker::Broker;
use crate::clock::unix_now;
use crate::opener::Opener;
use crate::upstream::FailureKind;
use crate::words;

pub fn routes() -> Router<Broker> {
    Router::new().route("/signin/{nonce}", get(open))
}

async fn open(
    State(broker): State<Broker>,
    Extension(aggregate): Extension<Arc<Aggregate>>,
    Path(nonce): Path<String>,
) -> Response {
    let Some(link) = aggregate.take_link(&nonce, unix_now()) else {
        return error_page(
            StatusCode::NOT_FOUND,
            "Sign-in link not valid",
            &format!("This sign-in link was already used or has expired (links last {} minutes). Call the tool again for a new link, or sign in from the MCP Auth Broker tray menu.", signin::LINK_SECS / 60),
        );
    };
    let Ok(cfg) = broker.server(link.server.as_str()) else {
        return error_page(
            StatusCode::NOT_FOUND,
            "Server not configured",
            &format!(
                "\"{}\" is no longer configured in MCP Auth Broker.",
                link.server
            ),
        );
    };
    // This browser is already here: it goes to the authorization server by redirect, no new tab.
    let here = Opener::Custom(Arc::new(|_| {}));
    let started = match broker.upstream().sign_in(&cfg, &here).await {
        Ok(started) => started,
        Err(e) => {
            let status = match e.kind() {
                FailureKind::Unreachable => StatusCode::BAD_GATEWAY,
                FailureKind::Setup
                | FailureKind::Protocol
                | FailureKind::AuthRejected
                | FailureKind::NeedsSignIn => StatusCode::SERVICE_UNAVAILABLE,
            };
            let intro = format!("The sign-in to \"{}\" could not start.", cfg.name);
            return problem_page(
                status,
                "Sign-in could not start",
                &intro,
                &words::explain_upstream(&e),
            );
        }
    };
    let (notes, id) = (link.notes, link.elicitation_id);
    tokio::spawn(async move {
        if let Ok(Ok(())) = started.done.await {
            let _ = notes.send(signin::complete(&id));
        }
    });
    let mut response = page(
        StatusCode::SEE_OTHER,
        "Signing in",
        "<p>Continuing to the sign-in page…</p>",
        None,
    );
    if let Ok(v) = HeaderValue::from_str(started.authorize_url.as_str()) {
        response.headers_mut().insert(LOCATION, v);
    }
    response
}
