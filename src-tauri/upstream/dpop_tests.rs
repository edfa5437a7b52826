use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{HeaderMap, HeaderValue, StatusCode};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::Value;
use url::Url;

use super::*;

fn part(jws: &str, i: usize) -> Value {
    let p = jws.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

/// What a resource server does with a proof: verify it with the key in its own header.
fn verifies(jws: &str) -> bool {
    let jwk = &part(jws, 0)["jwk"];
    let coord = |n: &str| URL_SAFE_NO_PAD.decode(jwk[n].as_str().unwrap()).unwrap();
    let point = p256::EncodedPoint::from_affine_coordinates(
        coord("x").as_slice().into(),
        coord("y").as_slice().into(),
        false,
    );
    let key = VerifyingKey::from_encoded_point(&point).unwrap();
    let (input, sig) = jws.rsplit_once('.').unwrap();
    let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
    key.verify(input.as_bytes(), &sig).is_ok()
}

#[test]
fn a_proof_is_a_signed_dpop_jwt_for_the_method_and_url_without_query_with_ath_for_the_token() {
    let prover = Prover::new(EsKey::generate());
    let url = Url::parse("https://mcp.example/mcp?x=1#frag").unwrap();
    let token = Secret::new("tok-abc");
    let jws = prover.proof("POST", &url, Some(&token), 1_700_000_000);
    assert!(verifies(&jws));
    let header = part(&jws, 0);
    assert_eq!(header["typ"], "dpop+jwt");
    assert_eq!(header["alg"], "ES256");
    assert!(header["jwk"].get("d").is_none(), "no private part");
    assert_eq!(header["jwk"]["kty"], "EC");
    let claims = part(&jws, 1);
    assert_eq!(claims["htm"], "POST");
    assert_eq!(claims["htu"], "https://mcp.example/mcp");
    assert_eq!(claims["iat"], 1_700_000_000);
    assert_eq!(claims["ath"], ath("tok-abc"));
    assert!(claims.get("nonce").is_none());
    let again = prover.proof("POST", &url, Some(&token), 1_700_000_000);
    assert_ne!(
        part(&again, 1)["jti"],
        claims["jti"],
        "a fresh jti per proof"
    );
    assert!(!jws.contains("tok-abc"));
    assert!(!format!("{prover:?}").contains("PRIVATE"));
}

#[test]
fn ath_is_the_base64url_sha256_of_the_token() {
    // RFC 9449 §7.1's example token and its ath.
    assert_eq!(
        ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
}

#[test]
fn a_nonce_is_remembered_per_origin_and_used_in_every_later_proof_there() {
    let prover = Prover::new(EsKey::generate());
    let a = Url::parse("https://as.example/token").unwrap();
    let b = Url::parse("https://mcp.example/mcp").unwrap();
    let mut h = HeaderMap::new();
    h.insert(DPOP_NONCE, HeaderValue::from_static("n-1"));
    assert!(prover.learn_nonce(&a, &h));
    assert!(
        prover.learn_nonce(&a, &h),
        "an answer carrying a nonce says so, known or not"
    );
    assert_eq!(part(&prover.proof("POST", &a, None, 0), 1)["nonce"], "n-1");
    let other = Url::parse("https://as.example/other").unwrap();
    assert_eq!(
        part(&prover.proof("GET", &other, None, 0), 1)["nonce"],
        "n-1"
    );
    assert!(part(&prover.proof("POST", &b, None, 0), 1)
        .get("nonce")
        .is_none());
    assert!(!prover.learn_nonce(&b, &HeaderMap::new()));
}

#[test]
fn nonce_requests_are_recognised_at_the_token_endpoint_and_the_resource() {
    assert!(token_wants_nonce(400, br#"{"error":"use_dpop_nonce"}"#));
    assert!(!token_wants_nonce(400, br#"{"error":"invalid_grant"}"#));
    assert!(!token_wants_nonce(401, br#"{"error":"use_dpop_nonce"}"#));
    let mut h = HeaderMap::new();
    h.insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"DPoP error="use_dpop_nonce", algs="ES256""#),
    );
    assert!(resource_wants_nonce(StatusCode::UNAUTHORIZED, &h));
    assert!(!resource_wants_nonce(StatusCode::FORBIDDEN, &h));
    let mut bearer = HeaderMap::new();
    bearer.insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer error="invalid_token""#),
    );
    assert!(!resource_wants_nonce(StatusCode::UNAUTHORIZED, &bearer));
}

#[test]
fn dpop_is_used_when_configured_or_when_the_authorization_server_offers_es256() {
    let es = vec!["RS256".to_string(), "ES256".to_string()];
    let rs = vec!["RS256".to_string()];
    assert!(wanted(None, Some(&es)));
    assert!(!wanted(None, Some(&rs)));
    assert!(!wanted(None, None));
    assert!(wanted(Some(true), None));
    assert!(!wanted(Some(false), Some(&es)), "dpop: false turns it off");
}

#[test]
fn a_token_is_bound_only_when_a_proof_was_sent_and_the_answer_says_dpop() {
    let resp = |token_type: &str| -> super::super::tokens::UpTokenResponse {
        serde_json::from_value(serde_json::json!({"access_token": "a", "token_type": token_type}))
            .unwrap()
    };
    let mut dpop = resp("DPoP");
    assert_eq!(dpop.dpop_jkt(), None, "no proof was sent");
    dpop.proved_with = Some("jkt".into());
    assert_eq!(dpop.dpop_jkt().as_deref(), Some("jkt"));
    let mut bearer = resp("Bearer");
    bearer.proved_with = Some("jkt".into());
    assert_eq!(
        bearer.dpop_jkt(),
        None,
        "a bearer answer to a proof is not bound"
    );
}
