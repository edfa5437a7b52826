//! The two grants of enterprise-managed authorization: RFC 8693 token exchange (at the identity
//! provider) and RFC 7523 jwt-bearer (at a server's authorization server), both sent by
//! [`formgrant`](super::super::formgrant), the one sender of grants the `oauth2` crate lacks.

use serde::Deserialize;

use super::super::formgrant;
use super::super::oauth::{TokenCall, TokenFailure};
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
    let what = if grant_type == super::TOKEN_EXCHANGE {
        "token exchange"
    } else {
        "jwt-bearer token request"
    };
    formgrant::send(call, Some(client), grant_type, what).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_exchange_answer_keeps_its_issued_token_type() {
        let g: Granted = serde_json::from_str(r#"{"access_token":"j","issued_token_type":"urn:ietf:params:oauth:token-type:id-jag","token_type":"N_A"}"#).unwrap();
        assert_eq!(g.issued_token_type.as_deref(), Some(super::super::ID_JAG));
        assert_eq!(g.response.token_type.as_deref(), Some("N_A"));
    }
}
