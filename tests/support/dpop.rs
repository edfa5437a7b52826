//! DPoP proofs (RFC 9449) as the test AS and the test upstream check them, written apart from
//! the broker's own `upstream::dpop` so a regression there fails a test: the proof's header
//! (`typ` `dpop+jwt`, ES256, a public `jwk`), its signature by that key, `htm`, `htu`, a `jti`
//! never seen before, a fresh `iat`, and `ath` for a request with a token. The key's RFC 7638
//! thumbprint is what a token issued to the proof is bound to (`cnf.jkt`), kept as
//! [`IssuedToken::jkt`](super::IssuedToken).

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// How far a proof's `iat` may be from now (RFC 9449 §11.1 leaves it to the server).
const IAT_WINDOW_SECS: u64 = 60;

/// What one request must prove.
pub struct Expect<'a> {
    pub htm: &'a str,
    pub htu: &'a str,
    /// The access token the request carries (checked against `ath`), if any.
    pub token: Option<&'a str>,
}

/// The RFC 7638 thumbprint of a P-256 public JWK.
pub fn thumbprint(jwk: &Value) -> String {
    let canonical = format!(
        r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
        jwk["crv"].as_str().unwrap_or_default(),
        jwk["kty"].as_str().unwrap_or_default(),
        jwk["x"].as_str().unwrap_or_default(),
        jwk["y"].as_str().unwrap_or_default()
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn json_part(part: &str) -> Result<Value, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| "a proof part is not base64url".to_string())?;
    serde_json::from_slice(&bytes).map_err(|_| "a proof part is not JSON".to_string())
}

/// Checks `proof` for `expect`, remembering its `jti` in `seen` (a replay is refused); the
/// thumbprint of its key, or why it is refused.
pub fn verify(proof: &str, expect: &Expect, seen: &mut HashSet<String>) -> Result<String, String> {
    let parts: Vec<&str> = proof.split('.').collect();
    let [header, payload, sig] = parts[..] else {
        return Err("the DPoP proof is not a compact JWS".into());
    };
    let (h, c) = (json_part(header)?, json_part(payload)?);
    if h["typ"] != "dpop+jwt" || h["alg"] != "ES256" || h["jwk"]["kty"] != "EC" {
        return Err(format!("not an ES256 dpop+jwt with a jwk: {h}"));
    }
    if h["jwk"].get("d").is_some() {
        return Err("the proof's jwk holds a private key".into());
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| "signature not base64url")?;
    if !super::workload::verifies(&h["jwk"], &format!("{header}.{payload}"), &sig) {
        return Err("the proof's signature does not verify with its jwk".into());
    }
    let now = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .unwrap()
        .as_secs();
    let fresh = c["iat"]
        .as_u64()
        .is_some_and(|iat| iat.abs_diff(now) <= IAT_WINDOW_SECS);
    let ath = expect
        .token
        .map(|t| URL_SAFE_NO_PAD.encode(Sha256::digest(t.as_bytes())));
    let checks = [
        (c["htm"] == expect.htm, "htm"),
        (c["htu"] == expect.htu, "htu"),
        (fresh, "iat"),
        (c["ath"].as_str() == ath.as_deref(), "ath"),
    ];
    if let Some((_, claim)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(format!("the proof's {claim} is wrong: {c}"));
    }
    let jti = c["jti"]
        .as_str()
        .filter(|j| !j.is_empty())
        .ok_or("no jti")?;
    if !seen.insert(jti.to_string()) {
        return Err("the proof's jti was used before (replay)".into());
    }
    Ok(thumbprint(&h["jwk"]))
}
