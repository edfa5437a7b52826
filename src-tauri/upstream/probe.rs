//! The credential-less request that starts discovery, in the era the server speaks: its status
//! and `WWW-Authenticate` challenges.

use serde_json::{json, Value};
use url::Url;

use crate::protocol::client::read_capped;
use crate::protocol::era::{self, Detected, LEGACY_VERSIONS, MODERN_VERSION};
use crate::protocol::{envelope, headers, meta};

/// The credential-less probe whose status and challenge start discovery, following the
/// transport's era detection: a modern `server/discover` first (a stateless server answers a
/// legacy `initialize` with 400, never 401, so sign-in would never start), and the legacy
/// `initialize` only when that answer is neither a success, nor a challenge (401/403), nor a
/// modern server's JSON-RPC error. Only status and headers matter (and a refusal's body).
pub(super) async fn probe(
    client: &reqwest::Client,
    url: &Url,
) -> Result<(u16, Vec<String>), String> {
    let discover = envelope::request(
        0,
        "server/discover",
        meta::with_modern_meta(json!({}), &json!({})),
    );
    let mut modern = vec![(headers::names::PROTOCOL_VERSION, MODERN_VERSION.to_string())];
    let standard = headers::standard(&discover).into_iter();
    modern.extend(standard.map(|(n, v)| (n, v.into_owned())));
    let resp = post(client, url, &discover, &modern).await?;
    let status = resp.status().as_u16();
    let answered = (status, challenges(&resp));
    if resp.status().is_success() || status == 401 || status == 403 {
        return Ok(answered);
    }
    let body = read_capped(resp, 64 * 1024).await.unwrap_or_default();
    if era::detect(status, body.as_bytes()) != Detected::Legacy {
        return Ok(answered);
    }
    let initialize = envelope::request(
        0,
        "initialize",
        json!({
            "protocolVersion": LEGACY_VERSIONS[0],
            "capabilities": {},
            "clientInfo": meta::broker_client_info(),
        }),
    );
    let legacy = [(
        headers::names::PROTOCOL_VERSION,
        LEGACY_VERSIONS[0].to_string(),
    )];
    let resp = post(client, url, &initialize, &legacy).await?;
    Ok((resp.status().as_u16(), challenges(&resp)))
}

/// POSTs one JSON-RPC message without credentials.
async fn post(
    client: &reqwest::Client,
    url: &Url,
    message: &Value,
    headers: &[(http::HeaderName, String)],
) -> Result<reqwest::Response, String> {
    let mut request = client
        .post(url.clone())
        .header("accept", "application/json, text/event-stream")
        .json(message)
        .timeout(super::http::TIMEOUT);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request
        .send()
        .await
        .map_err(|e| super::http::describe_reqwest(&e))
}

fn challenges(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}
