//! Multi Round-Trip Requests (2026-07-28): `input_required` results, the retry's
//! `inputResponses`, and the broker's own `requestState` wrapping — when the broker stands
//! between a client and several upstreams, the state it hands the client names the upstream
//! (and the principal) under an HMAC, so a retry goes back to the same upstream and a state is
//! never accepted from another client or tampered with.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::envelope::result_type;

pub const INPUT_REQUIRED: &str = "input_required";
/// The methods whose results may be `input_required`.
pub const RETRYABLE: [&str; 3] = ["tools/call", "prompts/get", "resources/read"];

/// Whether a result asks the client for input.
pub fn is_input_required(result: &Value) -> bool {
    result_type(result) == INPUT_REQUIRED
}

/// An `input_required` result with one URL-mode elicitation: the modern form of the sign-in link
/// (2025-11-25's `-32042`). The client opens `url`, then retries.
pub fn url_elicitation(key: &str, message: &str, url: &str) -> Value {
    json!({
        "resultType": INPUT_REQUIRED,
        "inputRequests": { key: {
            "method": "elicitation/create",
            "params": {"mode": "url", "message": message, "url": url},
        }},
    })
}

/// The `inputResponses` and `requestState` of a retried request, taken out of its params.
pub fn take_retry(params: &mut Value) -> (Option<Value>, Option<String>) {
    let Some(map) = params.as_object_mut() else {
        return (None, None);
    };
    let responses = map.remove("inputResponses");
    let state = map
        .remove("requestState")
        .and_then(|s| s.as_str().map(str::to_string));
    (responses, state)
}

/// The `inputRequests` of an `input_required` result: (key, method, params) each.
pub fn input_requests(result: &Value) -> Vec<(&str, &str, &Value)> {
    static NONE: Value = Value::Null;
    let Some(map) = result.get("inputRequests").and_then(Value::as_object) else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(key, request)| {
            let method = request.get("method")?.as_str()?;
            Some((key.as_str(), method, request.get("params").unwrap_or(&NONE)))
        })
        .collect()
}

/// The params of the retry of a request whose answer was the `input_required` `result`: the
/// original params (without an earlier round's retry fields), the client's `responses` (keyed
/// as the result's `inputRequests`), and the result's `requestState` echoed byte for byte — or
/// none at all when the result had none (SEP-2322).
pub fn retry_params(original: &Value, result: &Value, responses: Value) -> Value {
    let mut params = original.clone();
    take_retry(&mut params);
    let Some(map) = params.as_object_mut() else {
        return params;
    };
    if result.get("inputRequests").is_some() {
        map.insert("inputResponses".into(), responses);
    }
    if let Some(state) = result.get("requestState").filter(|s| s.is_string()) {
        map.insert("requestState".into(), state.clone());
    }
    params
}

/// Why a wrapped `requestState` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the requestState was not issued by this broker or was changed; start the request again without it")]
    Forged,
    #[error("the requestState belongs to another client; start the request again without it")]
    OtherPrincipal,
}

/// What the broker keeps inside its own `requestState`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapped {
    /// The upstream the retry goes back to.
    pub server: String,
    /// The upstream's own `requestState`, handed back to it unchanged.
    pub inner: Option<String>,
}

/// Wraps an upstream's state: base64url(JSON) "." base64url(HMAC-SHA256 over it).
pub fn wrap(key: &[u8], principal: &str, wrapped: &Wrapped) -> String {
    let body = json!({"s": wrapped.server, "i": wrapped.inner, "p": principal}).to_string();
    let body = URL_SAFE_NO_PAD.encode(body);
    let tag = URL_SAFE_NO_PAD.encode(mac(key, body.as_bytes()));
    format!("{body}.{tag}")
}

/// Checks and opens a state made by [`wrap`] for `principal`.
pub fn unwrap(key: &[u8], principal: &str, state: &str) -> Result<Wrapped, StateError> {
    let (body, tag) = state.split_once('.').ok_or(StateError::Forged)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| StateError::Forged)?;
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| StateError::Forged)?;
    m.update(body.as_bytes());
    m.verify_slice(&tag).map_err(|_| StateError::Forged)?;
    let json = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| StateError::Forged)?;
    let v: Value = serde_json::from_slice(&json).map_err(|_| StateError::Forged)?;
    if v["p"].as_str() != Some(principal) {
        return Err(StateError::OtherPrincipal);
    }
    Ok(Wrapped {
        server: v["s"].as_str().ok_or(StateError::Forged)?.to_string(),
        inner: v["i"].as_str().map(str::to_string),
    })
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_state_opens_for_its_principal_only_and_not_when_changed() {
        let w = Wrapped {
            server: "github".into(),
            inner: Some("opaque-1".into()),
        };
        let s = wrap(b"k", "client-a", &w);
        assert_eq!(unwrap(b"k", "client-a", &s), Ok(w));
        assert_eq!(
            unwrap(b"k", "client-b", &s),
            Err(StateError::OtherPrincipal)
        );
        assert_eq!(unwrap(b"other", "client-a", &s), Err(StateError::Forged));
        let mut tampered = s.clone();
        tampered.insert(0, 'x');
        assert_eq!(unwrap(b"k", "client-a", &tampered), Err(StateError::Forged));
        assert_eq!(unwrap(b"k", "client-a", "no-dot"), Err(StateError::Forged));
    }

    #[test]
    fn a_retry_gives_up_its_responses_and_state() {
        let mut p = json!({"name": "t", "inputResponses": {"a": {"action": "accept"}}, "requestState": "s"});
        let (r, s) = take_retry(&mut p);
        assert_eq!(r.unwrap()["a"]["action"], "accept");
        assert_eq!(s.as_deref(), Some("s"));
        assert_eq!(p, json!({"name": "t"}));
    }

    #[test]
    fn a_retry_echoes_the_exact_state_and_only_when_there_was_one() {
        let original = json!({"name": "t", "arguments": {"a": 1},
            "inputResponses": {"old": {}}, "requestState": "older"});
        let asked = json!({"resultType": "input_required", "requestState": " s\u{e9}\n",
            "inputRequests": {"confirm": {"method": "elicitation/create", "params": {"message": "m"}}}});
        let requests = input_requests(&asked);
        assert_eq!(requests.len(), 1);
        assert_eq!(
            (requests[0].0, requests[0].1),
            ("confirm", "elicitation/create")
        );
        assert_eq!(requests[0].2["message"], "m");
        let p = retry_params(&original, &asked, json!({"confirm": {"action": "accept"}}));
        assert_eq!(p["requestState"], " s\u{e9}\n");
        assert_eq!(
            p["inputResponses"],
            json!({"confirm": {"action": "accept"}})
        );
        assert_eq!(p["arguments"], json!({"a": 1}));
        let stateless = json!({"resultType": "input_required", "inputRequests": {}});
        let p = retry_params(&original, &stateless, json!({}));
        assert!(p.get("requestState").is_none(), "{p}");
        let state_only = json!({"resultType": "input_required", "requestState": "x"});
        let p = retry_params(&original, &state_only, json!({}));
        assert!(p.get("inputResponses").is_none(), "{p}");
        assert_eq!(p["requestState"], "x");
    }

    #[test]
    fn a_sign_in_link_is_an_input_required_url_elicitation() {
        let r = url_elicitation("signin", "Sign in", "http://127.0.0.1/x");
        assert!(is_input_required(&r));
        assert_eq!(r["inputRequests"]["signin"]["params"]["mode"], "url");
    }
}
