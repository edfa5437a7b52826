//! Token requests for the grants the `oauth2` crate does not have: RFC 8693 token exchange
//! (at the identity provider) and RFC 7523 jwt-bearer (at a server's authorization server).
//! Everything else is the token calls' own: the client authentication plan of
//! [`clientauth`](super::super::clientauth) (what worked remembered, one fallback), the checked
//! and capped HTTP of [`http`](super::super::http), and failures in words by
//! [`describe`](super::super::oauth::describe).

use base64::Engine;
use oauth2::basic::BasicErrorResponse;
use oauth2::RequestTokenError;
use serde::Deserialize;

use crate::secret::Secret;

use super::super::clientauth;
use super::super::http::{self, Answer, FetchError};
use super::super::oauth::{describe, TokenCall, TokenFailure};
use super::super::registration::{ClientAuth, ClientInfo};
use super::super::tokens::UpTokenResponse;

/// A token endpoint's answer to one of these grants.
#[derive(Debug, Clone, Deserialize)]
pub struct Granted {
    #[serde(flatten)]
    pub response: UpTokenResponse,
    /// RFC 8693: what kind of token `access_token` is.
    #[serde(default)]
    pub issued_token_type: Option<String>,
}

/// Sends `grant_type` with `call.params` and `client`'s authentication; returns the answer and
/// the method the endpoint accepted.
pub async fn send(
    call: TokenCall<'_>,
    client: ClientInfo,
    grant_type: &str,
) -> Result<(Granted, ClientAuth), TokenFailure> {
    let endpoint = call.url.as_str().to_string();
    let client = clientauth::with_remembered(client, call.data_dir, call.server, &endpoint);
    let what = if grant_type == super::TOKEN_EXCHANGE {
        "token exchange"
    } else {
        "jwt-bearer token request"
    };
    let sent = clientauth::send(&client, |c| attempt(&call, c, grant_type, what)).await;
    if let Ok((_, method)) = &sent {
        let (dir, server) = (call.data_dir, call.server);
        clientauth::remember(dir, server, &endpoint, &client.client_id, *method);
    }
    sent
}

async fn attempt(
    call: &TokenCall<'_>,
    client: ClientInfo,
    grant_type: &str,
    what: &str,
) -> Result<Granted, TokenFailure> {
    let url = call.url.url().clone();
    let mut form = vec![("grant_type".to_string(), grant_type.to_string())];
    form.extend(client.auth_params());
    let mut req = call
        .http
        .post(url.clone())
        .header(::http::header::ACCEPT, "application/json");
    match (client.auth, &client.secret) {
        (ClientAuth::ClientSecretBasic, Some(secret)) => {
            let basic = basic(&client.client_id, secret);
            req = req.header(::http::header::AUTHORIZATION, basic.expose());
        }
        (ClientAuth::ClientSecretPost, Some(secret)) => {
            form.push(("client_id".into(), client.client_id.clone()));
            form.push(("client_secret".into(), secret.expose().to_string()));
        }
        _ => form.push(("client_id".into(), client.client_id.clone())),
    }
    form.extend(call.params.iter().cloned());
    let failed = |answer: &Answer, e: RequestTokenError<FetchError, BasicErrorResponse>| {
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

/// `Authorization: Basic` as RFC 6749 §2.3.1 writes it (each part form-encoded first).
fn basic(client_id: &str, secret: &Secret) -> Secret {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(client_id), enc(secret.expose()));
    Secret::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded_before_base64() {
        let b = basic("a b:c", &Secret::new("p@ss:w".to_string()));
        let raw = b.expose().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "a+b%3Ac:p%40ss%3Aw");
    }

    #[test]
    fn a_token_exchange_answer_keeps_its_issued_token_type() {
        let g: Granted = serde_json::from_str(r#"{"access_token":"j","issued_token_type":"urn:ietf:params:oauth:token-type:id-jag","token_type":"N_A"}"#).unwrap();
        assert_eq!(g.issued_token_type.as_deref(), Some(super::super::ID_JAG));
        assert_eq!(g.response.token_type.as_deref(), Some("N_A"));
    }
}
