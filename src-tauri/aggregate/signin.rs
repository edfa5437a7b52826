//! Sign-in links for URL-mode elicitation (MCP 2025-11-25): when a `/mcp` client that supports
//! it calls a tool of a server that needs sign-in, the answer is a `-32042` error carrying a link
//! to `GET /signin/{nonce}` on the gateway. Opening it starts that server's sign-in in the same
//! browser; when the sign-in completes, the client's session hears
//! `notifications/elicitation/complete`. A modern (2026-07-28) client gets the same link as an
//! `input_required` URL-mode elicitation and learns the outcome by retrying.
//!
//! A link is a capability: 256 random bits, single use, valid for [`LINK_SECS`], naming only the
//! server (no token, no client data). Bookkeeping only; time is a parameter.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::calls::Caller;
use super::session::RpcError;
use crate::config::ServerName;
use crate::protocol::{codes, mrtr, Era};
use crate::sync::lock;

/// How long a sign-in link can be opened.
pub const LINK_SECS: u64 = 600;
/// Links kept at most (the oldest go first).
const MAX_LINKS: usize = 200;
/// JSON-RPC code of `URLElicitationRequiredError`.
pub const URL_ELICITATION_REQUIRED: i64 = codes::URL_ELICITATION_REQUIRED;

/// What an opened link leads to.
#[derive(Debug, Clone)]
pub struct Link {
    pub server: ServerName,
    pub elicitation_id: String,
    /// The GET stream of the session that asked, for `notifications/elicitation/complete`.
    pub notes: broadcast::Sender<Value>,
    expires_at: u64,
}

#[derive(Debug, Default)]
pub struct Links {
    by_nonce: HashMap<String, Link>,
}

impl Links {
    /// A new link for `server`; returns `(nonce, elicitation id)`.
    pub fn issue(
        &mut self,
        server: &ServerName,
        notes: broadcast::Sender<Value>,
        now: u64,
    ) -> (String, String) {
        self.by_nonce.retain(|_, l| l.expires_at > now);
        if self.by_nonce.len() >= MAX_LINKS {
            let oldest = self
                .by_nonce
                .iter()
                .min_by_key(|(_, l)| l.expires_at)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.by_nonce.remove(&k);
            }
        }
        let nonce = crate::issuer::crypto::random_token("");
        let elicitation_id = crate::issuer::crypto::random_id();
        self.by_nonce.insert(
            nonce.clone(),
            Link {
                server: server.clone(),
                elicitation_id: elicitation_id.clone(),
                notes,
                expires_at: now + LINK_SECS,
            },
        );
        (nonce, elicitation_id)
    }

    /// The link for `nonce`, once: a used, unknown or expired nonce is `None`.
    pub fn take(&mut self, nonce: &str, now: u64) -> Option<Link> {
        self.by_nonce.remove(nonce).filter(|l| l.expires_at > now)
    }
}

/// A new link for `server` on the gateway at `base`: `(url, elicitation id)`. `notes` (the
/// session's GET stream, when the broker owns one) hears the completion.
pub fn issue_url(
    links: &Mutex<Links>,
    base: &str,
    server: &ServerName,
    notes: Option<broadcast::Sender<Value>>,
    now: u64,
) -> (String, String) {
    let notes = notes.unwrap_or_else(|| broadcast::channel(1).0);
    let (nonce, id) = lock(links).issue(server, notes, now);
    (format!("{base}/signin/{nonce}"), id)
}

/// The `-32042` error data: one URL-mode elicitation.
pub fn elicitation(url: &str, elicitation_id: &str, server: &str) -> Value {
    json!({"elicitations": [{
        "mode": "url",
        "elicitationId": elicitation_id,
        "url": url,
        "message": format!("Sign in to \"{server}\" in your browser (through MCP Auth Broker) to use its tools, then try again."),
    }]})
}

/// `notifications/elicitation/complete` for `elicitation_id`.
pub fn complete(elicitation_id: &str) -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/elicitation/complete", "params": {"elicitationId": elicitation_id}})
}

impl Caller<'_> {
    /// The answer to a call of `server`, which needs sign-in, when the client supports
    /// URL-mode elicitation: a legacy client gets a `-32042` error with a sign-in link (its
    /// session's stream hears the completion); a modern one an `input_required` result with the
    /// link, whose retry goes to the server again.
    pub(super) fn sign_in_link(
        &self,
        server: &ServerName,
        why: &str,
    ) -> Option<Result<Value, RpcError>> {
        let base = self.sign_in_base?;
        let notes = self.session.map(|s| s.notes().clone());
        let (url, id) = issue_url(
            &self.hub.links,
            base,
            server,
            notes,
            crate::clock::unix_now(),
        );
        if self.era == Era::Modern {
            let text = format!("{why}; open the sign-in link, then try again");
            let mut result = mrtr::url_elicitation(&format!("signin-{server}"), &text, &url);
            result["requestState"] = json!(self.hub.wrap(self.principal, server, None));
            return Some(Ok(result));
        }
        Some(Err(RpcError {
            code: URL_ELICITATION_REQUIRED,
            message: format!("{why}; open the sign-in link, then try again"),
            data: Some(elicitation(&url, &id, server.as_str())),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_opens_once_and_not_after_it_expires() {
        let mut links = Links::default();
        let gh = ServerName::parse("gh").unwrap();
        let notes = broadcast::channel(1).0;
        let (nonce, id) = links.issue(&gh, notes.clone(), 1_000);
        assert!(nonce.len() >= 43, "256 bits");
        let link = links.take(&nonce, 1_001).expect("first use");
        assert_eq!(
            (link.server.as_str(), link.elicitation_id.as_str()),
            ("gh", id.as_str())
        );
        assert!(links.take(&nonce, 1_002).is_none(), "single use");
        let (late, _) = links.issue(&gh, notes, 2_000);
        assert!(links.take(&late, 2_000 + LINK_SECS).is_none(), "expired");
        assert!(links.take("made-up", 2_001).is_none());
    }

    #[test]
    fn the_error_data_is_one_url_elicitation() {
        let data = elicitation("http://127.0.0.1:1/signin/n", "e1", "gh");
        let e = &data["elicitations"][0];
        assert_eq!(
            (e["mode"].as_str(), e["elicitationId"].as_str()),
            (Some("url"), Some("e1"))
        );
        assert!(e["message"].as_str().unwrap().contains("\"gh\""));
    }
}
