//! Token requests for the grants the `oauth2` crate does not have (RFC 7523 jwt-bearer, …): one
//! form POST with the grant's own parameters, the client's authentication plan of
//! [`clientauth`] (what worked remembered, one fallback) when there is a client, the checked and
//! capped HTTP of [`http`](super::http), and failures in words by [`describe`].

use oauth2::basic::BasicErrorResponse;
use oauth2::RequestTokenError;

use super::clientauth;
use super::http::{self, Answer};
use super::oauth::{describe, TokenCall, TokenFailure};
use super::registration::{ClientAuth, ClientInfo};
use super::tokens::UpTokenResponse;

/// Sends `grant_type` with `call.params` (which carry the grant's own fields, e.g. `assertion`)
/// as `client`, or without client authentication when there is none. Returns the answer and the
/// client authentication the endpoint accepted.
pub async fn send(
    call: TokenCall<'_>,
    client: Option<ClientInfo>,
    grant_type: &str,
    what: &str,
) -> Result<(UpTokenResponse, ClientAuth), TokenFailure> {
    let Some(client) = client else {
        let answer = attempt(&call, None, grant_type, what).await?;
        return Ok((answer, ClientAuth::None));
    };
    let endpoint = call.url.as_str().to_string();
    let client = clientauth::with_remembered(client, call.data_dir, call.server, &endpoint);
    let sent = clientauth::send(&client, |c| attempt(&call, Some(c), grant_type, what)).await;
    if let Ok((_, method)) = &sent {
        let (dir, server) = (call.data_dir, call.server);
        clientauth::remember(dir, server, &endpoint, &client.client_id, *method);
    }
    sent
}

async fn attempt(
    call: &TokenCall<'_>,
    client: Option<ClientInfo>,
    grant_type: &str,
    what: &str,
) -> Result<UpTokenResponse, TokenFailure> {
    let url = call.url.url().clone();
    let mut form = vec![("grant_type".to_string(), grant_type.to_string())];
    let mut req = call
        .http
        .post(url.clone())
        .header(::http::header::ACCEPT, "application/json");
    if let Some(client) = &client {
        form.extend(client.auth_params());
        match (client.auth, &client.secret) {
            (ClientAuth::ClientSecretBasic, Some(secret)) => {
                req = req.basic_auth(
                    form_encoded(&client.client_id),
                    Some(form_encoded(secret.expose())),
                );
            }
            (ClientAuth::ClientSecretPost, Some(secret)) => {
                form.push(("client_id".into(), client.client_id.clone()));
                form.push(("client_secret".into(), secret.expose().to_string()));
            }
            _ => form.push(("client_id".into(), client.client_id.clone())),
        }
    }
    form.extend(call.params.iter().cloned());
    let failed = |answer: &Answer, e: RequestTokenError<http::FetchError, BasicErrorResponse>| {
        describe(what, url.as_str(), answer, e)
    };
    let fetched = http::send(req.form(&form), &url)
        .await
        .map_err(|e| failed(&Answer::default(), RequestTokenError::Request(e)))?;
    let answer = Answer {
        status: Some(fetched.status),
        content_type: fetched.content_type(),
        body: fetched.body.clone(),
    };
    let other = || RequestTokenError::Other(String::new());
    if !(200..300).contains(&fetched.status) {
        return Err(failed(&answer, other()));
    }
    serde_json::from_slice(&fetched.body).map_err(|_| failed(&answer, other()))
}

/// RFC 6749 §2.3.1: each part of Basic credentials is form-encoded first.
fn form_encoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
