//! `protocol::client::Transport` straight to one URL, so a test can drive any fixture (or the
//! broker) with the broker's own MCP client session.

use mcp_auth_broker::protocol::client::Transport;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::Method;

/// POST/GET/DELETE to `url`, with `Authorization: Bearer …` when a token is set.
#[derive(Clone)]
pub struct HttpTransport {
    pub url: String,
    pub bearer: Option<String>,
    client: reqwest::Client,
}

impl HttpTransport {
    pub fn new(url: &str) -> HttpTransport {
        HttpTransport {
            url: url.to_string(),
            bearer: None,
            client: reqwest::Client::new(),
        }
    }

    pub fn with_bearer(mut self, token: &str) -> HttpTransport {
        self.bearer = Some(token.to_string());
        self
    }
}

impl Transport for HttpTransport {
    async fn send(
        &self,
        method: Method,
        mut headers: HeaderMap,
        body: Option<String>,
    ) -> Result<reqwest::Response, String> {
        if let Some(token) = &self.bearer {
            let value =
                HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?;
            headers.insert(AUTHORIZATION, value);
        }
        let mut request = self.client.request(method, &self.url).headers(headers);
        if let Some(body) = body {
            request = request.body(body);
        }
        request.send().await.map_err(|e| e.to_string())
    }
}
