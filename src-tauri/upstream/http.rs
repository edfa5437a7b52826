//! Every remote read of the upstream side: URL validation first, a timeout, a size cap, and no
//! redirect to another origin. Also the `oauth2` crate's HTTP client over our pooled `reqwest`
//! client, which records what the token endpoint actually answered so errors can say it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION};
use url::Url;

use super::dpop::Prover;
use crate::sync::lock;
use crate::urlcheck::{check_remote_url, forbidden_ip};

/// The upstream client's DNS resolver: the system's answers without the addresses the broker
/// never contacts ([`forbidden_ip`]). Filtering here, where the connection's addresses come
/// from, leaves no gap between a check and the connect for a name to be re-pointed in.
#[derive(Debug, Default)]
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
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
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
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
/// connection says why ([`describe_reqwest`]) instead of "connection failed".
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

/// Largest metadata document or token response read from an upstream.
pub const MAX_BODY: usize = 1024 * 1024;
/// Whole-request deadline for metadata and token calls.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Same-origin redirects followed for metadata reads.
const MAX_REDIRECTS: usize = 3;

/// What went wrong reading a remote URL.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("refusing to fetch {url}: the URL {problem}")]
    BadUrl { url: String, problem: String },
    #[error("{url} could not be reached: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("{url} sent more than {limit} bytes; refusing to read further")]
    TooLarge { url: String, limit: usize },
    #[error("{url} redirected to another origin ({to}); cross-origin redirects are not followed")]
    CrossOrigin { url: String, to: String },
}

/// A response read in full (within the cap).
#[derive(Debug, Clone)]
pub struct Fetched {
    pub url: Url,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Fetched {
    pub fn content_type(&self) -> String {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    }
}

/// Validates `text` as a URL the broker may fetch.
pub fn checked(text: &str) -> Result<Url, FetchError> {
    check_remote_url(text).map_err(|p| FetchError::BadUrl {
        url: text.to_string(),
        problem: p.to_string(),
    })
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

/// Reads a body up to `limit` bytes; more is an error, never a silent truncation.
pub async fn read_capped(
    url: &Url,
    resp: reqwest::Response,
    limit: usize,
) -> Result<Bytes, FetchError> {
    if resp.content_length().is_some_and(|n| n as usize > limit) {
        return Err(FetchError::TooLarge {
            url: url.to_string(),
            limit,
        });
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| FetchError::Unreachable {
            url: url.to_string(),
            cause: describe_reqwest(&e),
        })?;
        if out.len() + chunk.len() > limit {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
                limit,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// A short, secret-free description of a transport failure.
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut chain = std::iter::successors(std::error::Error::source(e), |s| s.source());
    if let Some(refused) = chain.find_map(|s| s.downcast_ref::<ForbiddenAnswer>()) {
        refused.to_string()
    } else if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        let mut text = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            text = format!("{text}: {s}");
            src = s.source();
        }
        text
    }
}

/// Sends a prepared request (already validated URL), follows same-origin redirects only for GET,
/// and reads the body within the cap.
pub async fn send(builder: reqwest::RequestBuilder, url: &Url) -> Result<Fetched, FetchError> {
    let resp = builder
        .timeout(TIMEOUT)
        .send()
        .await
        .map_err(|e| FetchError::Unreachable {
            url: url.to_string(),
            cause: describe_reqwest(&e),
        })?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = read_capped(url, resp, MAX_BODY).await?;
    Ok(Fetched {
        url: url.clone(),
        status,
        headers,
        body,
    })
}

/// GET with `Accept: application/json`, following at most a few same-origin redirects.
pub async fn get_json(client: &reqwest::Client, url: &Url) -> Result<Fetched, FetchError> {
    let mut current = url.clone();
    for _ in 0..=MAX_REDIRECTS {
        let builder = client
            .get(current.clone())
            .header("accept", "application/json");
        let fetched = send(builder, &current).await?;
        if (300..400).contains(&fetched.status) {
            if let Some(loc) = fetched.headers.get(LOCATION).and_then(|v| v.to_str().ok()) {
                let next = current.join(loc).map_err(|e| FetchError::BadUrl {
                    url: loc.to_string(),
                    problem: e.to_string(),
                })?;
                let next = checked(next.as_str())?;
                if !same_origin(&current, &next) {
                    return Err(FetchError::CrossOrigin {
                        url: current.to_string(),
                        to: next.origin().ascii_serialization(),
                    });
                }
                current = next;
                continue;
            }
        }
        return Ok(fetched);
    }
    Err(FetchError::Unreachable {
        url: url.to_string(),
        cause: "too many redirects".into(),
    })
}

/// What the token endpoint answered, kept for error messages (status, content type, body).
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub status: Option<u16>,
    pub content_type: String,
    pub body: Bytes,
}

/// `oauth2`'s async HTTP client over our pooled `reqwest::Client`: no redirects, timeout, size
/// cap, and the last answer recorded in [`OAuthHttp::answer`]. With a DPoP key, every request
/// carries a proof, and a `use_dpop_nonce` refusal is sent once more with the server's nonce.
pub struct OAuthHttp {
    client: reqwest::Client,
    last: Mutex<Answer>,
    dpop: Option<Arc<Prover>>,
}

impl OAuthHttp {
    pub fn new(client: reqwest::Client) -> OAuthHttp {
        OAuthHttp::with_dpop(client, None)
    }

    /// A client whose requests carry proofs of `dpop` (none when `None`).
    pub fn with_dpop(client: reqwest::Client, dpop: Option<Arc<Prover>>) -> OAuthHttp {
        OAuthHttp {
            client,
            last: Mutex::new(Answer::default()),
            dpop,
        }
    }

    pub fn answer(&self) -> Answer {
        lock(&self.last).clone()
    }

    async fn run(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, FetchError> {
        let url = checked(&request.uri().to_string())?;
        let (parts, body) = request.into_parts();
        let mut fetched = self.send_once(&parts, &body, &url).await?;
        if let Some(dpop) = &self.dpop {
            if dpop.learn_nonce(&url, &fetched.headers)
                && super::dpop::token_wants_nonce(fetched.status, &fetched.body)
            {
                fetched = self.send_once(&parts, &body, &url).await?;
                dpop.learn_nonce(&url, &fetched.headers);
            }
        }
        *lock(&self.last) = Answer {
            status: Some(fetched.status),
            content_type: fetched.content_type(),
            body: fetched.body.clone(),
        };
        let mut response = http::Response::builder().status(fetched.status);
        for (name, value) in fetched.headers.iter() {
            response = response.header(name, value);
        }
        response
            .body(fetched.body.to_vec())
            .map_err(|e| FetchError::Unreachable {
                url: url.to_string(),
                cause: e.to_string(),
            })
    }

    /// One request of these parts, with a fresh proof when there is a DPoP key.
    async fn send_once(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        url: &Url,
    ) -> Result<Fetched, FetchError> {
        let mut builder = self
            .client
            .request(parts.method.clone(), url.clone())
            .headers(parts.headers.clone())
            .body(body.to_vec());
        if let Some(dpop) = &self.dpop {
            let now = crate::clock::unix_now();
            if let Some(proof) = dpop.proof_header(parts.method.as_str(), url, None, now) {
                builder = builder.header(super::dpop::DPOP, proof);
            }
        }
        send(builder, url).await
    }
}

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthHttp {
    type Error = FetchError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, FetchError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.run(request))
    }
}

/// `Unreachable` naming the server and its URL (without a query, which may hold a key).
pub fn unreachable(cfg: &crate::config::ServerConfig, cause: String) -> super::UpstreamError {
    let mut url = cfg.url.clone();
    url.set_query(None);
    super::UpstreamError::Unreachable {
        server: cfg.name.to_string(),
        url: url.to_string(),
        cause,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let a = Url::parse("https://a.example/x").unwrap();
        assert!(same_origin(&a, &Url::parse("https://A.example/y").unwrap()));
        assert!(!same_origin(
            &a,
            &Url::parse("https://a.example:444/y").unwrap()
        ));
        assert!(!same_origin(
            &a,
            &Url::parse("https://b.example/x").unwrap()
        ));
    }

    #[test]
    fn bad_urls_are_refused_before_any_request() {
        assert!(matches!(
            checked("file:///etc/passwd"),
            Err(FetchError::BadUrl { .. })
        ));
        assert!(matches!(
            checked("http://169.254.169.254/latest"),
            Err(FetchError::BadUrl { .. })
        ));
    }
}
