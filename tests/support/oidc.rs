//! `oidc-provider` with its device flow on (`tests/js/device_op.mjs`), an MCP upstream whose
//! protected resource metadata names it, and [`confirm_device`]: the person on the
//! verification pages, over HTTP (each form posted with the cookies the provider set, the
//! development login and consent pages included); [`sign_in_at`] is the person on a provider's
//! sign-in pages (the company identity provider's: [`super::company_idp`]).

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;
use tokio::process::{Child, Command};

/// A running `device_op.mjs`, killed on drop.
pub struct OidcProvider {
    /// The issuer, `http://127.0.0.1:PORT`.
    pub issuer: String,
    _child: Child,
}

impl OidcProvider {
    /// Starts the provider; device codes last `code_ttl` seconds.
    pub async fn start(code_ttl: u64) -> OidcProvider {
        let installed = super::node::js_dir().join("node_modules/oidc-provider/package.json");
        assert!(
            installed.exists(),
            "oidc-provider is not installed in tests/js/node_modules: run scripts/setup-node.sh"
        );
        let mut cmd = Command::from(super::node::node_command());
        cmd.arg("device_op.mjs")
            .args(["--code-ttl", &code_ttl.to_string()]);
        let (issuer, child) = super::jsserver::spawn_reporting(cmd, "device_op.mjs").await;
        OidcProvider {
            issuer,
            _child: child,
        }
    }
}

/// `dpop_op.mjs`: `oidc-provider` requiring DPoP-bound tokens (nonces at its token endpoint, the
/// public client `broker-dpop` registered with `dpop_bound_access_tokens`) as the authorization
/// server of an MCP upstream that takes only DPoP-bound tokens, checking each proof, its own
/// nonce and the token's binding to the proof key. Killed on drop.
pub struct DpopUpstream {
    /// The upstream's `/mcp` URL.
    pub url: String,
    _child: Child,
}

impl DpopUpstream {
    pub async fn start() -> DpopUpstream {
        let installed = super::node::js_dir().join("node_modules/oidc-provider/package.json");
        assert!(
            installed.exists(),
            "oidc-provider is not installed in tests/js/node_modules: run scripts/setup-node.sh"
        );
        let mut cmd = Command::from(super::node::node_command());
        cmd.arg("dpop_op.mjs");
        let (url, child) = super::jsserver::spawn_reporting(cmd, "dpop_op.mjs").await;
        DpopUpstream { url, _child: child }
    }

    /// What the upstream saw: `verified` requests, `nonceChallenges` sent, `refused` (why), and
    /// the key thumbprints of the verified requests (`jkts`).
    pub async fn stats(&self) -> serde_json::Value {
        let url = self.url.replace("/mcp", "/test/stats");
        reqwest::get(url).await.unwrap().json().await.unwrap()
    }

    /// Gives the upstream a new nonce: the next proof with the old one is refused once.
    pub async fn rotate_nonce(&self) {
        let url = self.url.replace("/mcp", "/test/rotate-nonce");
        let resp = reqwest::Client::new().post(url).send().await.unwrap();
        assert!(resp.status().is_success());
    }
}

/// An MCP upstream that wants a bearer token from `issuer` (401 with a `resource_metadata`
/// challenge; its PRM names `issuer`). Returns the `/mcp` URL.
pub async fn protected_upstream(issuer: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let prm_url = format!("{base}/.well-known/oauth-protected-resource/mcp");
    let challenge = format!("Bearer resource_metadata=\"{prm_url}\"");
    let prm = json!({
        "resource": format!("{base}/mcp"),
        "authorization_servers": [issuer],
        "scopes_supported": ["openid", "offline_access", "mcp:read"],
    });
    let app = axum::Router::new()
        .route(
            "/mcp",
            post(move || async move {
                (StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)]).into_response()
            }),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(move || async move { axum::Json(prm) }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("{base}/mcp")
}

/// A browser as far as the provider's pages need one: follows redirects, keeps cookies.
struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Browser {
    async fn send(&mut self, req: reqwest::RequestBuilder) -> (url::Url, String) {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let resp = req
            .header("cookie", cookie.join("; "))
            .send()
            .await
            .unwrap();
        for set in resp.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let url = resp.url().clone();
        if resp.status().is_redirection() {
            let to = url
                .join(resp.headers()["location"].to_str().unwrap())
                .unwrap();
            return Box::pin(self.send(self.http.get(to))).await;
        }
        assert!(
            resp.status().is_success(),
            "{url} answered {}",
            resp.status()
        );
        (url, resp.text().await.unwrap())
    }
}

/// The value of `attr="…"` in a tag's attribute text.
fn attr(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[at..].find('"')? + at;
    Some(tag[at..end].replace("&amp;", "&"))
}

/// The first form of a page: its action and the fields a person would send (hidden inputs as
/// they are; any login and password typed in).
fn form(page: &str) -> Option<(String, Vec<(String, String)>)> {
    let start = page.find("<form")?;
    let end = page[start..].find("</form>")? + start;
    let body = &page[start..end];
    let action = attr(&body[..body.find('>')?], "action")?;
    let mut fields = Vec::new();
    for input in body.split("<input").skip(1) {
        let tag = &input[..input.find('>').unwrap_or(input.len())];
        let Some(name) = attr(tag, "name") else {
            continue;
        };
        let value = match name.as_str() {
            "login" => "someone@example.com".to_string(),
            "password" => "any".to_string(),
            _ => attr(tag, "value").unwrap_or_default(),
        };
        fields.push((name, value));
    }
    Some((action, fields))
}

/// The person opens a sign-in `address` (the provider's authorization URL) and goes through
/// every page — sign in, consent — until the broker's callback page. Returns its text.
pub async fn sign_in_at(address: &str) -> String {
    confirm_device(address).await
}

/// The person opens `address` (a device verification address with the code filled in) and
/// goes through every page — confirm the code, sign in, consent — until one has no form.
/// Returns that last page's text.
pub async fn confirm_device(address: &str) -> String {
    let mut browser = Browser {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        cookies: HashMap::new(),
    };
    let (mut url, mut page) = browser.send(browser.http.get(address)).await;
    for _ in 0..10 {
        let Some((action, fields)) = form(&page) else {
            return page;
        };
        let to = url.join(&action).unwrap();
        (url, page) = browser.send(browser.http.post(to).form(&fields)).await;
    }
    panic!("the verification pages did not end after 10 forms; the last one:\n{page}");
}
