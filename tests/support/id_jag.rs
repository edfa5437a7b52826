//! The test AS's jwt-bearer grant (RFC 7523) for ID-JAGs (enterprise-managed authorization,
//! `AsOptions::id_jag_issuer`): the assertion's ES256 signature checked with the keys the
//! trusted identity provider publishes (its OpenID metadata's `jwks_uri`), and its claims —
//! `typ` `oauth-id-jag+jwt`, `iss` the provider, `aud` this AS, `client_id` the client that
//! authenticated, unexpired. The token it issues is for the ID-JAG's `resource`.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::Value;

use super::auth_server::AsState;

fn part(text: Option<&str>) -> Result<Vec<u8>, String> {
    let text = text.ok_or("the assertion is not a JWT")?;
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| format!("not base64url: {e}"))
}

fn json_part(text: Option<&str>) -> Result<Value, String> {
    serde_json::from_slice(&part(text)?).map_err(|e| format!("not JSON: {e}"))
}

/// The provider's signing keys, from its metadata's `jwks_uri`.
async fn keys(issuer: &str) -> Result<Vec<Value>, String> {
    let get = |url: String| async move {
        let resp = reqwest::get(&url).await.map_err(|e| e.to_string())?;
        resp.json::<Value>().await.map_err(|e| e.to_string())
    };
    let meta = get(format!("{issuer}/.well-known/openid-configuration")).await?;
    let jwks_uri = meta["jwks_uri"].as_str().ok_or("no jwks_uri")?.to_string();
    let jwks = get(jwks_uri).await?;
    Ok(jwks["keys"].as_array().cloned().unwrap_or_default())
}

fn verify(key: &Value, signed: &str, signature: &[u8]) -> Result<(), String> {
    let coordinate = |name: &str| part(key[name].as_str());
    let (x, y) = (coordinate("x")?, coordinate("y")?);
    let point = p256::EncodedPoint::from_affine_coordinates(
        x.as_slice().into(),
        y.as_slice().into(),
        false,
    );
    let key = VerifyingKey::from_encoded_point(&point).map_err(|e| e.to_string())?;
    let signature = Signature::from_slice(signature).map_err(|e| e.to_string())?;
    key.verify(signed.as_bytes(), &signature)
        .map_err(|_| "the ID-JAG's signature does not verify with the provider's keys".into())
}

/// Checks the form's `assertion`; `Ok((resource, scope))` for the token to issue, or why not.
pub(crate) async fn redeem(
    s: &AsState,
    form: &HashMap<String, String>,
    client_id: &str,
) -> Result<(Option<String>, Option<String>), String> {
    let trusted = s
        .options
        .id_jag_issuer
        .as_deref()
        .ok_or("no trusted provider")?;
    let assertion = form.get("assertion").ok_or("no assertion")?;
    let pieces: Vec<&str> = assertion.split('.').collect();
    let (header, claims) = (
        json_part(pieces.first().copied())?,
        json_part(pieces.get(1).copied())?,
    );
    if header["typ"] != "oauth-id-jag+jwt" || header["alg"] != "ES256" {
        return Err(format!("not an ES256 ID-JAG: {header}"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let checks = [
        (claims["iss"] == trusted, "iss"),
        (claims["aud"] == s.issuer.as_str(), "aud"),
        (claims["client_id"] == client_id, "client_id"),
        (claims["exp"].as_u64().is_some_and(|e| e > now), "exp"),
        (claims["resource"].is_string(), "resource"),
    ];
    if let Some((_, claim)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(format!("the ID-JAG's {claim} is wrong: {claims}"));
    }
    let keys = keys(trusted).await?;
    let key = keys
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .ok_or("no key with the ID-JAG's kid")?;
    let signed = format!("{}.{}", pieces[0], pieces[1]);
    verify(key, &signed, &part(pieces.get(2).copied())?)?;
    let resource = claims["resource"].as_str().map(str::to_string);
    Ok((resource, form.get("scope").cloned()))
}
