//! The upstream clients' DNS resolvers: the system's answers without the addresses the broker
//! never contacts, and a failed lookup as its own error type, so a transport failure can say
//! "the name could not be found" from the error's structure (`super::cause`), not its text.

use crate::urlcheck::forbidden_ip;

/// The system's answer for `host`; a failure is a [`LookupFailed`].
async fn lookup(host: &str) -> Result<Vec<std::net::SocketAddr>, LookupFailed> {
    match tokio::net::lookup_host((host, 0)).await {
        Ok(found) => Ok(found.collect()),
        Err(source) => Err(LookupFailed {
            host: host.to_string(),
            source,
        }),
    }
}

/// The system resolver found no address for a name (or could not ask).
#[derive(Debug, thiserror::Error)]
#[error("{host} could not be resolved: {source}")]
pub struct LookupFailed {
    pub host: String,
    #[source]
    pub source: std::io::Error,
}

/// The upstream client's DNS resolver: the system's answers without the addresses the broker
/// never contacts ([`forbidden_ip`]). Filtering here, where the connection's addresses come
/// from, leaves no gap between a check and the connect for a name to be re-pointed in.
#[derive(Debug, Default)]
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found = lookup(&host).await?;
            guard_answer(host, found)
        })
    }
}

/// [`GuardedResolver`] that also refuses this computer's own addresses (loopback): for fetches
/// any web page can cause (client ID metadata documents), which must never reach a local
/// service, whatever a name resolves to.
#[derive(Debug, Default)]
pub struct PublicResolver;

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found = lookup(&host).await?;
            public_answer(host, found)
        })
    }
}

/// The public resolver's verdict on `found`: loopback addresses dropped, then [`guard_answer`].
pub fn public_answer(
    host: String,
    found: Vec<std::net::SocketAddr>,
) -> Result<reqwest::dns::Addrs, Box<dyn std::error::Error + Send + Sync>> {
    let (local, remote): (Vec<_>, Vec<_>) = found
        .into_iter()
        .partition(|a| crate::urlcheck::ip_is_loopback(a.ip()));
    if remote.is_empty() && !local.is_empty() {
        let why = "a loopback address (this computer)";
        return Err(Box::new(ForbiddenAnswer { host, why }));
    }
    guard_answer(host, remote)
}

/// A DNS answer left with no address the broker may contact: its own error type, so a refused
/// connection says why ([`super::cause::Cause::of`]) instead of "connection failed".
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to {why}, which the broker never contacts")]
pub struct ForbiddenAnswer {
    pub host: String,
    pub why: &'static str,
}

/// The resolver's verdict on `found`, the answer for `host`.
pub fn guard_answer(
    host: String,
    found: Vec<std::net::SocketAddr>,
) -> Result<reqwest::dns::Addrs, Box<dyn std::error::Error + Send + Sync>> {
    let allowed = allowed_addrs(found).map_err(|why| ForbiddenAnswer { host, why })?;
    Ok(Box::new(allowed.into_iter()))
}

/// `found` without forbidden addresses; the reason when none is left.
pub fn allowed_addrs(
    found: Vec<std::net::SocketAddr>,
) -> Result<Vec<std::net::SocketAddr>, &'static str> {
    let why = found.iter().find_map(|a| forbidden_ip(a.ip()));
    let allowed: Vec<_> = found
        .into_iter()
        .filter(|a| forbidden_ip(a.ip()).is_none())
        .collect();
    match (allowed.is_empty(), why) {
        (true, Some(why)) => Err(why),
        (true, None) => Err("no address"),
        (false, _) => Ok(allowed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::cause::describe_reqwest;

    #[test]
    fn dns_answers_lose_forbidden_addresses_and_none_left_is_an_error() {
        let addr = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        assert_eq!(
            allowed_addrs(vec![addr("169.254.169.254:0"), addr("10.0.0.7:0")]),
            Ok(vec![addr("10.0.0.7:0")])
        );
        assert_eq!(
            allowed_addrs(vec![addr("169.254.169.254:0"), addr("[fe80::1]:0")]),
            Err("a link-local address")
        );
        assert_eq!(
            allowed_addrs(vec![addr("100.100.100.200:0"), addr("[fd00:ec2::254]:0")]),
            Err("a cloud metadata address")
        );
        assert_eq!(allowed_addrs(vec![]), Err("no address"));
    }

    /// The guarded resolver's verdict, for a name whose answer is a metadata address.
    struct MetadataAnswer;

    impl reqwest::dns::Resolve for MetadataAnswer {
        fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
            let found = vec!["169.254.169.254:0".parse().unwrap()];
            let verdict = guard_answer(name.as_str().to_string(), found);
            Box::pin(async move { verdict })
        }
    }

    #[tokio::test]
    async fn a_host_refused_for_its_dns_answer_is_reported_as_such_not_as_a_connection_failure() {
        let client = reqwest::Client::builder()
            .dns_resolver(std::sync::Arc::new(MetadataAnswer))
            .build()
            .unwrap();
        let e = client
            .get("http://rebound.example.test/")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            describe_reqwest(&e),
            "rebound.example.test resolves only to a link-local address, which the broker never contacts"
        );
    }

    #[test]
    fn the_public_resolver_drops_this_computers_addresses() {
        let addr = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        let host = || "rebound.example".to_string();
        let e = public_answer(host(), vec![addr("127.0.0.1:0"), addr("[::1]:0")]).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("rebound.example resolves only to a loopback address (this computer), which the broker never contacts")
        );
        let kept: Vec<_> = public_answer(host(), vec![addr("127.0.0.1:0"), addr("10.0.0.7:0")])
            .unwrap()
            .collect();
        assert_eq!(kept, vec![addr("10.0.0.7:0")]);
    }
}
