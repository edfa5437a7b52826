//! The test MCP upstream: options, shared state and the running handle.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, watch, Semaphore};

use super::auth_server::{AsOptions, AsState, TestAs};
use super::record::{self, Recorder, Served};
use super::{legacy, mcp, modern};

/// What `/mcp` demands of a request.
#[derive(Debug, Clone)]
pub enum Requires {
    /// Anything goes.
    None,
    /// `Authorization: Bearer <token>` with a token issued by this upstream's own test AS.
    OAuth,
    /// `Authorization: Bearer <exactly this>`.
    Static(String),
    /// A header with exactly this value (API-key style), e.g. `("x-api-key", "k")`.
    Header(String, String),
}

/// How JSON-RPC responses are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Json,
    /// A `text/event-stream` with one `message` event.
    Sse,
    /// As `Sse`, with the official TypeScript SDK's priming event first (an `id`, a `retry`
    /// and empty data, which marks a point to resume from); on the HTTP+SSE transport the
    /// priming event comes before each response.
    SsePrimed,
}

/// What `/mcp` does instead of answering normally (after the auth check).
#[derive(Debug, Clone, PartialEq)]
pub enum McpFault {
    None,
    /// This HTTP status with a plain-text body.
    Status(u16),
    /// 200 with an HTML page.
    Html,
    /// 200 JSON that is not a JSON-RPC response.
    BadJsonRpc,
}

/// Which MCP era `/mcp` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamEra {
    /// 2025-03-26 … 2025-11-25 only: `initialize`, sessions, GET stream (the fixture's behaviour
    /// before 2026-07-28; every existing test runs on it).
    #[default]
    Legacy,
    /// 2026-07-28 only ([`super::modern`]): stateless, `server/discover`, header validation,
    /// MRTR, `subscriptions/listen`; `initialize` is refused (400), GET and DELETE are 405.
    Modern,
    /// Both, chosen per request as the spec's dual-era server does: a request whose `_meta`
    /// names a protocol version is served statelessly (modern); `initialize` opens a legacy
    /// session, and requests in it behave exactly as [`UpstreamEra::Legacy`].
    Dual,
}

#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    pub auth: Requires,
    /// `scope` in the 401 challenge and `scopes_supported` in the PRM (space separated).
    pub scope: Option<String>,
    pub response: ResponseMode,
    /// Defaults to [`mcp::default_tools`]; a Modern or Dual upstream left at that default lists
    /// [`modern::default_tools`] instead (adds `lookup` and `ask_user`).
    pub tools: Vec<Value>,
    /// Serve the GET SSE stream (`false`: 405).
    pub get_stream: bool,
    /// Paginate `tools/list` with this many tools per page (`None`: one page).
    pub page_size: Option<usize>,
    /// Also serve prompts, resources, resource templates and completions, marked with this
    /// label ([`super::catalog`]).
    pub catalog: Option<String>,
    /// `(tool, scope)`: calling this tool needs this scope in the bearer token; without it the
    /// answer is 403 `insufficient_scope` naming the scope (a step-up challenge).
    pub scoped_tool: Option<(String, String)>,
    pub auth_server: AsOptions,
    /// Which era `/mcp` speaks (default [`UpstreamEra::Legacy`]).
    pub era: UpstreamEra,
    /// Modern cache hints on `server/discover`, list results and `resources/read`: `ttlMs`
    /// (default 60 000) …
    pub cache_ttl_ms: u64,
    /// … and `cacheScope` (`"public"`, the default, or `"private"`).
    pub cache_scope: String,
    /// A refused request gets a bare 401 (no `WWW-Authenticate`) and no PRM is served, as
    /// LiteLLM's documented M2M mock does.
    pub bare_401: bool,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            auth: Requires::None,
            scope: Some("mcp:read".into()),
            response: ResponseMode::Json,
            tools: mcp::default_tools(),
            get_stream: true,
            page_size: None,
            catalog: None,
            scoped_tool: None,
            auth_server: AsOptions::default(),
            era: UpstreamEra::Legacy,
            cache_ttl_ms: 60_000,
            cache_scope: "public".into(),
            bare_401: false,
        }
    }
}

impl UpstreamOptions {
    /// An upstream that requires tokens from its own AS.
    pub fn oauth() -> Self {
        UpstreamOptions {
            auth: Requires::OAuth,
            ..Default::default()
        }
    }

    pub fn with_catalog(mut self, label: &str) -> Self {
        self.catalog = Some(label.to_string());
        self
    }

    pub fn with_response(mut self, mode: ResponseMode) -> Self {
        self.response = mode;
        self
    }

    pub fn with_era(mut self, era: UpstreamEra) -> Self {
        self.era = era;
        self
    }

    /// The modern cache hints (`ttlMs`, `cacheScope`) this upstream's results carry.
    pub fn with_cache(mut self, ttl_ms: u64, scope: &str) -> Self {
        self.cache_ttl_ms = ttl_ms;
        self.cache_scope = scope.to_string();
        self
    }
}

/// Counters of `/mcp` activity.
#[derive(Debug, Default)]
pub struct McpCounters {
    pub initialize: AtomicUsize,
    pub tools_list: AtomicUsize,
    pub tools_call: AtomicUsize,
    /// JSON-RPC notifications received (e.g. `notifications/initialized`).
    pub notifications: AtomicUsize,
    /// 401s sent.
    pub unauthorized: AtomicUsize,
    pub get_streams: AtomicUsize,
    /// Progress events `slow_stream` has sent.
    pub stream_events: AtomicUsize,
    /// Requests `ask_client` (and a legacy session's `ask_user`) has sent to the client.
    pub asked: AtomicUsize,
    /// Modern: `server/discover` requests answered.
    pub discover: AtomicUsize,
    /// Modern: `subscriptions/listen` streams opened.
    pub listens: AtomicUsize,
    /// Modern: `input_required` results sent (`ask_user`).
    pub input_required: AtomicUsize,
    /// Modern: requests refused with `-32020` (headers missing or not matching the body).
    pub header_mismatch: AtomicUsize,
}

pub struct UpstreamState {
    pub base: String,
    pub mcp_url: String,
    pub auth: Requires,
    pub scope: Option<String>,
    pub get_stream: bool,
    pub page_size: Option<usize>,
    pub catalog: Option<String>,
    pub scoped_tool: Option<(String, String)>,
    pub era: UpstreamEra,
    pub cache_ttl_ms: u64,
    pub cache_scope: String,
    pub bare_401: bool,
    pub counters: McpCounters,
    pub recorder: Recorder,
    pub auth_server: Arc<AsState>,
    pub(crate) authorization_server: Mutex<String>,
    pub(crate) response: Mutex<ResponseMode>,
    pub(crate) tools: Mutex<Vec<Value>>,
    pub(crate) fault: Mutex<McpFault>,
    pub(crate) sessions: Mutex<HashSet<String>>,
    /// Every JSON-RPC message POSTed to `/mcp`, in order.
    pub messages: Mutex<Vec<Value>>,
    /// Permits for `slow_stream` events: one per [`TestUpstream::release_event`].
    pub(crate) gate: Semaphore,
    /// `ask_client` requests waiting for the client's answer, by id.
    pub(crate) asks: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    /// Notifications for every open GET stream.
    pub(crate) notes: broadcast::Sender<Value>,
    /// Open legacy (HTTP+SSE) streams by session id.
    pub(crate) legacy: Mutex<HashMap<String, mpsc::Sender<Bytes>>>,
    /// How many `subscriptions/listen` streams are open now.
    pub(crate) listening: watch::Sender<usize>,
    /// Bumped by [`TestUpstream::end_listens`]: every open listen stream ends gracefully.
    pub(crate) listen_end: watch::Sender<u64>,
}

/// A running test MCP upstream with its own test AS. Dropping it stops both servers.
pub struct TestUpstream {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub url: String,
    /// `http://127.0.0.1:PORT/mcp`.
    pub mcp_url: String,
    /// `http://127.0.0.1:PORT/sse`: the same server over the older HTTP+SSE transport.
    pub sse_url: String,
    /// The AS issuer, `http://127.0.0.1:PORT2` (no trailing slash).
    pub as_url: String,
    pub state: Arc<UpstreamState>,
    pub auth_server: TestAs,
    served: Served,
}

impl TestUpstream {
    pub async fn start(options: UpstreamOptions) -> TestUpstream {
        let auth_server = TestAs::start(options.auth_server.clone()).await;
        let as_state = auth_server.state.clone();
        let mut slot = None;
        let tools = if options.era != UpstreamEra::Legacy && options.tools == mcp::default_tools() {
            modern::default_tools()
        } else {
            options.tools
        };
        let served = record::serve(|base| {
            let state = Arc::new(UpstreamState {
                mcp_url: format!("{base}/mcp"),
                base,
                auth: options.auth,
                scope: options.scope,
                get_stream: options.get_stream,
                page_size: options.page_size,
                catalog: options.catalog,
                scoped_tool: options.scoped_tool,
                era: options.era,
                cache_ttl_ms: options.cache_ttl_ms,
                cache_scope: options.cache_scope,
                bare_401: options.bare_401,
                counters: McpCounters::default(),
                recorder: Recorder::default(),
                authorization_server: Mutex::new(as_state.issuer.clone()),
                auth_server: as_state,
                response: Mutex::new(options.response),
                tools: Mutex::new(tools),
                fault: Mutex::new(McpFault::None),
                sessions: Mutex::default(),
                messages: Mutex::default(),
                gate: Semaphore::new(0),
                asks: Mutex::default(),
                notes: broadcast::channel(16).0,
                legacy: Mutex::default(),
                listening: watch::channel(0).0,
                listen_end: watch::channel(0).0,
            });
            slot = Some(state.clone());
            async move { router(state) }
        })
        .await;
        let state = slot.expect("router built");
        TestUpstream {
            url: state.base.clone(),
            mcp_url: state.mcp_url.clone(),
            sse_url: format!("{}/sse", state.base),
            as_url: auth_server.issuer.clone(),
            state,
            auth_server,
            served,
        }
    }

    /// Every request `/mcp` and the PRM routes received (not the AS's: see `auth_server.state.recorder`).
    pub fn recorder(&self) -> &Recorder {
        &self.state.recorder
    }

    pub fn counters(&self) -> &McpCounters {
        &self.state.counters
    }

    pub fn count(c: &AtomicUsize) -> usize {
        c.load(Ordering::SeqCst)
    }

    /// The test AS's shared state (counters, fault injection, `mint`, `revoke_all`).
    pub fn oauth(&self) -> &Arc<AsState> {
        &self.auth_server.state
    }

    /// Forgets every 2025 session, as a restarted server does (their requests then get 404).
    pub fn forget_sessions(&self) {
        self.state.sessions.lock().unwrap().clear();
    }

    /// Lets `slow_stream` send its next progress event.
    pub fn release_event(&self) {
        self.state.gate.add_permits(1);
    }

    /// Sends `message` on every open GET stream (e.g. an answer replayed after a dropped POST
    /// stream).
    pub fn send_on_streams(&self, message: Value) {
        let _ = self.state.notes.send(message);
    }

    /// Sends `notifications/tools/list_changed` on every open GET stream and on every open
    /// `subscriptions/listen` stream that opted in (`toolsListChanged`).
    pub fn notify_tools_changed(&self) {
        let note =
            serde_json::json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
        let _ = self.state.notes.send(note);
    }

    /// Sends `notifications/prompts/list_changed` (GET streams; listen streams that opted in).
    pub fn notify_prompts_changed(&self) {
        let note =
            serde_json::json!({"jsonrpc": "2.0", "method": "notifications/prompts/list_changed"});
        let _ = self.state.notes.send(note);
    }

    /// Sends `notifications/resources/list_changed` (GET streams; listen streams that opted in).
    pub fn notify_resources_changed(&self) {
        let note =
            serde_json::json!({"jsonrpc": "2.0", "method": "notifications/resources/list_changed"});
        let _ = self.state.notes.send(note);
    }

    /// Sends `notifications/resources/updated` for `uri` (GET streams; listen streams whose
    /// `resourceSubscriptions` name `uri`).
    pub fn notify_resource_updated(&self, uri: &str) {
        let note = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": uri}});
        let _ = self.state.notes.send(note);
    }

    /// Waits until at least `n` `subscriptions/listen` streams are open (no timeout: wrap in
    /// `tokio::time::timeout`). A stream counts from its acknowledgement until its client has
    /// gone (the body was dropped) or [`TestUpstream::end_listens`] ended it.
    pub async fn wait_listening(&self, n: usize) {
        let mut rx = self.state.listening.subscribe();
        let _ = rx.wait_for(|open| *open >= n).await;
    }

    /// How many `subscriptions/listen` streams are open now.
    pub fn listening(&self) -> usize {
        *self.state.listening.borrow()
    }

    /// Ends every open `subscriptions/listen` stream gracefully: each gets its completion
    /// result (`resultType: complete`, `_meta` subscriptionId), then closes.
    pub fn end_listens(&self) {
        self.state.listen_end.send_modify(|g| *g += 1);
    }

    pub fn set_tools(&self, tools: Vec<Value>) {
        *self.state.tools.lock().unwrap() = tools;
    }

    pub fn set_response(&self, mode: ResponseMode) {
        *self.state.response.lock().unwrap() = mode;
    }

    pub fn set_fault(&self, fault: McpFault) {
        *self.state.fault.lock().unwrap() = fault;
    }

    /// Makes the PRM name another authorization server (an "AS changed" upstream).
    pub fn set_authorization_server(&self, issuer: &str) {
        *self.state.authorization_server.lock().unwrap() = issuer.to_string();
    }

    /// Stops the MCP server (its port refuses connections); the AS keeps running.
    pub fn stop(&self) {
        self.served.stop();
    }
}

fn router(state: Arc<UpstreamState>) -> Router {
    let recorder = state.recorder.clone();
    Router::new()
        .route("/mcp", get(mcp::get).post(mcp::post).delete(mcp::delete))
        .route("/sse", get(legacy::stream))
        .route("/messages", axum::routing::post(legacy::message))
        .route("/.well-known/oauth-protected-resource/mcp", get(mcp::prm))
        .route("/.well-known/oauth-protected-resource", get(mcp::prm))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            recorder,
            record::record,
        ))
}
