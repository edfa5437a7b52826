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
use crate::urlcheck::check_remote_url;

pub use super::cause::{describe_reqwest, Cause, CauseKind};
pub use super::dns::{GuardedResolver, PublicResolver};

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
    Unreachable { url: String, cause: Cause },
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
            cause: Cause::of(&e),
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

/// Sends a prepared request (already validated URL), follows same-origin redirects only for GET,
/// and reads the body within the cap.
pub async fn send(builder: reqwest::RequestBuilder, url: &Url) -> Result<Fetched, FetchError> {
    let resp = builder
        .timeout(TIMEOUT)
        .send()
        .await
        .map_err(|e| FetchError::Unreachable {
            url: url.to_string(),
            cause: Cause::of(&e),
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
                cause: e.to_string().into(),
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

impl FetchError {
    /// Why the request failed, with its transport kind where it was one.
    pub fn cause(&self) -> Cause {
        match self {
            FetchError::Unreachable { cause, .. } => cause.clone().map_text(|_| self.to_string()),
            other => other.to_string().into(),
        }
    }
}

/// `Unreachable` naming the server and its URL (without a query, which may hold a key).
pub fn unreachable(
    cfg: &crate::config::ServerConfig,
    cause: impl Into<Cause>,
) -> super::UpstreamError {
    let mut url = cfg.url.clone();
    url.set_query(None);
    super::UpstreamError::Unreachable {
        server: cfg.name.to_string(),
        url: url.to_string(),
        cause: cause.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
