//! The broker's upstream side as the client under test of the official MCP conformance suite
//! (`conformance client --command <this binary> ...`).
//!
//! Contract (set by the suite): the server URL is the last argument, the scenario name is in
//! `MCP_CONFORMANCE_SCENARIO`, scenario data (client credentials, tool arguments) in
//! `MCP_CONFORMANCE_CONTEXT`. This program starts a real broker (gateway on 127.0.0.1:0, so the
//! upstream callback works) over a one-server config and talks to the server exactly as the
//! broker does: the one MCP client session (`protocol::client::Client`: `server/discover`, else
//! `initialize`; `_meta`, `Mcp-*` headers, MRTR, legacy stream resumption) over the one upstream
//! exchange (`upstream::exchange::Endpoint`: credential, refresh after a 401, step-up after a
//! 403). What the broker leaves to a person is done here: when the broker says "needs sign-in",
//! this program signs in through an opener that follows the mock authorization server's
//! auto-approving redirects, and it answers a server's requests for input (a form elicitation
//! accepted with the schema's defaults, an empty root list). It then lists and calls every
//! usable tool, and reads resources and gets prompts when the server offers them.
//! Exit code 0 = every request was answered.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mcp_auth_broker::broker::{Broker, Settings};
use mcp_auth_broker::config::ServerConfig;
use mcp_auth_broker::gateway;
use mcp_auth_broker::opener::Opener;
use mcp_auth_broker::protocol::client::{Client, ClientError, Transport};
use mcp_auth_broker::protocol::headers::valid_annotations;
use mcp_auth_broker::upstream::exchange::Endpoint;
use mcp_auth_broker::upstream::FailureKind;
use mcp_auth_broker::vault::MemoryStore;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Map, Value};
use url::Url;

/// Sign-ins this client starts at most (the broker's own step-up limit normally stops first).
const MAX_SIGN_INS: usize = 3;
/// How long one request (or one sign-in) may take.
const TIMEOUT: Duration = Duration::from_secs(20);
/// Resources read and prompts fetched at most per list.
const MAX_PER_LIST: usize = 5;

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
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = json!({ "mcp_servers": { "upstream": server_entry(&url, &scenario, &ctx) } });
    if scenario.contains("enterprise") {
        config["enterprise"] = json!({"name": "Conformance IdP", "issuer": ctx["idp_issuer"], "client_id": ctx["idp_client_id"]});
    }
    let broker = start_broker(dir.path(), config).await?;
    if scenario.contains("enterprise") {
        company_session(&broker, &ctx).await?;
    }
    let server = broker.server("upstream").map_err(|e| e.to_string())?;
    let transport = SigningIn {
        endpoint: Endpoint::new(broker.upstream().clone(), server.clone()).with_timeout(TIMEOUT),
        broker: broker.clone(),
        server,
        sign_ins: AtomicUsize::new(0),
    };
    let capabilities = json!({"elicitation": {}, "roots": {}});
    let client = Client::connect(transport, capabilities, TIMEOUT)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let result = exercise(&client, &ctx).await;
    client.close().await;
    broker.shutdown();
    result
}

/// The one-server config for the scenario (pre-registered client, CIMD, client credentials).
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
    if scenario.contains("enterprise") {
        entry["auth_type"] = json!("oauth2");
        entry["oauth_flow"] = json!("enterprise");
    }
    if let Some(pem) = ctx["private_key_pem"].as_str() {
        // The scenario's own key (its AS knows only that public key), from a file as a person
        // would configure one.
        let path = std::env::temp_dir().join(format!("conformance-key-{}.pem", std::process::id()));
        if std::fs::write(&path, pem).is_ok() {
            entry["token_endpoint_auth_method"] = json!("private_key_jwt");
            entry["private_key"] = json!(path.to_string_lossy());
        }
    }
    if let Some(jwt) = ctx["valid_jwt"]
        .as_str()
        .filter(|_| scenario.contains("wif"))
    {
        std::env::set_var("CONFORMANCE_WORKLOAD_TOKEN", jwt);
        entry["auth_type"] = json!("oauth2");
        entry["oauth_flow"] = json!("jwt_bearer");
        entry["assertion_env"] = json!("CONFORMANCE_WORKLOAD_TOKEN");
    }
    if scenario.contains("cimd") {
        entry["client_id_metadata_url"] = json!(ctx["client_id_metadata_url"]
            .as_str()
            .unwrap_or("https://conformance-test.local/client-metadata.json"));
    }
    entry
}

/// The suite signed the person in at its identity provider and hands over the ID token: it
/// becomes the company sign-in, as `login --enterprise` would have kept it.
async fn company_session(broker: &Broker, ctx: &Value) -> Result<(), String> {
    use mcp_auth_broker::upstream::{enterprise, tokens};
    let id_token = ctx["idp_id_token"]
        .as_str()
        .ok_or("no idp_id_token in the context")?;
    let issuer = broker
        .config()
        .enterprise
        .clone()
        .ok_or("no enterprise block")?
        .issuer
        .clone();
    let session = tokens::Stored {
        access: mcp_auth_broker::secret::Secret::new("unused".to_string()),
        refresh: None,
        meta: tokens::TokenMeta {
            server_url: Some(issuer.to_string()),
            ..Default::default()
        },
        id_token: Some(mcp_auth_broker::secret::Secret::new(id_token.to_string())),
    };
    tokens::save(broker.vault(), enterprise::SESSION, &session)
        .await
        .map_err(|e| e.to_string())
}

/// A real broker (gateway on an ephemeral port for the sign-in callback, memory vault).
async fn start_broker(dir: &std::path::Path, config: Value) -> Result<Broker, String> {
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, config.to_string()).map_err(|e| e.to_string())?;
    let listener = gateway::bind(0).await.map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let settings = Settings {
        port,
        config_path,
        data_dir: dir.join("data"),
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
    Ok(broker)
}

/// The person at the browser: follows the authorization server's redirects to the callback.
fn follow_opener() -> Opener {
    Opener::Custom(Arc::new(|url: Url| {
        tokio::spawn(async move {
            let Ok(client) = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
            else {
                return;
            };
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

/// The broker's upstream exchange, plus what a person does when the broker says "needs
/// sign-in": sign in (the scope is the broker's choice, step-ups included), then send again.
struct SigningIn {
    endpoint: Endpoint,
    broker: Broker,
    server: ServerConfig,
    sign_ins: AtomicUsize,
}

impl SigningIn {
    async fn sign_in(&self) -> Result<(), String> {
        let upstream = self.broker.upstream();
        let opener = &self.broker.settings().opener;
        let started = upstream
            .sign_in(&self.server, opener)
            .await
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(TIMEOUT, started.done).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(format!("sign-in failed: {e}")),
            _ => Err("sign-in did not finish".into()),
        }
    }
}

impl Transport for SigningIn {
    async fn send(
        &self,
        method: Method,
        headers: HeaderMap,
        body: Option<String>,
    ) -> Result<reqwest::Response, String> {
        let body = body.map(Bytes::from);
        loop {
            match self
                .endpoint
                .exchange(method.clone(), headers.clone(), body.clone())
                .await
            {
                Ok(response) => return Ok(response),
                Err(e) if e.kind() == FailureKind::NeedsSignIn => {
                    if self.sign_ins.fetch_add(1, Ordering::SeqCst) >= MAX_SIGN_INS {
                        return Err(format!("{e} (gave up after {MAX_SIGN_INS} sign-ins)"));
                    }
                    self.sign_in().await?;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// Lists and calls every usable tool, reads resources and gets prompts the server offers.
async fn exercise<T: Transport>(client: &Client<T>, ctx: &Value) -> Result<(), String> {
    let offered = client.capabilities().clone();
    if offered.get("tools").is_some() {
        let tools = list(client, "tools/list", "tools").await?;
        for tool in tools.iter().filter(|t| usable(t)) {
            let name = tool["name"].as_str().unwrap_or_default();
            let args = arguments_for(ctx, name, &tool["inputSchema"]);
            call(
                client,
                "tools/call",
                json!({"name": name, "arguments": args}),
            )
            .await?;
        }
    }
    if offered.get("resources").is_some() {
        let resources = list(client, "resources/list", "resources").await?;
        for r in resources.iter().take(MAX_PER_LIST) {
            call(client, "resources/read", json!({"uri": r["uri"]})).await?;
        }
    }
    if offered.get("prompts").is_some() {
        let prompts = list(client, "prompts/list", "prompts").await?;
        for p in prompts.iter().take(MAX_PER_LIST) {
            let mut args = Map::new();
            for a in p["arguments"].as_array().into_iter().flatten() {
                if let (Some(n), true) = (a["name"].as_str(), a["required"] == true) {
                    args.insert(n.to_string(), json!("example"));
                }
            }
            call(
                client,
                "prompts/get",
                json!({"name": p["name"], "arguments": args}),
            )
            .await?;
        }
    }
    Ok(())
}

/// A tool whose `x-mcp-header` annotations break the rules is left out, as a client must.
fn usable(tool: &Value) -> bool {
    tool["name"].is_string() && valid_annotations(&tool["inputSchema"]).is_ok()
}

async fn list<T: Transport>(
    client: &Client<T>,
    method: &str,
    key: &str,
) -> Result<Vec<Value>, String> {
    let answer = call(client, method, json!({})).await?;
    Ok(answer["result"][key]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// One request followed to its final answer; a JSON-RPC error is reported, not fatal (the
/// server answered), an HTTP or transport failure is.
async fn call<T: Transport>(
    client: &Client<T>,
    method: &str,
    params: Value,
) -> Result<Value, String> {
    let answer = client
        .call(method, params, &respond, &mut |_| {})
        .await
        .map_err(|e: ClientError| format!("{method}: {e}"))?;
    if let Some(error) = answer.get("error") {
        eprintln!("conformance client: {method} answered with error {error}");
    }
    Ok(answer)
}

/// What this client answers to a server's requests for input.
fn respond(method: &str, params: &Value) -> Option<Value> {
    match method {
        "elicitation/create" if params["mode"] == "url" => Some(json!({"action": "decline"})),
        "elicitation/create" => Some(json!({
            "action": "accept",
            "content": fill(&params["requestedSchema"], false),
        })),
        "roots/list" => Some(json!({"roots": []})),
        _ => None,
    }
}

/// The arguments the scenario names for `tool`, else the schema filled in.
fn arguments_for(ctx: &Value, tool: &str, schema: &Value) -> Value {
    let named = ctx["toolCalls"]
        .as_array()
        .and_then(|calls| calls.iter().find(|c| c["name"] == tool))
        .map(|c| c["arguments"].clone());
    named.unwrap_or_else(|| fill(schema, true))
}

/// An object for an object schema: every property's `default`, and (with `placeholders`, or
/// when required) a value of its type for properties without one.
fn fill(schema: &Value, placeholders: bool) -> Value {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
        let value = prop.get("default").cloned().or_else(|| {
            (placeholders || required.contains(&name.as_str())).then(|| placeholder(prop))
        });
        if let Some(v) = value {
            out.insert(name.clone(), v);
        }
    }
    Value::Object(out)
}

fn placeholder(prop: &Value) -> Value {
    if let Some(first) = prop["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match prop["type"].as_str() {
        Some("integer" | "number") => json!(1),
        Some("boolean") => json!(false),
        Some("object") => fill(prop, false),
        Some("array") => json!([]),
        Some("null") => Value::Null,
        _ => json!("example"),
    }
}
