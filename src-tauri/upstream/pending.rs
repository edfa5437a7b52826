//! Bookkeeping of interactive sign-ins in flight (pure: `now` is a parameter). Each flow is
//! keyed by its `state`, used once, and forgotten after [`TTL`]; the callback is routed strictly
//! by `state`, with the issuer recorded before the browser was opened (RFC 9700 mix-up defence).

use std::collections::HashMap;

use tokio::sync::oneshot;
use url::Url;

use crate::config::ServerConfig;

use super::registration::ClientInfo;

/// How long a sign-in may take from opening the browser to the callback.
pub const TTL: u64 = 600;
/// Most sign-ins kept in flight at once (older ones are dropped first).
pub const MAX_IN_FLIGHT: usize = 64;

pub type Done = oneshot::Sender<Result<(), String>>;

/// One sign-in waiting for its callback.
pub struct Flow {
    pub server: ServerConfig,
    pub client: ClientInfo,
    pub verifier: oauth2::PkceCodeVerifier,
    /// The issuer recorded before redirecting (compared with `iss` on the way back).
    pub issuer: String,
    pub iss_supported: bool,
    pub token_endpoint: Url,
    pub redirect_uri: Url,
    pub resource: Option<String>,
    /// The scope asked for: what was granted when the token response names none (RFC 6749
    /// §5.1).
    pub scope: Option<String>,
    pub created_at: u64,
    pub done: Option<Done>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TakeError {
    #[error("no sign-in is waiting for this link (it was already used, or the broker restarted); start the sign-in again")]
    Unknown,
    #[error("this sign-in link expired (sign-ins must finish within 10 minutes); start the sign-in again")]
    Expired,
}

#[derive(Default)]
pub struct Pending {
    flows: HashMap<String, Flow>,
}

impl Pending {
    /// Records a flow under `state`; drops expired ones (returned, so their waiters can be told).
    pub fn insert(&mut self, state: String, flow: Flow, now: u64) -> Vec<Flow> {
        let mut dropped = self.prune(now);
        while self.flows.len() >= MAX_IN_FLIGHT {
            let oldest = self
                .flows
                .iter()
                .min_by_key(|(_, f)| f.created_at)
                .map(|(k, _)| k.clone());
            match oldest.and_then(|k| self.flows.remove(&k)) {
                Some(f) => dropped.push(f),
                None => break,
            }
        }
        self.flows.insert(state, flow);
        dropped
    }

    /// Takes the flow for `state` exactly once.
    pub fn take(&mut self, state: &str, now: u64) -> Result<Flow, TakeError> {
        let flow = self.flows.remove(state).ok_or(TakeError::Unknown)?;
        if now >= flow.created_at + TTL {
            return Err(TakeError::Expired);
        }
        Ok(flow)
    }

    /// Whether a flow waits under `state` (without taking it), and whether its authorization
    /// server promised `iss` (a pasted bare code cannot carry one).
    pub fn peek(&self, state: &str, now: u64) -> Result<bool, TakeError> {
        let flow = self.flows.get(state).ok_or(TakeError::Unknown)?;
        if now >= flow.created_at + TTL {
            return Err(TakeError::Expired);
        }
        Ok(flow.iss_supported)
    }

    /// Removes and returns flows older than [`TTL`].
    pub fn prune(&mut self, now: u64) -> Vec<Flow> {
        let expired: Vec<String> = self
            .flows
            .iter()
            .filter(|(_, f)| now >= f.created_at + TTL)
            .map(|(k, _)| k.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|k| self.flows.remove(&k))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
}

/// RFC 9207 §2.4: `iss` present → must equal the recorded issuer, character for character when
/// the AS's metadata advertises the parameter (its issuer was checked against its own
/// spelling; `https://as/` for `https://as` is refused); otherwise a root issuer may differ by
/// its slash (an issuer named only by protected resource metadata). Absent → acceptable only
/// when the AS does not advertise `authorization_response_iss_parameter_supported`.
pub fn check_iss(expected: &str, advertised: bool, got: Option<&str>) -> Result<(), String> {
    let same =
        |i: &str| i == expected || (!advertised && super::discovery::same_issuer(i, expected));
    match got {
        Some(i) if same(i) => Ok(()),
        Some(i) => Err(format!(
            "the authorization response names the issuer \"{}\" but this sign-in was started with \"{expected}\"; the response was discarded (possible mix-up attack)",
            i.chars().filter(|c| !c.is_control()).take(200).collect::<String>()
        )),
        None if advertised => Err(format!("the authorization server \"{expected}\" promises an iss parameter (RFC 9207) but the response had none; the response was discarded")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{validate, RawConfig};
    use crate::upstream::registration::ClientAuth;

    fn flow(created_at: u64) -> Flow {
        let raw: RawConfig = serde_json::from_value(
            serde_json::json!({"mcp_servers": {"s": {"url": "https://mcp.example.com/mcp"}}}),
        )
        .unwrap();
        let server = validate(&raw)
            .unwrap()
            .config
            .servers
            .into_values()
            .next()
            .unwrap();
        Flow {
            server,
            client: ClientInfo {
                client_id: "c".into(),
                secret: None,
                auth: ClientAuth::None,
                fallback: None,
                key: None,
            },
            verifier: oauth2::PkceCodeVerifier::new("v".repeat(43)),
            issuer: "https://as".into(),
            iss_supported: false,
            token_endpoint: Url::parse("https://as/token").unwrap(),
            redirect_uri: Url::parse("http://127.0.0.1:1/oauth/callback").unwrap(),
            resource: None,
            scope: None,
            created_at,
            done: None,
        }
    }

    #[test]
    fn state_is_single_use() {
        let mut p = Pending::default();
        p.insert("s1".into(), flow(100), 100);
        assert!(p.take("s1", 101).is_ok());
        assert_eq!(p.take("s1", 102).err(), Some(TakeError::Unknown));
        assert_eq!(p.take("other", 102).err(), Some(TakeError::Unknown));
    }

    #[test]
    fn state_expires_after_the_ttl() {
        let mut p = Pending::default();
        p.insert("s1".into(), flow(100), 100);
        assert_eq!(p.take("s1", 100 + TTL).err(), Some(TakeError::Expired));
        p.insert("s2".into(), flow(100), 100);
        let dropped = p.insert("s3".into(), flow(200 + TTL), 200 + TTL);
        assert_eq!(dropped.len(), 1);
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn in_flight_sign_ins_are_bounded() {
        let mut p = Pending::default();
        for i in 0..(MAX_IN_FLIGHT as u64 + 5) {
            p.insert(format!("s{i}"), flow(1000 + i), 1000 + i);
        }
        assert_eq!(p.len(), MAX_IN_FLIGHT);
        assert_eq!(p.take("s0", 1100).err(), Some(TakeError::Unknown));
    }

    #[test]
    fn iss_follows_rfc_9207() {
        assert!(check_iss("https://as", false, None).is_ok());
        assert!(check_iss("https://as", true, None).is_err());
        assert!(check_iss("https://as", true, Some("https://as")).is_ok());
        assert!(check_iss("https://as/", false, Some("https://as")).is_ok());
        assert!(check_iss("https://as", true, Some("https://as/")).is_err());
        assert!(check_iss("https://as/t1", true, Some("https://as/t1/")).is_err());
        assert!(check_iss("https://as", false, Some("https://evil"))
            .unwrap_err()
            .contains("mix-up"));
    }
}
