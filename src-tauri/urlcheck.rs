//! URL validation applied before anything is fetched or opened (the CVE-2025-6514 class).
//!
//! Architecture Invariant: every URL that reaches `reqwest` or the browser opener has passed
//! [`check_remote_url`] (or [`check_browser_url`]) first and is re-serialised from the parsed form.

use std::net::IpAddr;

use url::{Host, Url};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("is not a valid absolute URL ({0})")]
    Unparsable(String),
    #[error("uses the scheme '{0}'; only http and https are allowed")]
    Scheme(String),
    #[error("uses plain http on a non-loopback host; use https (plain http is allowed only for 127.0.0.1, ::1 and localhost)")]
    InsecureHttp,
    #[error("contains a user name or password; remove the 'user:pass@' part")]
    Userinfo,
    #[error("has no host")]
    NoHost,
    #[error("contains a fragment ('#...'); remove it")]
    Fragment,
    #[error("contains whitespace or control characters")]
    ControlChars,
}

/// True for `localhost`, `127.0.0.0/8` and `::1`.
pub fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// True when the URL's host is a loopback address or `localhost`.
pub fn url_is_loopback(url: &Url) -> bool {
    url.host().as_ref().is_some_and(is_loopback_host)
}

/// Validates a URL the broker will fetch: http(s) only, https unless loopback, no userinfo,
/// no fragment, no control characters.
pub fn check_remote_url(text: &str) -> Result<Url, UrlProblem> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlProblem::ControlChars);
    }
    let url = Url::parse(text).map_err(|e| UrlProblem::Unparsable(e.to_string()))?;
    check_parsed(&url)?;
    if url.fragment().is_some() {
        return Err(UrlProblem::Fragment);
    }
    Ok(url)
}

/// Validates a URL about to be handed to the system browser. Same rules as a fetched URL, minus
/// the fragment rule; the caller opens the re-serialised `Url`, never the original text.
pub fn check_browser_url(text: &str) -> Result<Url, UrlProblem> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UrlProblem::ControlChars);
    }
    let url = Url::parse(text).map_err(|e| UrlProblem::Unparsable(e.to_string()))?;
    check_parsed(&url)?;
    Ok(url)
}

fn check_parsed(url: &Url) -> Result<(), UrlProblem> {
    match url.scheme() {
        "https" | "http" => {}
        other => return Err(UrlProblem::Scheme(other.to_string())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlProblem::Userinfo);
    }
    let host = url.host().ok_or(UrlProblem::NoHost)?;
    if url.scheme() == "http" && !is_loopback_host(&host) {
        return Err(UrlProblem::InsecureHttp);
    }
    Ok(())
}

/// True when an IP is loopback (used by the gateway's bind check).
pub fn ip_is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls_must_be_http_or_https_and_https_off_loopback() {
        assert!(check_remote_url("https://example.com/mcp").is_ok());
        assert!(check_remote_url("http://127.0.0.1:9/mcp").is_ok());
        assert!(check_remote_url("http://localhost:9/mcp").is_ok());
        assert!(check_remote_url("http://[::1]:9/mcp").is_ok());
        assert_eq!(
            check_remote_url("http://example.com/"),
            Err(UrlProblem::InsecureHttp)
        );
        assert_eq!(
            check_remote_url("file:///etc/passwd"),
            Err(UrlProblem::Scheme("file".into()))
        );
        assert_eq!(
            check_remote_url("javascript:alert(1)"),
            Err(UrlProblem::Scheme("javascript".into()))
        );
        assert_eq!(
            check_remote_url("https://u:p@example.com/"),
            Err(UrlProblem::Userinfo)
        );
        assert_eq!(
            check_remote_url("https://example.com/#x"),
            Err(UrlProblem::Fragment)
        );
        assert_eq!(
            check_remote_url("https://example.com/a b"),
            Err(UrlProblem::ControlChars)
        );
    }

    #[test]
    fn browser_urls_with_shell_syntax_are_reserialised_or_refused() {
        // The CVE-2025-6514 payload shape: a non-http scheme is refused outright.
        assert!(check_browser_url("a:$(calc.exe)").is_err());
        let url = check_browser_url("https://auth.example.com/authorize?x=$(id)").unwrap();
        assert_eq!(url.scheme(), "https");
        assert!(!url.as_str().contains(' '));
    }
}
