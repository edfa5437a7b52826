//! Authorization codes: issued after consent, redeemed once. Pure bookkeeping on [`State`]
//! (`now` is a parameter); codes live in memory only.

use super::crypto::{self, hash};
use super::model::*;
use super::state::State;
use super::TokenError;
use crate::secret::Secret;

/// What `/authorize` asks to be issued, once consent is settled.
#[derive(Debug, Clone)]
pub struct CodeRequest {
    pub client_id: String,
    pub server: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: Option<String>,
}

/// What a token request presents along with a code.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub client_id: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub verifier: Option<&'a str>,
    /// The server the request names (`resource` or the path), if any.
    pub server: Option<&'a str>,
}

impl State {
    pub fn issue_code(&mut self, req: CodeRequest, now: u64) -> Secret {
        self.codes.retain(|_, c| c.expires_at > now);
        let code = crypto::random_token(crypto::CODE_PREFIX);
        self.codes.insert(
            hash(&code),
            CodeRecord {
                client_id: req.client_id,
                server: req.server,
                redirect_uri: req.redirect_uri,
                code_challenge: req.code_challenge,
                scope: req.scope,
                expires_at: now + CODE_TTL,
                spent: None,
            },
        );
        Secret::new(code)
    }

    /// Redeems a code. The first attempt spends it whatever its outcome, so a code that leaked
    /// with a wrong guess of the verifier (or to another client) can never be redeemed later; a
    /// replay after a success revokes everything the success issued.
    pub fn exchange_code(
        &mut self,
        code: &str,
        presented: Presented<'_>,
        now: u64,
    ) -> Result<TokenSet, TokenError> {
        let key = hash(code);
        let Some(record) = self.codes.get_mut(&key) else {
            return Err(TokenError::InvalidGrant(
                "the authorization code is unknown or expired".into(),
            ));
        };
        match record.spent.replace(Spent::Refused) {
            Some(Spent::Issued(grant)) => {
                record.spent = Some(Spent::Issued(grant.clone()));
                self.revoke_grant(&grant);
                return Err(TokenError::InvalidGrant(
                    "the authorization code was already used; the tokens it issued are revoked"
                        .into(),
                ));
            }
            Some(Spent::Refused) => {
                return Err(TokenError::InvalidGrant(
                    "the authorization code was already presented in a refused request; authorize again".into(),
                ))
            }
            None => {}
        }
        let record = record.clone();
        if record.expires_at <= now {
            self.codes.remove(&key);
            return Err(TokenError::InvalidGrant(
                "the authorization code expired; authorize again".into(),
            ));
        }
        check(&record, presented)?;
        let grant_id = crypto::random_id();
        self.grants.insert(
            grant_id.clone(),
            Grant {
                id: grant_id.clone(),
                client_id: record.client_id.clone(),
                server: record.server.clone(),
                scope: record.scope.clone(),
                created_at: now,
                refreshed_at: None,
            },
        );
        if let Some(c) = self.codes.get_mut(&key) {
            c.spent = Some(Spent::Issued(grant_id.clone()));
        }
        if let Some(client) = self.clients.get_mut(presented.client_id) {
            client.last_used = Some(now);
        }
        Ok(self.mint(&grant_id, now))
    }
}

/// Whether the request matches what the code was issued for (client, redirect URI, PKCE
/// verifier, server). The words say which part did not match and what to do.
fn check(record: &CodeRecord, presented: Presented<'_>) -> Result<(), TokenError> {
    if record.client_id != presented.client_id {
        return Err(TokenError::InvalidGrant(
            "the authorization code was issued to another client".into(),
        ));
    }
    // RFC 6749 §4.1.3: identical to the redirect_uri of the authorization request.
    match presented.redirect_uri {
        Some(uri) if uri == record.redirect_uri => {}
        Some(_) => {
            return Err(TokenError::InvalidGrant(
                "redirect_uri does not match the authorization request; authorize again".into(),
            ))
        }
        None => return Err(TokenError::InvalidRequest(
            "redirect_uri is required (it was sent in the authorization request); authorize again"
                .into(),
        )),
    }
    let Some(verifier) = presented.verifier else {
        return Err(TokenError::InvalidRequest(
            "code_verifier is required (PKCE); authorize again".into(),
        ));
    };
    if !crypto::verifier_is_well_formed(verifier)
        || !crypto::pkce_s256_matches(verifier, &record.code_challenge)
    {
        return Err(TokenError::InvalidGrant(
            "code_verifier does not match the code_challenge; authorize again".into(),
        ));
    }
    match presented.server {
        Some(server) if server != record.server => Err(TokenError::InvalidTarget(format!(
            "resource names server \"{server}\" but the code was issued for \"{}\"; authorize again",
            record.server
        ))),
        _ => Ok(()),
    }
}
