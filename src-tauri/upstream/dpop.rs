//! Sender-constrained upstream tokens: DPoP (RFC 9449) with server nonces.
//!
//! A server's tokens are DPoP-bound when the config says `dpop: true`, or when it leaves `dpop`
//! unset and the authorization server advertises ES256 in `dpop_signing_alg_values_supported`
//! ([`wanted`]); `dpop: false` never binds. Each such server has its own ES256 key pair
//! (`jose::EsKey`), made on first need and kept only in the token store
//! (`upstream/{server}/dpop_key`, PKCS#8 PEM), so a token bound to it survives a restart.
//!
//! Every token request of such a server (code exchange, device polling, refresh, client
//! credentials) carries a proof (`oauth::TokenCall::dpop`, sent by `http::OAuthHttp`), and every
//! request with a DPoP-bound token carries `Authorization: DPoP <token>` and a fresh proof with
//! `ath` ([`exchange::authorize`](super::exchange::authorize)), signed once per attempt. A
//! `DPoP-Nonce` in any answer is remembered per origin and put in the next proof to that origin;
//! an answer that asks for one (`use_dpop_nonce`: 400 at the token endpoint, 401 with a `DPoP`
//! challenge at the resource) is retried once with it.
//!
//! Whether a stored token is DPoP-bound is the token response's `token_type` (`DPoP`), kept as
//! `TokenMeta::dpop_jkt`: a server that answered `Bearer` to a proof gets its token sent as a
//! bearer token, as RFC 9449 §5 says.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;

use super::jose::{EsKey, ALG};
use super::{vault_err, Upstream, UpstreamError};
use crate::config::{ServerConfig, ServerName};
use crate::secret::Secret;
use crate::sync::lock;

/// The request header that carries a proof, and the response header that carries a nonce.
pub const DPOP: &str = "dpop";
pub const DPOP_NONCE: &str = "dpop-nonce";
/// The `error` of a request that needs (another) server nonce.
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";

/// Whether a server's tokens are to be DPoP-bound: the config's `dpop` when set, else whether
/// the authorization server advertises an algorithm the broker signs with (ES256).
pub fn wanted(config: Option<bool>, advertised: Option<&[String]>) -> bool {
    config.unwrap_or_else(|| advertised.is_some_and(|algs| algs.iter().any(|a| a == ALG)))
}

/// The proof's `htu`: the request URL without query and fragment (RFC 9449 §4.2).
pub fn htu(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// The proof's `ath`: base64url(SHA-256(access token)) (RFC 9449 §4.2).
pub fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// `Authorization: DPoP <token>`, marked sensitive.
pub fn authorization(token: &Secret) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("DPoP {}", token.expose())).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// A token endpoint's "send a nonce" answer: 400 with `{"error": "use_dpop_nonce"}` (§8).
pub fn token_wants_nonce(status: u16, body: &[u8]) -> bool {
    status == 400
        && serde_json::from_slice::<Value>(body)
            .is_ok_and(|v| v.get("error").and_then(Value::as_str) == Some(USE_DPOP_NONCE))
}

/// A resource's "send a nonce" answer: 401 with a `DPoP` challenge whose `error` is
/// `use_dpop_nonce` (§9).
pub fn resource_wants_nonce(status: StatusCode, headers: &HeaderMap) -> bool {
    if status != StatusCode::UNAUTHORIZED {
        return false;
    }
    let values = headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    super::wwwauth::parse(values)
        .iter()
        .any(|c| c.scheme.eq_ignore_ascii_case("dpop") && c.param("error") == Some(USE_DPOP_NONCE))
}

/// One server's DPoP key and the nonces its servers gave, per origin. `Debug` shows only the
/// key's thumbprint.
pub struct Prover {
    key: EsKey,
    /// The public JWK a proof's header carries and its RFC 7638 thumbprint, computed once.
    jwk: Value,
    jkt: String,
    nonces: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for Prover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Prover(DPoP, jkt {})", self.jkt)
    }
}

impl Prover {
    pub fn new(key: EsKey) -> Prover {
        let public = key.public_jwk();
        // The proof carries the public key alone (kty, crv, x, y).
        let jwk = json!({
            "kty": public["kty"], "crv": public["crv"], "x": public["x"], "y": public["y"],
        });
        Prover {
            jkt: key.thumbprint(),
            jwk,
            key,
            nonces: Mutex::default(),
        }
    }

    /// The key's thumbprint: what a token bound to it names in `cnf.jkt`.
    pub fn thumbprint(&self) -> &str {
        &self.jkt
    }

    /// A fresh proof for `method` `url` (`access`: the token it goes with, for `ath`), with the
    /// nonce last given by that URL's origin; `now` is unix seconds.
    pub fn proof(&self, method: &str, url: &Url, access: Option<&Secret>, now: u64) -> String {
        let jti: [u8; 16] = rand::random();
        let mut claims = json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "htm": method,
            "htu": htu(url),
            "iat": now,
        });
        if let Some(nonce) = lock(&self.nonces).get(&origin(url)) {
            claims["nonce"] = json!(nonce);
        }
        if let Some(token) = access {
            claims["ath"] = json!(ath(token.expose()));
        }
        let header = json!({"typ": "dpop+jwt", "jwk": self.jwk});
        self.key.sign(&header, &claims)
    }

    /// The proof as a header value.
    pub fn proof_header(
        &self,
        method: &str,
        url: &Url,
        access: Option<&Secret>,
        now: u64,
    ) -> Option<HeaderValue> {
        let mut v = HeaderValue::from_str(&self.proof(method, url, access, now)).ok()?;
        v.set_sensitive(true);
        Some(v)
    }

    /// Remembers the `DPoP-Nonce` an answer from `url` carries; true when it carried one (so a
    /// request refused for want of it is worth one more try: the caller's one retry). The
    /// request may have gone out before a parallel one learnt the same nonce, so "new to this
    /// prover" would not say whether the refused request had it.
    pub fn learn_nonce(&self, url: &Url, headers: &HeaderMap) -> bool {
        let Some(nonce) = headers.get(DPOP_NONCE).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let nonce = nonce.trim();
        if nonce.is_empty() {
            return false;
        }
        let mut nonces = lock(&self.nonces);
        let key = origin(url);
        if nonces.get(&key).is_none_or(|n| n != nonce) {
            nonces.insert(key, nonce.to_string());
        }
        true
    }
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn key_entry(server: &str) -> String {
    format!("upstream/{server}/dpop_key")
}

impl Upstream {
    /// The server's DPoP prover when its tokens are to be bound (`wanted`), else `None`.
    pub(super) async fn dpop_if(
        &self,
        server: &ServerName,
        wanted: bool,
    ) -> Result<Option<Arc<Prover>>, UpstreamError> {
        if !wanted {
            return Ok(None);
        }
        self.dpop_prover(server).await.map(Some)
    }

    /// Whether a sign-in of `server` binds its tokens: what was decided when it started (the
    /// record's endpoints), or what the config says when nothing is recorded.
    pub(super) fn sign_in_binds(&self, server: &ServerConfig) -> bool {
        let record =
            super::registration::load_record(&self.inner.deps.data_dir, server.name.as_str());
        match record.endpoints {
            Some(e) => e.dpop,
            None => server.dpop == Some(true),
        }
    }

    /// The server's key, read from the token store, or made and stored there on first need
    /// (once per process: later callers share it). A store that refuses the new key is an error:
    /// a token bound to a key that is not kept would be lost with the process.
    pub(super) async fn dpop_prover(
        &self,
        server: &ServerName,
    ) -> Result<Arc<Prover>, UpstreamError> {
        let state = self.state(server);
        let mut held = state.dpop.lock().await;
        if let Some(prover) = held.as_ref() {
            return Ok(prover.clone());
        }
        let vault = &self.inner.deps.vault;
        let name = server.as_str();
        let entry = key_entry(name);
        let stored = vault.get(&entry).await.map_err(vault_err(name))?;
        let key = match stored.map(|pem| EsKey::from_pem(pem.expose())) {
            Some(Ok(key)) => key,
            Some(Err(e)) => {
                tracing::warn!(server = name, error = %e, "the stored DPoP key is unreadable; a new one replaces it");
                self.new_dpop_key(server, &entry).await?
            }
            None => self.new_dpop_key(server, &entry).await?,
        };
        Ok(held.insert(Arc::new(Prover::new(key))).clone())
    }

    /// Deletes the server's DPoP key with its tokens (sign-out): nothing is bound to it any
    /// more, and the next sign-in makes a new one. Held across the delete, so no caller makes
    /// a key that the delete then removes.
    pub(super) async fn forget_dpop_key(&self, server: &ServerName) -> Result<(), UpstreamError> {
        let state = self.state(server);
        let mut held = state.dpop.lock().await;
        let name = server.as_str();
        let vault = &self.inner.deps.vault;
        let entry = key_entry(name);
        let had =
            held.take().is_some() || vault.get(&entry).await.map_err(vault_err(name))?.is_some();
        vault.delete(&entry).await.map_err(vault_err(name))?;
        if had {
            self.note(
                server,
                super::timeline::StepKind::SignOut,
                true,
                "DPoP key deleted with the tokens; the next sign-in makes a new one",
            );
        }
        Ok(())
    }

    async fn new_dpop_key(&self, server: &ServerName, entry: &str) -> Result<EsKey, UpstreamError> {
        let key = EsKey::generate();
        let vault = &self.inner.deps.vault;
        let name = server.as_str();
        vault
            .set(entry, key.to_pem())
            .await
            .map_err(vault_err(name))?;
        let detail = format!("DPoP key made (thumbprint {})", key.thumbprint());
        self.note(server, super::timeline::StepKind::Token, true, &detail);
        Ok(key)
    }
}

#[cfg(test)]
#[path = "dpop_tests.rs"]
mod tests;
