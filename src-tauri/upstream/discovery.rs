//! Client-side discovery (MCP authorization 2025-11-25 and 2026-07-28, with the 2025-03-26
//! fallbacks): probe the server without credentials (in either era), read its challenge, find
//! its protected resource metadata (header URL → path-inserted → root) and its authorization
//! server's metadata (RFC 8414 path-inserted → OIDC path-inserted → OIDC path-appended; root
//! metadata and default endpoints for old servers).
//! Every fetched URL is validated; identity checks (RFC 8414 §3.3, RFC 9728 §3.3) are enforced.

use serde::Deserialize;
use url::Url;

use super::classify::Evidence;
use super::http::{checked, get_json, Fetched};
use super::probe::probe;
use super::wwwauth::{self, BearerInfo};

/// Protected resource metadata (RFC 9728), the fields the broker uses.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Prm {
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
}

/// Authorization server metadata (RFC 8414 / OIDC discovery), the fields the broker uses.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct AsMetadata {
    pub issuer: String,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub registration_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// RFC 8628: the server offers device sign-in (a code confirmed on any device).
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub grant_types_supported: Option<Vec<String>>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    /// RFC 9449: the server binds tokens to a DPoP key signed with one of these.
    #[serde(default)]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
}

/// Everything discovery learned about one server. Problems are kept, not thrown: the caller
/// decides whether a missing piece is fatal for what it is doing.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub server_url: Url,
    pub probe_status: Option<u16>,
    pub unreachable: Option<String>,
    pub bearer: Option<BearerInfo>,
    pub prm: Option<Prm>,
    /// The authorization server a sign-in goes to, and so the `iss` its answer must name (RFC
    /// 9207 §2.4): the one whose metadata was fetched, else the first the protected resource
    /// metadata names (an AS that publishes no metadata, like GitHub's), else the server's
    /// origin (the 2025-03-26 defaults).
    pub issuer: Option<String>,
    pub metadata: Option<AsMetadata>,
    /// No metadata anywhere: the 2025-03-26 default endpoints on the server's origin apply.
    pub legacy_defaults: bool,
    /// The RFC 8707 `resource` to send: PRM `resource` when accepted, else the server URL.
    pub resource: String,
    /// Human-readable notes about what was tried and rejected.
    pub notes: Vec<String>,
}

impl Discovery {
    pub fn evidence(&self) -> Evidence {
        Evidence {
            probe_status: self.probe_status,
            unreachable: self.unreachable.clone(),
            challenge: self.bearer.is_some(),
            prm: self.prm.is_some(),
            as_metadata: self.metadata.is_some(),
            discovered_token_url: self
                .metadata
                .as_ref()
                .is_some_and(|m| m.token_endpoint.is_some()),
            grant_types: self
                .metadata
                .as_ref()
                .and_then(|m| m.grant_types_supported.clone()),
            device_flow: self
                .metadata
                .as_ref()
                .is_some_and(|m| m.device_authorization_endpoint.is_some()),
        }
    }

    /// Scope to request: the challenge scope, else PRM `scopes_supported`, extended by the
    /// `configured` scopes (an Entra-style `offline_access` or `.default` the metadata does not
    /// list is asked for too); none when all are empty.
    pub fn scope(&self, configured: &[String]) -> Option<String> {
        let asked = self
            .bearer
            .as_ref()
            .and_then(|b| b.scope.clone())
            .or_else(|| {
                self.prm
                    .as_ref()
                    .and_then(|p| p.scopes_supported.as_ref())
                    .filter(|l| !l.is_empty())
                    .map(|l| l.join(" "))
            });
        let configured = (!configured.is_empty()).then(|| configured.join(" "));
        super::stepup::widen(asked.as_deref(), configured.as_deref())
    }
}

/// The canonical form of a resource URL: lowercase scheme/host (done by `Url`), no fragment, no
/// trailing slash on a non-root path.
pub fn canonical_resource(url: &Url) -> String {
    let mut u = url.clone();
    u.set_fragment(None);
    let s = u.to_string();
    if s.ends_with('/') && u.query().is_none() {
        s.trim_end_matches('/').to_string()
    } else {
        s
    }
}

/// RFC 9728 §3.3, as the official SDKs apply it: same origin, and the PRM `resource` path is the
/// server path or a parent of it at a segment boundary.
pub fn resource_matches(prm_resource: &str, server: &Url) -> bool {
    let Ok(r) = Url::parse(prm_resource) else {
        return false;
    };
    if r.origin() != server.origin() || r.query().is_some() || r.fragment().is_some() {
        return false;
    }
    let rp = r.path().trim_end_matches('/');
    let sp = server.path().trim_end_matches('/');
    rp.is_empty() || sp == rp || sp.starts_with(&format!("{rp}/"))
}

/// Issuer equality (RFC 8414 §3.3); a root issuer may be spelled with or without its slash.
pub fn same_issuer(a: &str, b: &str) -> bool {
    a == b
        || a.trim_end_matches('/') == b.trim_end_matches('/')
            && Url::parse(a).is_ok_and(|u| u.path() == "/")
}

/// `origin + /.well-known/{suffix} + path` (path insertion), and for a root path only the root.
fn inserted(base: &Url, suffix: &str) -> Option<Url> {
    let path = base.path().trim_end_matches('/');
    let origin = base.origin().ascii_serialization();
    Url::parse(&format!("{origin}/.well-known/{suffix}{path}")).ok()
}

/// PRM candidate URLs in the spec's order.
pub fn prm_candidates(server: &Url, header: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(h) = header {
        out.push(h.to_string());
    }
    if let Some(u) = inserted(server, "oauth-protected-resource") {
        out.push(u.to_string());
    }
    out.push(format!(
        "{}/.well-known/oauth-protected-resource",
        server.origin().ascii_serialization()
    ));
    out.dedup();
    out
}

/// AS metadata candidate URLs for `issuer`, in the spec's order.
pub fn as_candidates(issuer: &Url) -> Vec<String> {
    let origin = issuer.origin().ascii_serialization();
    let path = issuer.path().trim_end_matches('/');
    if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    }
}

fn json_of<T: serde::de::DeserializeOwned>(f: &Fetched) -> Result<T, String> {
    if f.status != 200 {
        return Err(format!("HTTP {}", f.status));
    }
    serde_json::from_slice(&f.body).map_err(|e| format!("not valid metadata JSON ({e})"))
}

/// "HTTP 503 Service Unavailable" (the number alone when it has no reason phrase).
fn shown_status(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .map(|s| format!("HTTP {s}"))
        .unwrap_or_else(|_| format!("HTTP {status}"))
}

/// Runs discovery for `server_url`. Never fails: what could not be learned is in `notes`.
pub async fn discover(client: &reqwest::Client, server_url: &Url) -> Discovery {
    let mut d = Discovery {
        server_url: server_url.clone(),
        probe_status: None,
        unreachable: None,
        bearer: None,
        prm: None,
        issuer: None,
        metadata: None,
        legacy_defaults: false,
        resource: canonical_resource(server_url),
        notes: Vec::new(),
    };
    match probe(client, server_url).await {
        Ok((status, _)) if status >= 500 => {
            // A server error says nothing about auth: the server is down, not open to all.
            d.probe_status = Some(status);
            d.unreachable = Some(format!(
                "the server answered {} to a request without credentials (a server error)",
                shown_status(status)
            ));
            return d;
        }
        Ok((status, challenges)) => {
            d.probe_status = Some(status);
            if status == 401 || status == 403 {
                d.bearer =
                    wwwauth::bearer_info(&wwwauth::parse(challenges.iter().map(String::as_str)));
            }
        }
        Err(cause) => {
            d.unreachable = Some(cause);
            return d;
        }
    }
    find_prm(client, server_url, &mut d).await;
    find_authorization_server(client, server_url, &mut d).await;
    d
}

/// The protected resource metadata: the header's URL, then the well-known ones; the first that
/// answers for this server's resource wins (its `resource` becomes the one to ask tokens for).
async fn find_prm(client: &reqwest::Client, server_url: &Url, d: &mut Discovery) {
    let header = d.bearer.as_ref().and_then(|b| b.resource_metadata.clone());
    for candidate in prm_candidates(server_url, header.as_deref()) {
        let url = match checked(&candidate) {
            Ok(u) => u,
            Err(e) => {
                d.notes.push(e.to_string());
                continue;
            }
        };
        match get_json(client, &url)
            .await
            .map_err(|e| e.to_string())
            .and_then(|f| json_of::<Prm>(&f))
        {
            Ok(prm) => {
                if let Some(r) = &prm.resource {
                    if !resource_matches(r, server_url) {
                        d.notes.push(format!("ignored the protected resource metadata at {url}: its resource \"{r}\" does not match {server_url}"));
                        continue;
                    }
                    d.resource = r.clone();
                }
                d.prm = Some(prm);
                break;
            }
            Err(why) => d
                .notes
                .push(format!("no protected resource metadata at {url}: {why}")),
        }
    }
}

/// The authorization server's metadata: the servers the resource metadata names, else the
/// server's own origin (2025-03-26 defaults when it publishes none).
async fn find_authorization_server(client: &reqwest::Client, server_url: &Url, d: &mut Discovery) {
    let issuers: Vec<String> = match &d.prm {
        Some(prm) if !prm.authorization_servers.is_empty() => prm.authorization_servers.clone(),
        _ => vec![server_url.origin().ascii_serialization()],
    };
    for issuer in &issuers {
        if let Some(meta) = fetch_as_metadata(client, issuer, &mut d.notes).await {
            d.issuer = Some(issuer.clone());
            d.metadata = Some(meta);
            break;
        }
    }
    if d.metadata.is_none() {
        if d.prm
            .as_ref()
            .is_some_and(|p| !p.authorization_servers.is_empty())
        {
            d.notes.push("none of the authorization servers named by the protected resource metadata published valid metadata".into());
            // Still the server the sign-in goes to: its `iss` names it, not the MCP server.
            d.issuer = issuers.first().cloned();
        } else {
            // 2025-03-26: without metadata the server's origin hosts /authorize, /token, /register.
            d.issuer = Some(server_url.origin().ascii_serialization());
            d.legacy_defaults = true;
        }
    }
}

/// Fetches and checks AS metadata for `issuer` in the spec's order.
pub async fn fetch_as_metadata(
    client: &reqwest::Client,
    issuer: &str,
    notes: &mut Vec<String>,
) -> Option<AsMetadata> {
    let issuer_url = match checked(issuer) {
        Ok(u) => u,
        Err(e) => {
            notes.push(e.to_string());
            return None;
        }
    };
    for candidate in as_candidates(&issuer_url) {
        let Ok(url) = checked(&candidate) else {
            continue;
        };
        match get_json(client, &url)
            .await
            .map_err(|e| e.to_string())
            .and_then(|f| json_of::<AsMetadata>(&f))
        {
            Ok(meta) if same_issuer(&meta.issuer, issuer) => return Some(meta),
            Ok(meta) => notes.push(format!(
                "ignored the metadata at {url}: its issuer \"{}\" is not \"{issuer}\"",
                meta.issuer
            )),
            Err(why) => notes.push(format!("no authorization server metadata at {url}: {why}")),
        }
    }
    None
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
