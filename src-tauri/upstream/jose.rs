//! The one home of keys and signatures (JOSE) in the broker: an ES256 key pair, its public JWK
//! with an RFC 7638 thumbprint as `kid`, and compact JWS signing. Client assertions
//! (`private_key_jwt`, RFC 7523) and DPoP proofs (RFC 9449) are both signed here, so the key
//! format, the signature encoding (raw `r||s`, RFC 7518 §3.4) and the redaction rules are
//! written once.
//!
//! The private key never prints: [`EsKey`] has a redacted `Debug` and no `Serialize`; it leaves
//! the process only as a [`Secret`] (PKCS#8 PEM) on its way to the token store.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// The JWS algorithm every key here signs with.
pub const ALG: &str = "ES256";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoseError {
    /// The text is not a P-256 private key in PEM; the message never quotes it.
    #[error(
        "the private key is not a P-256 (ES256) key in PEM (\"BEGIN PRIVATE KEY\" or \
         \"BEGIN EC PRIVATE KEY\"): {0}. Create one with \
         `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`"
    )]
    BadKey(&'static str),
}

/// An ES256 (P-256) key pair.
#[derive(Clone)]
pub struct EsKey {
    signing: SigningKey,
}

impl EsKey {
    /// A fresh key pair from the operating system's randomness.
    pub fn generate() -> EsKey {
        EsKey {
            signing: SigningKey::random(&mut rand_core::OsRng),
        }
    }

    /// Reads a private key in PEM: PKCS#8 (`BEGIN PRIVATE KEY`, what [`EsKey::to_pem`] writes and
    /// what `openssl genpkey` and WebCrypto export) or SEC1 (`BEGIN EC PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<EsKey, JoseError> {
        let pem = pem.trim();
        if pem.contains("BEGIN EC PRIVATE KEY") {
            let secret = p256::SecretKey::from_sec1_pem(pem)
                .map_err(|_| JoseError::BadKey("the SEC1 key does not decode"))?;
            return Ok(EsKey {
                signing: SigningKey::from(secret),
            });
        }
        if !pem.contains("BEGIN PRIVATE KEY") {
            return Err(JoseError::BadKey("no PEM private key block found"));
        }
        SigningKey::from_pkcs8_pem(pem)
            .map(|signing| EsKey { signing })
            .map_err(|_| JoseError::BadKey("the PKCS#8 key does not decode as a P-256 key"))
    }

    /// The private key as PKCS#8 PEM, for the token store only.
    pub fn to_pem(&self) -> Secret {
        let pem = self
            .signing
            .to_pkcs8_pem(LineEnding::LF)
            .expect("a P-256 key always encodes as PKCS#8");
        Secret::new(pem.as_str())
    }

    /// The public key's required JWK members (RFC 7518 §6.2.1), in the lexicographic order
    /// RFC 7638 hashes them.
    fn jwk_members(&self) -> (String, String) {
        let point = self.signing.verifying_key().to_encoded_point(false);
        let b64 = |b: Option<&p256::FieldBytes>| URL_SAFE_NO_PAD.encode(b.expect("uncompressed"));
        (b64(point.x()), b64(point.y()))
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url): the key's `kid`, and what a DPoP-bound
    /// token's `cnf.jkt` names.
    pub fn thumbprint(&self) -> String {
        let (x, y) = self.jwk_members();
        thumbprint_of(&x, &y)
    }

    /// The public key as a JWK, with `kid` (the thumbprint), `alg` and `use`: what a provider
    /// registers for the client, and what a DPoP proof's `jwk` header carries.
    pub fn public_jwk(&self) -> Value {
        let (x, y) = self.jwk_members();
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": x,
            "y": y,
            "kid": self.thumbprint(),
            "alg": ALG,
            "use": "sig",
        })
    }

    /// A JWK Set holding this public key, the shape `jwks` registrations and `jwks_uri` take.
    pub fn public_jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk()] })
    }

    /// A compact JWS of `claims` with the header `{"alg":"ES256", ...header_extra}` (e.g. `typ`,
    /// `kid`, `jwk`). `header_extra` is a JSON object; `alg` in it is ignored.
    pub fn sign(&self, header_extra: &Value, claims: &Value) -> String {
        debug_assert!(header_extra.is_object() || header_extra.is_null());
        let mut header = Map::new();
        header.insert("alg".into(), ALG.into());
        if let Some(extra) = header_extra.as_object() {
            for (k, v) in extra.iter().filter(|(k, _)| k.as_str() != "alg") {
                header.insert(k.clone(), v.clone());
            }
        }
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!("{}.{}", part(&Value::Object(header)), part(claims));
        let signature: Signature = self.signing.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

/// RFC 7638 for a P-256 public key: SHA-256 over the required members, sorted, no whitespace.
fn thumbprint_of(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

impl fmt::Debug for EsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EsKey(ES256, kid {}, private key [redacted])",
            self.thumbprint()
        )
    }
}

#[cfg(test)]
#[path = "jose_tests.rs"]
mod tests;
