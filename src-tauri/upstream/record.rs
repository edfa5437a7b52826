//! What the broker keeps per server about its authorization server, in
//! `data_dir/upstream/{server}.json` (nothing secret): the endpoints the last sign-in used, the
//! client it presented, the dynamic registrations per issuer, the client authentication the token
//! endpoint accepted ([`clientauth`](super::clientauth)), and whether a dynamic registration was
//! just refused (so a refusal re-registers once, never in a loop).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::clientauth::Accepted;
use super::registration::{Method, Registration};

/// The AS endpoints a sign-in used; refresh and revocation need them without re-discovery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    pub issuer: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: String,
    pub revocation_endpoint: Option<String>,
    pub iss_supported: bool,
    /// RFC 8707 `resource` sent with every request (`None` when the server opts out).
    pub resource: Option<String>,
    #[serde(default)]
    pub auth_methods: Option<Vec<String>>,
    /// The sign-in's tokens are DPoP-bound (`dpop::wanted` when it started): its code exchange,
    /// device polling and refreshes carry proofs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dpop: bool,
}

/// Everything non-secret kept per server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub endpoints: Option<Endpoints>,
    /// The client the current sign-in used.
    pub registration: Option<Registration>,
    /// Dynamic registrations, one per issuer, for a server that moves between authorization
    /// servers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registrations: Vec<Registration>,
    /// The client authentication the token endpoint last accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_auth: Option<Accepted>,
    /// A dynamic registration was refused (`invalid_client`) and dropped, and no token request
    /// has worked since: a second refusal is not answered by registering again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dcr_refused: bool,
}

impl Record {
    /// The dynamic registration with `issuer` for `redirect_uri`, if one is kept.
    pub fn dcr_for(&self, issuer: &str, redirect_uri: &str) -> Option<&Registration> {
        self.registrations
            .iter()
            .chain(self.registration.iter())
            .find(|r| {
                r.method == Method::Dcr && r.issuer == issuer && r.redirect_uri == redirect_uri
            })
    }

    /// Keeps `reg` as the registration with its issuer (replacing an older one there).
    pub fn keep(&mut self, reg: &Registration) {
        self.registrations.retain(|r| r.issuer != reg.issuer);
        if reg.method == Method::Dcr {
            self.registrations.push(reg.clone());
        }
    }
}

fn record_path(data_dir: &Path, server: &str) -> PathBuf {
    data_dir.join("upstream").join(format!("{server}.json"))
}

pub fn load_record(data_dir: &Path, server: &str) -> Record {
    std::fs::read(record_path(data_dir, server))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Written atomically and owner-only (`fsutil::write_private`).
pub fn save_record(data_dir: &Path, server: &str, record: &Record) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(record).expect("record serialises");
    crate::fsutil::write_private(&record_path(data_dir, server), &bytes)
}

/// What a refusal (`invalid_client`) of a dynamic registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Dropped: the next sign-in registers anew (the AS may have forgotten the client).
    Forgotten,
    /// Refused right after a fresh registration: kept, since registering again would not help.
    Again,
    /// Not a dynamic registration: nothing to drop.
    NotDcr,
}

/// Answers a refused dynamic registration: dropped once, kept when it was already the fresh one.
pub fn refused_dcr(data_dir: &Path, server: &str) -> Refusal {
    let mut record = load_record(data_dir, server);
    if record
        .registration
        .as_ref()
        .is_none_or(|r| r.method != Method::Dcr)
    {
        return Refusal::NotDcr;
    }
    if record.dcr_refused {
        return Refusal::Again;
    }
    if let Some(dropped) = record.registration.take() {
        record.registrations.retain(|r| r.issuer != dropped.issuer);
    }
    record.dcr_refused = true;
    let _ = save_record(data_dir, server, &record);
    Refusal::Forgotten
}

/// The words for a second refusal ([`Refusal::Again`]): what to do instead of registering again.
pub const REFUSED_AGAIN: &str = "the authorization server refused the broker's client again right after registering it anew, so registering once more would not help; if it wants another client authentication set \"token_endpoint_auth_method\" (\"client_secret_post\", \"client_secret_basic\" or \"none\"), or register an OAuth app with it and set \"client_id\" (and \"client_secret\") for this server";

pub fn remove_record(data_dir: &Path, server: &str) {
    let _ = std::fs::remove_file(record_path(data_dir, server));
}
