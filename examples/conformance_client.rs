//! The broker's upstream side as the client under test of the official MCP conformance suite
//! (`npx @modelcontextprotocol/conformance client --command <this binary> ...`).
//!
//! Contract (set by the suite): the server URL is the last argument, the scenario name is in
//! `MCP_CONFORMANCE_SCENARIO`, scenario data (e.g. client credentials) in
//! `MCP_CONFORMANCE_CONTEXT`. This program starts a real broker (gateway on 127.0.0.1:0, so the
//! upstream callback works) over a one-server config, signs in non-interactively through a
//! replaceable opener that follows the mock AS's auto-approving redirects over HTTP, then runs
//! the MCP lifecycle (initialize, initialized, tools/list, tools/call) with the broker's
//! upstream credentials. Exit code 0 = success.

use std::sync::Arc;
use std::time::Duration;

use mcp_auth_broker::broker::{Broker, Settings};
use mcp_auth_broker::gateway;
use mcp_auth_broker::opener::Opener;
use mcp_auth_broker::upstream::{Credential, FailureKind};
use mcp_auth_broker::vault::MemoryStore;
use serde_json::{json, Value};
use url::Url;

const MAX_AUTH_ATTEMPTS: usize = 3;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conformance client: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn follow_opener() -> Opener {
    Opener::Custom(Arc::new(|url: Url| {
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let mut url = url;
            for _ in 0..10 {
                let Ok(resp) = client.get(url.clone()).send().await else {
                    return;
                };
                let next = resp
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok());
                match next {
                    Some(n) if resp.status().is_redirection() => url = n,
                    _ => return,
                }
            }
        });
    }))
}

fn server_entry(url: &str, scenario: &str, ctx: &Value) -> Value {
    let mut entry = json!({ "url": url });
    if let Some(id) = ctx["client_id"].as_str() {
        entry["client_id"] = json!(id);
    }
    if let Some(secret) = ctx["client_secret"].as_str() {
        std::env::set_var("CONFORMANCE_CLIENT_SECRET", secret);
        entry["client_secret"] = json!("os.environ/CONFORMANCE_CLIENT_SECRET");
    }
    if scenario.contains("client-credentials") {
        entry["auth_type"] = json!("oauth2");
        entry["oauth_flow"] = json!("client_credentials");
    }
    if scenario.contains("cimd") {
        entry["client_id_metadata_url"] = json!(ctx["client_id_metadata_url"]
            .as_str()
            .unwrap_or("https://conformance-test.local/client-metadata.json"));
    }
    entry
}

struct Session {
    http: reqwest::Client,
    url: String,
    session: Option<String>,
    version: String,
    next_id: u64,
}

/// The JSON-RPC message in a JSON or SSE body.
fn message_of(content_type: &str, body: &str) -> Option<Value> {
    if content_type.starts_with("text/event-stream") {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|v| v.get("result").is_some() || v.get("error").is_some())
    } else {
        serde_json::from_str(body).ok()
    }
}

impl Session {
    /// One JSON-RPC call; `Err((status, www-authenticate))` on 401/403.
    async fn send(
        &mut self,
        cred: &Credential,
        method: &str,
        params: Value,
        notify: bool,
    ) -> Result<Result<Option<Value>, (u16, String)>, String> {
        let mut body = json!({ "jsonrpc": "2.0", "method": method, "params": params });
        if !notify {
            self.next_id += 1;
            body["id"] = json!(self.next_id);
        }
        let mut req = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", &self.version)
            .json(&body);
        if let Some(b) = &cred.bearer {
            req = req.bearer_auth(b.expose());
        }
        for (name, value) in &cred.headers {
            req = req.header(name.clone(), value.expose());
        }
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        let resp = req.send().await.map_err(|e| format!("{method}: {e}"))?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            return Ok(Err((status, challenge)));
        }
        if let Some(s) = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            self.session = Some(s.to_string());
        }
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.map_err(|e| format!("{method}: {e}"))?;
        if !(200..300).contains(&status) {
            return Err(format!("{method}: HTTP {status}: {text}"));
        }
        if notify {
            return Ok(Ok(None));
        }
        let msg = message_of(&ct, &text)
            .ok_or_else(|| format!("{method}: no JSON-RPC response in {text:?}"))?;
        if let Some(e) = msg.get("error") {
            return Err(format!("{method}: JSON-RPC error {e}"));
        }
        Ok(Ok(msg.get("result").cloned()))
    }
}

async fn run() -> Result<(), String> {
    let url = std::env::args()
        .skip(1)
        .next_back()
        .ok_or("usage: conformance_client <server-url>")?;
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let ctx: Value = std::env::var("MCP_CONFORMANCE_CONTEXT")
        .ok()
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or(json!({}));
    let version =
        std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION").unwrap_or_else(|_| "2025-11-25".into());

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config_path = dir.path().join("config.json");
    let config = json!({ "mcp_servers": { "upstream": server_entry(&url, &scenario, &ctx) } });
    std::fs::write(&config_path, config.to_string()).map_err(|e| e.to_string())?;
    let listener = gateway::bind(0).await.map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let settings = Settings {
        port,
        config_path,
        data_dir: dir.path().join("data"),
        opener: follow_opener(),
    };
    let broker =
        Broker::new(settings, Arc::new(MemoryStore::default())).map_err(|e| e.to_string())?;
    let stop = broker.shutdown_token();
    tokio::spawn(gateway::serve(
        listener,
        broker.clone(),
        stop.cancelled_owned(),
    ));

    let server = broker.server("upstream").map_err(|e| e.to_string())?;
    let upstream = broker.upstream().clone();
    let opener = broker.settings().opener.clone();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| e.to_string())?;
    let mut s = Session {
        http,
        url: url.clone(),
        session: None,
        version: version.clone(),
        next_id: 0,
    };
    let mut cred = upstream.credential(&server).await.or_else(|e| {
        if e.kind() == FailureKind::NeedsSignIn {
            Ok(Credential::default())
        } else {
            Err(e.to_string())
        }
    })?;

    let init = json!({ "protocolVersion": version, "capabilities": {}, "clientInfo": { "name": "mcp-auth-broker-conformance", "version": env!("CARGO_PKG_VERSION") } });
    let calls: Vec<(&str, Value, bool)> = vec![
        ("initialize", init, false),
        ("notifications/initialized", json!({}), true),
        ("tools/list", json!({}), false),
    ];
    let mut tools = Value::Null;
    for (method, params, notify) in calls {
        let mut attempts = 0;
        loop {
            match s.send(&cred, method, params.clone(), notify).await? {
                Ok(result) => {
                    if method == "tools/list" {
                        tools = result.unwrap_or(Value::Null);
                    }
                    break;
                }
                Err((status, challenge)) => {
                    attempts += 1;
                    if attempts > MAX_AUTH_ATTEMPTS {
                        return Err(format!("{method}: still HTTP {status} after {MAX_AUTH_ATTEMPTS} authorization attempts"));
                    }
                    cred = authorize(&broker, &server, &opener, &cred, status, &challenge).await?;
                }
            }
        }
    }
    if let Some(tool) = tools["tools"].as_array().and_then(|t| t.first()) {
        let name = tool["name"].as_str().unwrap_or_default().to_string();
        let args = if name == "add_numbers" {
            json!({"a": 5, "b": 3})
        } else {
            json!({})
        };
        let mut attempts = 0;
        loop {
            match s
                .send(
                    &cred,
                    "tools/call",
                    json!({"name": name, "arguments": args}),
                    false,
                )
                .await?
            {
                Ok(_) => break,
                Err((status, challenge)) => {
                    attempts += 1;
                    if attempts > MAX_AUTH_ATTEMPTS {
                        return Err(format!("tools/call: still HTTP {status} after {MAX_AUTH_ATTEMPTS} authorization attempts"));
                    }
                    cred = authorize(&broker, &server, &opener, &cred, status, &challenge).await?;
                }
            }
        }
    }
    broker.shutdown();
    Ok(())
}

/// After a 401/403: refresh or re-fetch when the broker can, else sign in through the opener.
async fn authorize(
    broker: &Broker,
    server: &mcp_auth_broker::config::ServerConfig,
    opener: &Opener,
    cred: &Credential,
    status: u16,
    challenge: &str,
) -> Result<Credential, String> {
    let upstream = broker.upstream();
    let step_up = status == 403 && challenge.contains("insufficient_scope");
    if !step_up && cred.bearer.is_some() {
        match upstream.after_rejection(server, cred).await {
            Ok(c) => return Ok(c),
            Err(e) if e.kind() == FailureKind::NeedsSignIn => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    if cred.bearer.is_none() {
        // Client credentials need no browser.
        if let Ok(c) = upstream.credential(server).await {
            if c.bearer.is_some() {
                return Ok(c);
            }
        }
    }
    let scope = mcp_auth_broker::upstream::wwwauth::bearer_info(
        &mcp_auth_broker::upstream::wwwauth::parse([challenge]),
    )
    .and_then(|b| b.scope);
    let sign_in = upstream
        .sign_in_with_scope(server, opener, scope)
        .await
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(Duration::from_secs(20), sign_in.done).await {
        Ok(Ok(Ok(()))) => upstream.credential(server).await.map_err(|e| e.to_string()),
        Ok(Ok(Err(e))) => Err(format!("sign-in failed: {e}")),
        _ => Err("sign-in did not finish".into()),
    }
}
