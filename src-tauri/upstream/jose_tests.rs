use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::LineEnding;
use serde_json::{json, Value};

use super::*;

/// The verifying key a relying party builds from the published JWK (x and y only).
fn verifier_from_jwk(jwk: &Value) -> VerifyingKey {
    let coord = |n: &str| URL_SAFE_NO_PAD.decode(jwk[n].as_str().unwrap()).unwrap();
    let point = p256::EncodedPoint::from_affine_coordinates(
        coord("x").as_slice().into(),
        coord("y").as_slice().into(),
        false,
    );
    VerifyingKey::from_encoded_point(&point).unwrap()
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn signed_jws_verifies_with_the_published_jwk_and_carries_header_and_claims() {
    let key = EsKey::generate();
    let claims = json!({"iss": "client-1", "aud": "https://as.example/token", "n": 1});
    let jws = key.sign(&json!({"typ": "dpop+jwt", "alg": "none"}), &claims);
    let parts: Vec<&str> = jws.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = decode_part(parts[0]);
    assert_eq!(header["alg"], "ES256", "alg is never overridden");
    assert_eq!(header["typ"], "dpop+jwt");
    assert_eq!(decode_part(parts[1]), claims);
    let sig_bytes = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    assert_eq!(sig_bytes.len(), 64, "ES256 signatures are raw r||s");
    let sig = Signature::from_slice(&sig_bytes).unwrap();
    let input = format!("{}.{}", parts[0], parts[1]);
    let verifier = verifier_from_jwk(&key.public_jwk());
    assert!(verifier.verify(input.as_bytes(), &sig).is_ok());
    assert!(verifier.verify(b"tampered", &sig).is_err());
}

#[test]
fn key_survives_the_token_store_round_trip() {
    let key = EsKey::generate();
    let stored = key.to_pem();
    assert!(stored.expose().starts_with("-----BEGIN PRIVATE KEY-----"));
    let back = EsKey::from_pem(stored.expose()).unwrap();
    assert_eq!(back.thumbprint(), key.thumbprint());
    assert_eq!(back.public_jwk(), key.public_jwk());
}

#[test]
fn sec1_pem_keys_are_accepted_too() {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let sec1 = secret.to_sec1_pem(LineEnding::LF).unwrap();
    let key = EsKey::from_pem(&sec1).unwrap();
    let expected = EsKey::from_pem(secret.to_pkcs8_pem(LineEnding::LF).unwrap().as_str()).unwrap();
    assert_eq!(key.thumbprint(), expected.thumbprint());
}

#[test]
fn text_that_is_not_a_p256_key_is_refused_without_quoting_it() {
    for bad in [
        "hunter2-not-a-key",
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----\n",
    ] {
        let err = EsKey::from_pem(bad).unwrap_err().to_string();
        assert!(err.contains("P-256"), "{err}");
        assert!(
            !err.contains("hunter2") && !err.contains("c2VjcmV0"),
            "{err}"
        );
    }
}

#[test]
fn thumbprint_matches_the_rfc_9449_example() {
    // RFC 9449 §6.1: this public key's JWK SHA-256 thumbprint.
    assert_eq!(
        thumbprint_of(
            "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"
        ),
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    );
}

#[test]
fn public_jwk_has_no_private_part_and_its_kid_is_the_thumbprint() {
    let key = EsKey::generate();
    let jwk = key.public_jwk();
    assert!(jwk.get("d").is_none());
    assert_eq!(jwk["kid"], key.thumbprint());
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    assert_eq!(key.public_jwks()["keys"][0], jwk);
}

#[test]
fn debug_never_shows_the_private_key() {
    let key = EsKey::generate();
    let shown = format!("{key:?}");
    let pem = key.to_pem();
    let body: String = pem
        .expose()
        .lines()
        .nth(1)
        .unwrap()
        .chars()
        .take(20)
        .collect();
    assert!(
        shown.contains("redacted") && !shown.contains(&body),
        "{shown}"
    );
    assert!(!format!("{pem:?}").contains(&body));
}
