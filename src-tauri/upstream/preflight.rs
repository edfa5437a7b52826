//! What an interactive sign-in checks before a browser opens, so a sign-in that cannot work is
//! refused with its fix instead of leaving the person at an error page (or signed in to a server
//! every call then fails on): the config has chosen the flow, the server answers, the
//! authorization and token endpoints are configured or found, the metadata advertises PKCE S256
//! (configured endpoints bypass that check), and endpoints guessed from the server's origin exist.

use url::Url;

use super::discovery::Discovery;
use super::hints;
use super::http::{checked, send};
use super::{classify, Flow, UpstreamError};
use crate::config::ServerConfig;

/// The endpoints a sign-in uses, and what the person should know before the browser opens.
pub(super) struct SignInEndpoints {
    pub authorize: String,
    pub token: String,
    /// Shown before the browser opens (the CLI prints them) and kept in the timeline.
    pub warnings: Vec<String>,
}

/// Refuses an interactive sign-in the config does not allow (another flow, or several flows
/// left open: signing in would succeed and every call would then fail).
pub(super) fn check_flow(server: &ServerConfig) -> Result<(), UpstreamError> {
    let Some(c) = classify::from_config(server) else {
        return Ok(());
    };
    let detail = match c.flow {
        Some(Flow::AuthorizationCode) => return Ok(()),
        Some(other) => format!("this server uses the {other:?} flow; interactive sign-in is only for servers that use authorization_code"),
        None => hints::choose_flow(&c.evidence),
    };
    Err(UpstreamError::Setup {
        server: server.name.to_string(),
        detail,
    })
}

/// The endpoints of a sign-in to `server` after discovery `d`, or why there is none.
pub(super) async fn endpoints(
    http: &reqwest::Client,
    server: &ServerConfig,
    d: &Discovery,
) -> Result<SignInEndpoints, UpstreamError> {
    let name = server.name.as_str();
    let setup = |detail: String| UpstreamError::Setup {
        server: name.into(),
        detail,
    };
    if let Some(cause) = &d.unreachable {
        return Err(UpstreamError::Unreachable {
            server: name.into(),
            url: server.url.to_string(),
            cause: cause.clone().into(),
        });
    }
    let meta = d.metadata.as_ref();
    let origin = server.url.origin().ascii_serialization();
    let guessed = |path: &str| d.legacy_defaults.then(|| format!("{origin}{path}"));
    let configured = |u: &Option<Url>| u.as_ref().map(Url::to_string);
    let authorize = configured(&server.authorization_url)
        .or_else(|| meta.and_then(|m| m.authorization_endpoint.clone()))
        .or_else(|| guessed("/authorize"));
    let token = configured(&server.token_url)
        .or_else(|| meta.and_then(|m| m.token_endpoint.clone()))
        .or_else(|| guessed("/token"));
    let (Some(authorize), Some(token)) = (authorize, token) else {
        return Err(setup(format!("could not find the server's authorization and token endpoints ({}); set \"authorization_url\" and \"token_url\" for it", d.notes.join("; "))));
    };
    if let (Some(m), None) = (meta, &server.authorization_url) {
        let s256 = m
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|l| l.iter().any(|x| x == "S256"));
        if !s256 {
            let advertised = m.code_challenge_methods_supported.as_deref();
            return Err(setup(hints::pkce_not_advertised(&m.issuer, advertised)));
        }
    }
    let mut warnings = Vec::new();
    if d.legacy_defaults && server.authorization_url.is_none() {
        if let Some(status) = missing(http, &authorize).await {
            return Err(setup(hints::guessed_endpoint_missing(&authorize, status)));
        }
        warnings.push(hints::guessed_endpoints(&authorize, &token));
    }
    Ok(SignInEndpoints {
        authorize,
        token,
        warnings,
    })
}

/// `Some(status)` when `url` plainly does not exist (404 or 410 to a GET without parameters);
/// anything else, an error page about missing parameters included, may be a real endpoint.
async fn missing(http: &reqwest::Client, url: &str) -> Option<u16> {
    let url = checked(url).ok()?;
    let fetched = send(http.get(url.clone()), &url).await.ok()?;
    matches!(fetched.status, 404 | 410).then_some(fetched.status)
}
