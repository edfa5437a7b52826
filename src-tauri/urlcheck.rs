//! URL validation applied before anything is fetched or opened (the CVE-2025-6514 class).
//!
//! Architecture Invariant: every URL that reaches `reqwest` or the browser opener has passed
//! [`check_remote_url`] (or [`check_browser_url`]) first and is re-serialised from the parsed form.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
    #[error("points at {0}, which the broker never contacts (the cloud-metadata class of request forgery)")]
    ForbiddenAddress(&'static str),
    #[error("uses plain http; only https is allowed here")]
    NotHttps,
    #[error(
        "points at this computer (loopback), which a web page must never make the broker fetch"
    )]
    ThisComputer,
}

/// Cloud metadata services outside the link-local ranges: Alibaba Cloud's `100.100.100.200`,
/// Oracle Cloud's `192.0.0.192`, and AWS's IPv6 endpoint `fd00:ec2::254`.
const METADATA_V4: [Ipv4Addr; 2] = [
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(192, 0, 0, 192),
];
const METADATA_V6: [Ipv6Addr; 1] = [Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)];

/// Why the broker never connects to `ip`, if it does not: link-local addresses (where cloud
/// metadata services answer), the metadata services that answer elsewhere ([`METADATA_V4`],
/// [`METADATA_V6`]), unspecified, broadcast and multicast addresses — also when an IPv6 address
/// carries one of those IPv4 addresses (IPv4-mapped, IPv4-compatible, or behind the NAT64
/// prefixes `64:ff9b::/96` and `64:ff9b:1::/48`). Private ranges stay allowed: MCP servers on a
/// company network are normal. Checked on IP-literal URLs here (the `url` crate has already
/// turned decimal, hex and octal spellings into the address) and on every DNS answer by the
/// upstream client's resolver, so a name cannot be re-pointed at one between check and connect.
pub fn forbidden_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) if METADATA_V4.contains(&v4) => Some("a cloud metadata address"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("a link-local address"),
        IpAddr::V4(v4) if v4.is_unspecified() || v4.octets()[0] == 0 => {
            Some("an unspecified address")
        }
        IpAddr::V4(v4) if v4.is_broadcast() || v4.is_multicast() => {
            Some("a broadcast or multicast address")
        }
        IpAddr::V4(_) => None,
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => forbidden_ip(IpAddr::V4(v4)),
            None if METADATA_V6.contains(&v6) => Some("a cloud metadata address"),
            None if v6.is_unicast_link_local() => Some("a link-local address"),
            None if v6.is_unspecified() => Some("an unspecified address"),
            None if v6.is_multicast() => Some("a broadcast or multicast address"),
            None => None,
        },
    }
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`, not `::1` nor `::`), or NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`), where a
/// translator on the way would connect to the IPv4 address.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let nat64 = s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0; 4] || s[2] == 1);
    let compatible = s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified();
    v6.to_ipv4_mapped().or((nat64 || compatible).then_some(low))
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
    let literal = match host {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    };
    if let Some(why) = literal.and_then(forbidden_ip) {
        return Err(UrlProblem::ForbiddenAddress(why));
    }
    if url.scheme() == "http" && !is_loopback_host(&host) {
        return Err(UrlProblem::InsecureHttp);
    }
    Ok(())
}

/// True when `ip` is this computer: loopback, also inside an IPv4-mapped, IPv4-compatible or
/// NAT64 IPv6 address.
pub fn ip_is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || embedded_v4(v6).is_some_and(|v4| v4.is_loopback()),
    }
}

/// Validates a URL that any web page can make the broker fetch (a client ID metadata document
/// named by a cross-site navigation to `/authorize`): the [`check_remote_url`] rules, https only,
/// and never this computer (loopback in any spelling, `localhost` and `*.localhost`). The client
/// that fetches it drops loopback DNS answers as well (`upstream::http::PublicResolver`).
pub fn check_public_url(text: &str) -> Result<Url, UrlProblem> {
    let url = check_remote_url(text)?;
    let this_computer = match url.host() {
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(Host::Ipv4(v4)) => ip_is_loopback(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => ip_is_loopback(IpAddr::V6(v6)),
        None => false,
    };
    if this_computer {
        return Err(UrlProblem::ThisComputer);
    }
    if url.scheme() != "https" {
        return Err(UrlProblem::NotHttps);
    }
    Ok(url)
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
    fn metadata_service_addresses_are_refused_in_any_spelling_and_private_ones_are_not() {
        for url in [
            "https://169.254.169.254/latest/meta-data",
            "https://0xa9.0xfe.0xa9.0xfe/",
            "https://2852039166/",
            "https://[::ffff:169.254.169.254]/",
            "https://[fe80::1]/",
            "https://0.0.0.0/",
            "https://224.0.0.1/",
            "https://100.100.100.200/",
            "https://0x646464c8/",
            "https://[::100.100.100.200]/",
            "https://[64:ff9b:1::a9fe:a9fe]/",
            "https://[fd00:ec2::254]/",
            "https://192.0.0.192/",
        ] {
            assert!(
                matches!(check_remote_url(url), Err(UrlProblem::ForbiddenAddress(_))),
                "{url}"
            );
        }
        for url in [
            "https://10.0.0.5/mcp",
            "https://192.168.1.2/mcp",
            "https://[fd00::1]/mcp",
            "https://[fd00:ec2::253]/mcp",
            "https://100.100.100.201/mcp",
            "https://[64:ff9b::a00:5]/mcp",
            "http://127.0.0.1:9/mcp",
            "https://metadata.example.com/",
        ] {
            assert!(check_remote_url(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn public_urls_are_https_and_never_this_computer_in_any_spelling() {
        for url in [
            "https://127.0.0.1/x",
            "https://2130706433/x",
            "https://0x7f.1/x",
            "https://[::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[64:ff9b::7f00:1]/x",
            "https://localhost/x",
            "https://LocalHost./x",
            "https://app.localhost/x",
        ] {
            assert_eq!(
                check_public_url(url),
                Err(UrlProblem::ThisComputer),
                "{url}"
            );
        }
        assert_eq!(
            check_public_url("http://127.0.0.1:9/x"),
            Err(UrlProblem::ThisComputer)
        );
        assert_eq!(
            check_public_url("http://client.example/x"),
            Err(UrlProblem::InsecureHttp)
        );
        assert!(matches!(
            check_public_url("https://169.254.169.254/x"),
            Err(UrlProblem::ForbiddenAddress(_))
        ));
        assert!(check_public_url("https://client.example/meta.json").is_ok());
        assert!(check_public_url("https://10.0.0.5/meta.json").is_ok());
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
