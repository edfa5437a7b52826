//! The test AS's jwt-bearer grant (RFC 7523 §2.1), as workload identity federation uses it: it
//! accepts only the workload tokens the test trusts ([`AsState::trust_workload`]) and records
//! every assertion it received ([`AsState::workload_assertions`]), so a test can tell which
//! token the broker read.

use std::collections::{HashMap, HashSet};

use super::auth_server::AsState;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[derive(Default)]
pub(crate) struct Workload {
    trusted: HashSet<String>,
    seen: Vec<String>,
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
