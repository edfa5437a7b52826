//! Token requests for the grants the `oauth2` crate does not have (RFC 7523 jwt-bearer, RFC 8693
//! token exchange): one form POST with the grant's own parameters, the client's authentication
//! plan of [`clientauth`] (what worked remembered, one fallback) when there is a client, and the
//! token calls' own HTTP ([`OAuthHttp`]: checked, capped, a DPoP proof and one nonce retry when
//! the call has a DPoP key), failures in words by [`describe`].

use oauth2::basic::BasicErrorResponse;
use oauth2::{AsyncHttpClient, RequestTokenError};
use serde::de::DeserializeOwned;

use super::clientauth;
use super::http::{FetchError, OAuthHttp};
use super::oauth::{describe, TokenCall, TokenFailure};
use super::registration::{ClientAuth, ClientInfo};

/// Sends `grant_type` with `call.params` (which carry the grant's own fields, e.g. `assertion`)
/// as `client`, or without client authentication when there is none. Returns the answer, read
/// as `T`, and the client authentication the endpoint accepted.
pub async fn send<T: DeserializeOwned>(
    call: TokenCall<'_>,
    client: Option<ClientInfo>,
    grant_type: &str,
    what: &str,
) -> Result<(T, ClientAuth), TokenFailure> {
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

/// The form of one attempt and its `Authorization: Basic` value, if the client uses Basic.
fn form(
    client: Option<&ClientInfo>,
    grant_type: &str,
    params: &[(String, String)],
) -> (Vec<(String, String)>, Option<String>) {
    let mut form = vec![("grant_type".to_string(), grant_type.to_string())];
    let mut basic = None;
    if let Some(client) = client {
        form.extend(client.auth_params());
        match (client.auth, &client.secret) {
            (ClientAuth::ClientSecretBasic, Some(secret)) => {
                basic = Some(basic_auth(&client.client_id, secret.expose()));
            }
            (ClientAuth::ClientSecretPost, Some(secret)) => {
                form.push(("client_id".into(), client.client_id.clone()));
                form.push(("client_secret".into(), secret.expose().to_string()));
            }
            _ => form.push(("client_id".into(), client.client_id.clone())),
        }
    }
    form.extend(params.iter().cloned());
    (form, basic)
}

async fn attempt<T: DeserializeOwned>(
    call: &TokenCall<'_>,
    client: Option<ClientInfo>,
    grant_type: &str,
    what: &str,
) -> Result<T, TokenFailure> {
    let url = call.url.url().clone();
    let (form, basic) = form(client.as_ref(), grant_type, &call.params);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request = ::http::Request::post(url.as_str())
        .header(::http::header::ACCEPT, "application/json")
        .header(
            ::http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
    if let Some(basic) = basic {
        request = request.header(::http::header::AUTHORIZATION, basic);
    }
    let request = request.body(body.into_bytes()).map_err(|e| {
        let e = FetchError::BadUrl {
            url: url.to_string(),
            problem: e.to_string(),
        };
        describe::<BasicErrorResponse>(
            what,
            url.as_str(),
            &Default::default(),
            RequestTokenError::Request(e),
        )
    })?;
    let oh = OAuthHttp::with_dpop(call.http.clone(), call.dpop.clone());
    let failed = |e: RequestTokenError<FetchError, BasicErrorResponse>| {
        describe(what, url.as_str(), &oh.answer(), e)
    };
    let response = oh
        .call(request)
        .await
        .map_err(|e| failed(RequestTokenError::Request(e)))?;
    let other = || RequestTokenError::Other(String::new());
    if !response.status().is_success() {
        return Err(failed(other()));
    }
    serde_json::from_slice(response.body()).map_err(|_| failed(other()))
}

/// `Authorization: Basic` as RFC 6749 §2.3.1 writes it (each part form-encoded first).
fn basic_auth(client_id: &str, secret: &str) -> String {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(client_id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::upstream::clientauth::Plan;

    #[test]
    fn basic_credentials_are_form_encoded_before_base64() {
        use base64::Engine;
        let b = basic_auth("a b:c", "p@ss:w");
        let raw = b.strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "a+b%3Ac:p%40ss%3Aw");
    }

    #[test]
    fn the_form_carries_the_grant_the_client_and_never_a_basic_secret() {
        let params = [("assertion".to_string(), "a.b.c".to_string())];
        let (f, basic) = form(None, "urn:g", &params);
        assert_eq!(f[0], ("grant_type".into(), "urn:g".into()));
        assert!(basic.is_none() && !f.iter().any(|(k, _)| k == "client_id"));
        let plan = Plan {
            first: ClientAuth::ClientSecretBasic,
            fallback: None,
        };
        let c = ClientInfo::new("cid".into(), Some(Secret::new("s3cret")), plan);
        let (f, basic) = form(Some(&c), "urn:g", &params);
        assert!(basic.is_some());
        assert!(!f.iter().any(|(_, v)| v == "s3cret"));
        assert!(f.contains(&("client_id".into(), "cid".into())));
        assert_eq!(f.last().unwrap().0, "assertion");
    }
}
