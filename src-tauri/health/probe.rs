//! One probe of a Streamable HTTP upstream through the one MCP client
//! ([`crate::protocol::client::Client`]): `server/discover` (modern) or `initialize` (legacy,
//! the fallback the era detection picks), every `tools/list` page, then `close` (a legacy
//! session's `DELETE`). JSON and SSE answers both work; the era and version it learned are
//! reported with the tool count.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::Method;
use serde_json::{json, Value};
use url::Url;

use super::message::{describe, from_client_error, headers, scrub, secrets_of};
use crate::clock::unix_now;
use crate::protocol::client::{Client, Transport};
use crate::protocol::Era;
use crate::upstream::{dpop, Credential};

/// The most a probe reads of one response.
pub const MAX_BODY: usize = crate::protocol::client::MAX_ANSWER;

/// The most `tools/list` pages a probe follows.
const MAX_PAGES: usize = 50;

/// What a successful probe learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOk {
    /// Round trip of the first `tools/list` (one plain request in either era, so a modern and
    /// a legacy server compare fairly: the handshake is not in it).
    pub latency: Duration,
    pub tools: usize,
    /// The era the server speaks: modern (`server/discover`) or legacy (`initialize`).
    pub era: Era,
    pub protocol_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// 401 or 403: the credential was refused; `detail` is the upstream's own words.
    Rejected { status: u16, detail: String },
    /// DNS, connect, TLS, timeout, or a 5xx.
    Unreachable(String),
    /// Anything that does not follow the protocol.
    Protocol(String),
}

/// How the probe's requests reach the server: one fixed credential (the monitor refreshes and
/// probes again itself), one URL, the broker's pooled HTTP client, a per-request timeout.
struct FixedCredential<'a> {
    http: &'a reqwest::Client,
    url: &'a Url,
    /// The credential's headers (sensitive values).
    credential: HeaderMap,
    /// A DPoP-bound credential: each request gets its own proof (and one more try when the
    /// server asks for a nonce).
    bound: Option<&'a Credential>,
    per_request: Duration,
}

impl Transport for FixedCredential<'_> {
    fn send(
        &self,
        method: Method,
        headers: HeaderMap,
        body: Option<String>,
    ) -> impl Future<Output = Result<reqwest::Response, String>> + Send {
        // The credential first, then the protocol's own headers (which a credential never names).
        let mut all = self.credential.clone();
        all.extend(headers);
        let per_request = self.per_request;
        let (http, url) = (self.http.clone(), self.url.clone());
        let bound = self
            .bound
            .and_then(|c| Some((c.dpop.clone()?, c.bearer.clone()?)));
        let htm = method.as_str().to_string();
        let build = move |proof: Option<HeaderValue>| {
            let mut request = http
                .request(method.clone(), url.clone())
                .headers(all.clone())
                .timeout(per_request);
            if let Some(proof) = proof {
                request = request.header(dpop::DPOP, proof);
            }
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            request
        };
        let url = self.url.clone();
        async move {
            let send = |r: reqwest::RequestBuilder| async move {
                r.send().await.map_err(|e| describe(&e, per_request))
            };
            let Some((prover, token)) = bound else {
                return send(build(None)).await;
            };
            let proof = || prover.proof_header(&htm, &url, Some(&token), unix_now());
            let response = send(build(proof())).await?;
            if !prover.learn_nonce(&url, response.headers())
                || !dpop::resource_wants_nonce(response.status(), response.headers())
            {
                return Ok(response);
            }
            send(build(proof())).await
        }
    }
}

/// Runs a probe of `url` with `credential`; every request times out after `per_request`.
pub async fn probe(
    http: &reqwest::Client,
    url: &Url,
    credential: &Credential,
    per_request: Duration,
) -> Result<ProbeOk, ProbeError> {
    let secrets = secrets_of(credential);
    let transport = FixedCredential {
        http,
        url,
        credential: headers(credential)?,
        bound: credential.dpop.is_some().then_some(credential),
        per_request,
    };
    let client = Client::connect(transport, json!({}), per_request)
        .await
        .map_err(|e| from_client_error(e, &secrets))?;
    let listed = list_tools(&client, &secrets).await;
    client.close().await;
    let (tools, latency) = listed?;
    Ok(ProbeOk {
        latency,
        tools,
        era: client.era(),
        protocol_version: client.version().to_string(),
    })
}

/// Counts the tools over every `tools/list` page; also the round trip of the first page.
async fn list_tools<T: Transport>(
    client: &Client<T>,
    secrets: &[String],
) -> Result<(usize, Duration), ProbeError> {
    let mut tools = 0;
    let mut latency = None;
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map_or(json!({}), |c| json!({"cursor": c}));
        let started = Instant::now();
        let answer = client
            .request("tools/list", params, &mut |_| {})
            .await
            .map_err(|e| from_client_error(e, secrets))?;
        latency.get_or_insert_with(|| started.elapsed());
        let (count, next) = tools_page(&result_of(&answer, "tools/list", secrets)?)?;
        tools += count;
        cursor = next;
        if cursor.is_none() {
            return Ok((tools, latency.unwrap_or_default()));
        }
    }
    Err(ProbeError::Protocol(format!(
        "tools/list did not end after {MAX_PAGES} pages"
    )))
}

/// The tool count of one `tools/list` page and the next cursor.
pub(super) fn tools_page(result: &Value) -> Result<(usize, Option<String>), ProbeError> {
    let Some(list) = result.get("tools").and_then(Value::as_array) else {
        return Err(ProbeError::Protocol(
            "the tools/list result has no \"tools\" array".into(),
        ));
    };
    let next = result
        .get("nextCursor")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    Ok((list.len(), next))
}

/// The `result` of a JSON-RPC answer to `what`, or its error as a protocol error.
pub(super) fn result_of(
    message: &Value,
    what: &str,
    secrets: &[String],
) -> Result<Value, ProbeError> {
    if let Some(error) = message.get("error") {
        let code = error.get("code").map(Value::to_string).unwrap_or_default();
        let msg = error.get("message").and_then(Value::as_str).unwrap_or("");
        return Err(ProbeError::Protocol(scrub(
            format!("{what} failed with JSON-RPC error {code}: {msg}"),
            secrets,
        )));
    }
    message
        .get("result")
        .cloned()
        .filter(Value::is_object)
        .ok_or_else(|| ProbeError::Protocol(format!("the {what} response has no result object")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_counts_its_tools_and_an_empty_cursor_ends_the_list() {
        let page = json!({"tools": [{"name": "a"}, {"name": "b"}], "nextCursor": ""});
        assert_eq!(tools_page(&page).unwrap(), (2, None));
        let page = json!({"tools": [], "nextCursor": "p2"});
        assert_eq!(tools_page(&page).unwrap(), (0, Some("p2".into())));
        assert!(tools_page(&json!({})).is_err());
    }

    #[test]
    fn a_json_rpc_error_is_a_protocol_error_without_the_token() {
        let answer = json!({"id": 2, "error": {"code": -32603, "message": "bad tok-123456"}});
        let e = result_of(&answer, "tools/list", &["tok-123456".into()]).unwrap_err();
        assert_eq!(
            e,
            ProbeError::Protocol(
                "tools/list failed with JSON-RPC error -32603: bad [redacted]".into()
            )
        );
    }
}
