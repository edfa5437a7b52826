//! `connect NAME`: a stdio MCP bridge for clients that only launch local servers. It reads
//! newline-delimited JSON-RPC on stdin, POSTs each message to the running broker's
//! `/{NAME}/mcp`, and writes every message the broker sends (JSON answers, SSE events, the GET
//! stream) as one line on stdout. Logs go to stderr only.
//!
//! Both eras pass: a legacy client's `initialize` opens a session (its id and version go on every
//! later request, and the server's GET stream is followed); a modern (2026-07-28) client's
//! requests carry their own `_meta`, from which the bridge mirrors the HTTP headers a stdio
//! client cannot send (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, and `Mcp-Param-*` for
//! tools whose schemas it has seen listed) — no session, no GET stream.
//!
//! The bridge authenticates with an API key scoped to NAME, created through the admin API the
//! first time and kept in the OS keychain (`bridge/NAME`); no browser is involved. A key the
//! broker rejects is replaced once.

use std::borrow::Cow;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::bridgekey::Credentials;
pub use super::bridgekey::{key_name, keychain_entry};
use super::login::{reach, Reach};
use super::servers::fail;
use super::{exit, Paths};
use crate::protocol::headers::ToolSchemas;
use crate::protocol::sse::SseParser;
use crate::secret::Secret;
use crate::vault::Vault;

const SESSION: &str = "mcp-session-id";
const VERSION: &str = "mcp-protocol-version";

pub fn connect(paths: &Paths, name: &str) -> ExitCode {
    let port = match super::login::prepare(paths, name) {
        Ok(port) => port,
        Err(code) => return code,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime builds");
    rt.block_on(async {
        let (base, admin) = match reach(paths, port).await {
            Reach::Running { base, token } => (base, token),
            Reach::Unresponsive { base, cause } => return Reach::unresponsive(&base, &cause),
            Reach::NotRunning => {
                return fail(
                    exit::FAILURE,
                    format!("no broker is answering on 127.0.0.1:{port}: start the broker first (`mcp-auth-broker serve` or the app)"),
                )
            }
        };
        let store = match paths.configured_store() {
            Ok(store) => store,
            Err(e) => return fail(exit::FAILURE, e),
        };
        let creds = Credentials {
            vault: Vault::new(store),
            base: base.clone(),
            admin,
            name: name.to_string(),
        };
        match Bridge::new(&base, name, creds).await {
            Ok(bridge) => bridge.run().await,
            Err(e) => fail(exit::FAILURE, e),
        }
    })
}

struct Bridge {
    http: reqwest::Client,
    url: String,
    creds: Credentials,
    key: Secret,
    /// `Mcp-Session-Id` from the initialize answer, sent on every later request.
    session: Option<String>,
    /// `protocolVersion` from the initialize result, sent as `MCP-Protocol-Version`.
    version: Option<String>,
    /// Listed tools' schemas: a modern call mirrors their `x-mcp-header` parameters.
    schemas: Arc<ToolSchemas>,
    /// Lines for stdout; one writer task keeps messages whole.
    out: mpsc::UnboundedSender<String>,
    writer: tokio::task::JoinHandle<()>,
    /// SSE answers still streaming; finished before the session is closed.
    bodies: JoinSet<()>,
    get_stream: Option<tokio::task::JoinHandle<()>>,
}

impl Bridge {
    async fn new(base: &str, name: &str, creds: Credentials) -> Result<Bridge, String> {
        let key = creds.current().await?;
        let (out, mut rx) = mpsc::unbounded_channel::<String>();
        let writer = tokio::spawn(async move {
            let mut stdout = tokio::io::stdout();
            while let Some(line) = rx.recv().await {
                let ok = stdout.write_all(line.as_bytes()).await.is_ok()
                    && stdout.write_all(b"\n").await.is_ok()
                    && stdout.flush().await.is_ok();
                if !ok {
                    break;
                }
            }
        });
        Ok(Bridge {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| e.to_string())?,
            url: format!("{base}/{name}/mcp"),
            creds,
            key,
            session: None,
            version: None,
            schemas: Arc::default(),
            out,
            writer,
            bodies: JoinSet::new(),
            get_stream: None,
        })
    }

    async fn run(mut self) -> ExitCode {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(line)) if line.trim().is_empty() => continue,
                Ok(Some(line)) => {
                    if let Err(e) = self.forward(&line).await {
                        eprintln!("{e}");
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("error: cannot read stdin: {e}");
                    break;
                }
            }
        }
        while self.bodies.join_next().await.is_some() {}
        if let Some(task) = self.get_stream.take() {
            task.abort();
        }
        if self.session.is_some() {
            if let Err(e) = self.send(Method::DELETE, None, &[]).await {
                eprintln!("could not close the session: {e}");
            }
        }
        let Bridge { out, writer, .. } = self;
        drop(out);
        let _ = writer.await;
        ExitCode::from(exit::OK)
    }

    /// The session's headers, then `extra` (a modern message's own, which win).
    fn headers(&self, accept: &'static str, extra: &[(HeaderName, Cow<'_, str>)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_static(accept));
        let pairs = [(SESSION, &self.session), (VERSION, &self.version)];
        for (name, value) in pairs {
            if let Some(v) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                h.insert(name, v);
            }
        }
        for (name, value) in extra {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(name.clone(), v);
            }
        }
        h
    }

    /// One request with the current key; on 401 a new key is created once and the request
    /// repeated.
    async fn send(
        &mut self,
        method: Method,
        body: Option<&str>,
        extra: &[(HeaderName, Cow<'_, str>)],
    ) -> Result<Response, String> {
        for attempt in 0..2 {
            let accept = match (&method, body) {
                (&Method::GET, _) => "text/event-stream",
                _ => "application/json, text/event-stream",
            };
            let mut req = self
                .http
                .request(method.clone(), &self.url)
                .headers(self.headers(accept, extra))
                .bearer_auth(self.key.expose());
            if let Some(b) = body {
                req = req
                    .header(CONTENT_TYPE, "application/json")
                    .body(b.to_string());
            }
            let resp = req
                .send()
                .await
                .map_err(|e| format!("cannot reach the broker at {}: {e}", self.url))?;
            if resp.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(resp);
            }
            eprintln!("The broker rejected the bridge's API key; creating a new one.");
            self.key = self.creds.replace().await?;
        }
        unreachable!("the loop returns on its second attempt")
    }

    async fn forward(&mut self, line: &str) -> Result<(), String> {
        let msg: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                self.emit(json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": format!("parse error: {e}")}}));
                return Err(format!("stdin line is not JSON: {e}"));
            }
        };
        let is_initialize = msg["method"] == "initialize";
        let id = msg
            .get("id")
            .cloned()
            .filter(|_| msg.get("method").is_some());
        let extra = self.schemas.request_headers(&msg);
        let resp = match self.send(Method::POST, Some(line), &extra).await {
            Ok(r) => r,
            Err(e) => {
                self.answer_error(id, &e);
                return Err(e);
            }
        };
        self.relay(resp, is_initialize, id).await
    }

    /// Passes the broker's answer to a forwarded message on to stdout (JSON, or SSE streamed
    /// while the next lines are read); an answer that is not JSON-RPC becomes the request's error.
    async fn relay(
        &mut self,
        resp: Response,
        is_initialize: bool,
        id: Option<Value>,
    ) -> Result<(), String> {
        let status = resp.status();
        if is_initialize {
            if let Some(s) = resp.headers().get(SESSION).and_then(|v| v.to_str().ok()) {
                self.session = Some(s.to_string());
            }
        }
        let sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if status == StatusCode::ACCEPTED {
            return Ok(());
        }
        if sse && status.is_success() {
            let (out, schemas) = (self.out.clone(), self.schemas.clone());
            if is_initialize {
                // The version must be known before the next request goes out.
                let messages = pump(resp, out, &schemas).await;
                self.after_initialize(&messages);
            } else {
                self.bodies.spawn(async move {
                    pump(resp, out, &schemas).await;
                });
            }
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        match serde_json::from_str::<Value>(&text) {
            Ok(v) if v.get("jsonrpc").is_some() || v.is_array() => {
                learn(&self.schemas, &v);
                self.emit(v.clone());
                if is_initialize {
                    self.after_initialize(std::slice::from_ref(&v));
                }
                Ok(())
            }
            _ if status.is_success() => Ok(()),
            _ => {
                let e = format!("the broker answered HTTP {status}: {}", excerpt(&text));
                self.answer_error(id, &e);
                Err(e)
            }
        }
    }

    /// Takes the negotiated version and opens the server's GET stream.
    fn after_initialize(&mut self, messages: &[Value]) {
        if let Some(v) = messages
            .iter()
            .find_map(|m| m["result"]["protocolVersion"].as_str())
        {
            self.version = Some(v.to_string());
        }
        if self.session.is_some() {
            let http = self.http.clone();
            let (url, headers) = (self.url.clone(), self.headers("text/event-stream", &[]));
            let (key, out) = (self.key.clone(), self.out.clone());
            self.get_stream = Some(tokio::spawn(async move {
                let resp = http
                    .get(url)
                    .headers(headers)
                    .bearer_auth(key.expose())
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        pump(r, out, &ToolSchemas::default()).await;
                    }
                    Ok(r) if r.status() == StatusCode::METHOD_NOT_ALLOWED => {}
                    Ok(r) => eprintln!("the server's event stream answered HTTP {}", r.status()),
                    Err(e) => eprintln!("cannot open the server's event stream: {e}"),
                }
            }));
        }
    }

    fn emit(&self, message: Value) {
        let _ = self.out.send(message.to_string());
    }

    /// A request that got no JSON-RPC answer still gets one, so the client does not hang.
    fn answer_error(&self, id: Option<Value>, message: &str) {
        if let Some(id) = id {
            self.emit(
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": message}}),
            );
        }
    }
}

/// Remembers the tools a `tools/list` answer passing back lists.
fn learn(schemas: &ToolSchemas, message: &Value) {
    if let Some(tools) = message["result"]["tools"].as_array() {
        schemas.learn(tools);
    }
}

/// Forwards each SSE event's data as one stdout line; returns the JSON messages seen.
async fn pump(
    mut resp: Response,
    out: mpsc::UnboundedSender<String>,
    schemas: &ToolSchemas,
) -> Vec<Value> {
    let mut parser = SseParser::default();
    let mut seen = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        for event in parser.push(&chunk) {
            if !event.carries_message() {
                continue;
            }
            // Re-serialised so a message spread over several data lines stays one line.
            let line = match serde_json::from_str::<Value>(&event.data) {
                Ok(v) => {
                    let line = v.to_string();
                    learn(schemas, &v);
                    seen.push(v);
                    line
                }
                Err(_) => event.data.replace('\n', ""),
            };
            if out.send(line).is_err() {
                return seen;
            }
        }
    }
    seen
}

fn excerpt(text: &str) -> String {
    text.chars().take(300).collect()
}
