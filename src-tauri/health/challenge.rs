//! For interactive servers: which authorization server does the upstream's challenge point to
//! today? Learned with no credentials at all (a 401 to an anonymous `initialize`, then the PRM).

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::Value;
use url::Url;

use super::message::{chain, initialize_message};
use crate::urlcheck::check_remote_url;

/// The most read of a protected resource metadata document.
const MAX_PRM: usize = 256 * 1024;

/// The `resource_metadata` parameter of a `WWW-Authenticate: Bearer …` value, if present.
pub fn resource_metadata_param(header: &str) -> Option<String> {
    let lower = header.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("resource_metadata") {
        let start = from + found;
        from = start + "resource_metadata".len();
        let boundary = start == 0 || matches!(lower.as_bytes()[start - 1], b' ' | b',' | b'\t');
        let rest = header[from..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        if !boundary {
            continue;
        }
        let rest = rest.trim_start();
        let value = match rest.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next().unwrap_or(""),
            None => rest.split([',', ' ']).next().unwrap_or(""),
        };
        return (!value.is_empty()).then(|| value.to_string());
    }
    None
}

/// The PRM URLs to try for `server`: the challenge's, else path-inserted, then root.
pub fn prm_candidates(server: &Url, from_header: Option<&str>) -> Vec<String> {
    if let Some(h) = from_header {
        return vec![h.to_string()];
    }
    let origin = server.origin().ascii_serialization();
    let path = server.path().trim_end_matches('/');
    let mut out = vec![];
    if !path.is_empty() {
        out.push(format!(
            "{origin}/.well-known/oauth-protected-resource{path}"
        ));
    }
    out.push(format!("{origin}/.well-known/oauth-protected-resource"));
    out
}

/// True when two issuer identifiers name the same AS (a trailing slash does not matter).
pub fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// `Ok(None)`: the upstream did not challenge an anonymous request (nothing to compare).
/// `Ok(Some(list))`: the authorization servers its PRM names now.
pub async fn authorization_servers(
    http: &reqwest::Client,
    server: &Url,
    per_request: Duration,
) -> Result<Option<Vec<String>>, String> {
    let init = initialize_message();
    let response = http
        .post(server.clone())
        .header(ACCEPT, "application/json, text/event-stream")
        .header(CONTENT_TYPE, "application/json")
        .timeout(per_request)
        .body(init.to_string())
        .send()
        .await
        .map_err(|e| chain(&e))?;
    if response.status() != 401 {
        return Ok(None);
    }
    let header = response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(resource_metadata_param);
    let mut last_problem = String::from("no protected resource metadata found");
    for candidate in prm_candidates(server, header.as_deref()) {
        match fetch_prm(http, &candidate, per_request).await {
            Ok(list) => return Ok(Some(list)),
            Err(problem) => last_problem = format!("{candidate}: {problem}"),
        }
    }
    Err(last_problem)
}

async fn fetch_prm(
    http: &reqwest::Client,
    url: &str,
    per_request: Duration,
) -> Result<Vec<String>, String> {
    let url = check_remote_url(url).map_err(|p| format!("the metadata URL {p}"))?;
    let response = http
        .get(url)
        .header(ACCEPT, "application/json")
        .timeout(per_request)
        .send()
        .await
        .map_err(|e| chain(&e))?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.map_err(|e| chain(&e))?);
        if body.len() > MAX_PRM {
            return Err(format!("larger than {MAX_PRM} bytes"));
        }
    }
    let doc: Value = serde_json::from_slice(&body).map_err(|e| format!("not JSON ({e})"))?;
    let list = doc
        .get("authorization_servers")
        .and_then(Value::as_array)
        .ok_or("no authorization_servers")?;
    Ok(list
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_metadata_parameter_is_read_quoted_or_bare() {
        let h = r#"Bearer realm="x", resource_metadata="https://a.example/.well-known/oauth-protected-resource/mcp", scope="r""#;
        assert_eq!(
            resource_metadata_param(h).as_deref(),
            Some("https://a.example/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(
            resource_metadata_param("Bearer resource_metadata=https://b.example/prm, scope=x")
                .as_deref(),
            Some("https://b.example/prm")
        );
        assert_eq!(
            resource_metadata_param(r#"Bearer xresource_metadata="no""#),
            None
        );
        assert_eq!(resource_metadata_param("Bearer scope=x"), None);
    }

    #[test]
    fn prm_candidates_follow_the_discovery_order() {
        let u = Url::parse("https://mcp.example.com/public/mcp").unwrap();
        assert_eq!(
            prm_candidates(&u, None),
            vec![
                "https://mcp.example.com/.well-known/oauth-protected-resource/public/mcp",
                "https://mcp.example.com/.well-known/oauth-protected-resource"
            ]
        );
        assert_eq!(
            prm_candidates(&u, Some("https://x/prm")),
            vec!["https://x/prm"]
        );
    }

    #[test]
    fn issuers_compare_without_a_trailing_slash() {
        assert!(same_issuer("https://as.example/", "https://as.example"));
        assert!(!same_issuer("https://as.example/a", "https://as.example/b"));
    }
}
