//! The test AS's jwt-bearer grant (RFC 7523 §2.1), as workload identity federation uses it: it
//! accepts only the workload tokens the test trusts ([`AsState::trust_workload`]) and records
//! every assertion it received ([`AsState::workload_assertions`]), so a test can tell which
//! token the broker read. Its client assertions (`private_key_jwt`, RFC 7523 §2.2): a client
//! that registered a `jwks` must sign each token request with one of those keys, checked here.

use std::collections::{HashMap, HashSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::Value;

use super::auth_server::AsState;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[derive(Default)]
pub(crate) struct Workload {
    trusted: HashSet<String>,
    seen: Vec<String>,
    /// The `jwks` each `private_key_jwt` client registered, by client id.
    keys: HashMap<String, Value>,
    /// The client of every assertion whose signature checked out, in order.
    verified: Vec<String>,
}

impl AsState {
    /// From now on `jwt` is a valid workload token for the public client `client_id`.
    pub fn trust_workload(&self, client_id: &str, jwt: &str) {
        self.workload.lock().unwrap().trusted.insert(jwt.into());
        self.clients.lock().unwrap().insert(client_id.into(), None);
    }

    /// `jwt` is refused from now on (`invalid_grant`), as after the platform rotated it.
    pub fn distrust_workload(&self, jwt: &str) {
        self.workload.lock().unwrap().trusted.remove(jwt);
    }

    /// Registers `client_id` as a `private_key_jwt` client with `jwks` (no secret).
    pub(crate) fn register_keys(&self, client_id: &str, jwks: Value) {
        self.workload
            .lock()
            .unwrap()
            .keys
            .insert(client_id.into(), jwks);
        self.clients.lock().unwrap().insert(client_id.into(), None);
    }

    /// Drops the keys `client_id` registered.
    pub(crate) fn forget_keys(&self, client_id: &str) {
        self.workload.lock().unwrap().keys.remove(client_id);
    }

    /// The client of every client assertion whose signature matched its registered key.
    pub fn verified_assertions(&self) -> Vec<String> {
        self.workload.lock().unwrap().verified.clone()
    }

    /// Every assertion a jwt-bearer request carried, in order.
    pub fn workload_assertions(&self) -> Vec<String> {
        self.workload.lock().unwrap().seen.clone()
    }
}

/// The `(resource, scope)` a jwt-bearer request is granted, or the OAuth error code.
pub(crate) fn redeem(
    s: &AsState,
    form: &HashMap<String, String>,
) -> Result<(Option<String>, Option<String>), &'static str> {
    let assertion = form.get("assertion").ok_or("invalid_request")?;
    let mut w = s.workload.lock().unwrap();
    w.seen.push(assertion.clone());
    if !w.trusted.contains(assertion) {
        return Err("invalid_grant");
    }
    Ok((form.get("resource").cloned(), form.get("scope").cloned()))
}

/// The client a token request proved itself as with a client assertion (RFC 7523 §2.2), `None`
/// when it sent none and its client registered no key, else the reason it is refused.
pub(crate) fn assertion_client(
    s: &AsState,
    form: &HashMap<String, String>,
) -> Result<Option<String>, &'static str> {
    let mut w = s.workload.lock().unwrap();
    let Some(jwt) = form.get("client_assertion") else {
        let keyed = form
            .get("client_id")
            .is_some_and(|id| w.keys.contains_key(id));
        return if keyed {
            Err("this client registered a key: send a client_assertion")
        } else {
            Ok(None)
        };
    };
    let claims = checked_claims(&w.keys, jwt)?;
    let client = claims["sub"].as_str().unwrap_or_default().to_string();
    if claims["iss"] != claims["sub"] || form.get("client_id").is_some_and(|id| *id != client) {
        return Err("the assertion's iss and sub must be the client_id");
    }
    let aud = claims["aud"].as_str().unwrap_or_default();
    match &s.options.assertion_audience {
        Some(only) if aud != only => {
            return Err("the assertion's aud is not the one this server wants")
        }
        None if aud != s.issuer && aud != format!("{}/token", s.issuer) => {
            return Err("the assertion's aud is neither the issuer nor the token endpoint")
        }
        _ => {}
    }
    let now = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .unwrap()
        .as_secs();
    if claims["exp"].as_u64().is_none_or(|exp| exp <= now) {
        return Err("the assertion expired");
    }
    w.verified.push(client.clone());
    Ok(Some(client))
}

/// The claims of `jwt` when its ES256 signature verifies with a key its `sub` registered.
fn checked_claims(keys: &HashMap<String, Value>, jwt: &str) -> Result<Value, &'static str> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let json = |part: &str| {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| "the assertion is not base64url")?;
        serde_json::from_slice::<Value>(&bytes).map_err(|_| "the assertion is not JSON")
    };
    let [header, payload, sig] = parts[..] else {
        return Err("the assertion is not a compact JWS");
    };
    let (header, claims) = (json(header)?, json(payload)?);
    let jwks = claims["sub"]
        .as_str()
        .and_then(|sub| keys.get(sub))
        .ok_or("the client registered no key")?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| "the signature is not base64url")?;
    let input = format!("{}.{}", parts[0], parts[1]);
    let signed = jwks["keys"].as_array().into_iter().flatten().any(|jwk| {
        (header["kid"].is_null() || header["kid"] == jwk["kid"]) && verifies(jwk, &input, &sig)
    });
    match header["alg"] == "ES256" && signed {
        true => Ok(claims),
        false => Err("the assertion's signature matches no registered key"),
    }
}

/// Whether `sig` (raw r||s) over `input` verifies with the P-256 public `jwk`.
pub(crate) fn verifies(jwk: &Value, input: &str, sig: &[u8]) -> bool {
    let coord = |c: &str| {
        let text = jwk[c].as_str().unwrap_or_default();
        URL_SAFE_NO_PAD.decode(text).ok().filter(|b| b.len() == 32)
    };
    let (Some(x), Some(y)) = (coord("x"), coord("y")) else {
        return false;
    };
    let point = p256::EncodedPoint::from_affine_coordinates(
        p256::FieldBytes::from_slice(&x),
        p256::FieldBytes::from_slice(&y),
        false,
    );
    let (Ok(key), Ok(sig)) = (
        VerifyingKey::from_encoded_point(&point),
        Signature::from_slice(sig),
    ) else {
        return false;
    };
    key.verify(input.as_bytes(), &sig).is_ok()
}
