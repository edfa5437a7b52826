//! Redirect URIs: which may be registered, and when a requested one matches a registered one.

use url::{Host, Url};

/// At most this many redirect URIs per client.
pub const MAX_REDIRECT_URIS: usize = 10;
/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI_LEN: usize = 2000;

/// Schemes that are never a native app's private-use scheme.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "file",
    "vbscript",
    "about",
    "blob",
    "ftp",
    "ws",
    "wss",
    "filesystem",
    "view-source",
    "chrome",
    "intent",
];

fn is_loopback_literal(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Checks a redirect URI offered at registration (or in a client ID metadata document).
/// Allowed: `http` on a loopback host with any port, `https` anywhere, or a private-use scheme
/// (RFC 8252 §7.1). Never fragments, user info, or script/data/file schemes.
pub fn check_registrable(uri: &str) -> Result<Url, String> {
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err(format!(
            "a redirect URI is longer than {MAX_REDIRECT_URI_LEN} characters"
        ));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a redirect URI contains whitespace or control characters".into());
    }
    let url = Url::parse(uri).map_err(|e| format!("\"{uri}\" is not an absolute URI ({e})"))?;
    if url.fragment().is_some() {
        return Err(format!("\"{uri}\" has a fragment; redirect URIs must not"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("\"{uri}\" contains user info"));
    }
    match url.scheme() {
        "http" if is_loopback_literal(&url) => Ok(url),
        "http" => Err(format!("\"{uri}\" uses plain http off loopback; use http://127.0.0.1:PORT/…, https, or a private-use scheme")),
        "https" if url.host().is_some() => Ok(url),
        "https" => Err(format!("\"{uri}\" has no host")),
        scheme if FORBIDDEN_SCHEMES.contains(&scheme) => Err(format!("the scheme \"{scheme}\" cannot be a redirect URI")),
        _ => Ok(url),
    }
}

/// RFC 8252 §7.3 / RFC 9700 §2.1: exact string match, except that the port of a loopback
/// `http` redirect URI may differ (clients pick an ephemeral port per request).
pub fn matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(mut reg), Ok(mut req)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    if reg.scheme() != "http"
        || req.scheme() != "http"
        || !is_loopback_literal(&reg)
        || !is_loopback_literal(&req)
    {
        return false;
    }
    if reg.host_str() != req.host_str() {
        return false;
    }
    let _ = reg.set_port(None);
    let _ = req.set_port(None);
    // Compare the re-serialised forms minus the port, but also the original path/query text so
    // normalisation cannot make two different strings equal.
    reg.as_str() == req.as_str() && strip_port(registered) == strip_port(requested)
}

/// The text with its `:port` (if any) removed from the authority.
fn strip_port(uri: &str) -> String {
    let Some(rest) = uri.strip_prefix("http://") else {
        return uri.to_string();
    };
    let (authority, tail) = rest.split_at(
        rest.find('/')
            .or_else(|| rest.find('?'))
            .unwrap_or(rest.len()),
    );
    let host = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => &authority[..i],
        _ => authority,
    };
    format!("http://{host}{tail}")
}

/// The host shown on the consent page ("where your tokens will be sent").
pub fn display_host(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(url) => match url.host_str() {
            Some(h) => match url.port() {
                Some(p) => format!("{}://{h}:{p}", url.scheme()),
                None => format!("{}://{h}", url.scheme()),
            },
            None => format!("{}:", url.scheme()),
        },
        Err(_) => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ports_may_differ_but_nothing_else() {
        assert!(matches(
            "http://127.0.0.1:3000/callback",
            "http://127.0.0.1:51234/callback"
        ));
        assert!(matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:51234/callback"
        ));
        assert!(matches(
            "http://localhost:3000/cb",
            "http://localhost:4000/cb"
        ));
        assert!(matches("http://[::1]:3000/cb", "http://[::1]:4000/cb"));
        assert!(!matches(
            "http://127.0.0.1:3000/callback",
            "http://127.0.0.1:3000/callback2"
        ));
        assert!(!matches(
            "http://127.0.0.1:3000/callback",
            "http://localhost:3000/callback"
        ));
        assert!(!matches(
            "http://127.0.0.1:3000/cb?a=1",
            "http://127.0.0.1:3000/cb?a=2"
        ));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example:444/cb"
        ));
        assert!(matches(
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "cursor://anysphere.cursor-mcp/oauth/callback"
        ));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example/cb/"
        ));
    }

    #[test]
    fn registration_refuses_script_schemes_and_plain_http_off_loopback() {
        assert!(check_registrable("http://127.0.0.1:1234/cb").is_ok());
        assert!(check_registrable("http://localhost/cb").is_ok());
        assert!(check_registrable("cursor://anysphere.cursor-mcp/oauth/callback").is_ok());
        assert!(check_registrable("https://client.example/cb").is_ok());
        assert!(check_registrable("http://evil.example/cb").is_err());
        assert!(check_registrable("javascript:alert(1)").is_err());
        assert!(check_registrable("data:text/html,hi").is_err());
        assert!(check_registrable("http://127.0.0.1/cb#frag").is_err());
        assert!(check_registrable("http://u:p@127.0.0.1/cb").is_err());
    }
}
