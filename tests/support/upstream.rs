//! The test MCP upstream: options, shared state and the running handle.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, Semaphore};

use super::auth_server::{AsOptions, AsState, TestAs};
use super::record::{self, Recorder, Served};
use super::{legacy, mcp};

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

#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    pub auth: Requires,
    /// `scope` in the 401 challenge and `scopes_supported` in the PRM (space separated).
    pub scope: Option<String>,
    pub response: ResponseMode,
    /// Defaults to [`mcp::default_tools`].
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
    /// Requests `ask_client` has sent to the client.
    pub asked: AtomicUsize,
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
                counters: McpCounters::default(),
                recorder: Recorder::default(),
                authorization_server: Mutex::new(as_state.issuer.clone()),
                auth_server: as_state,
                response: Mutex::new(options.response),
                tools: Mutex::new(options.tools),
                fault: Mutex::new(McpFault::None),
                sessions: Mutex::default(),
                messages: Mutex::default(),
                gate: Semaphore::new(0),
                asks: Mutex::default(),
                notes: broadcast::channel(16).0,
                legacy: Mutex::default(),
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

    /// Lets `slow_stream` send its next progress event.
    pub fn release_event(&self) {
        self.state.gate.add_permits(1);
    }

    /// Sends `message` on every open GET stream (e.g. an answer replayed after a dropped POST
    /// stream).
    pub fn send_on_streams(&self, message: Value) {
        let _ = self.state.notes.send(message);
    }

    /// Sends `notifications/tools/list_changed` on every open GET stream.
    pub fn notify_tools_changed(&self) {
        let note =
            serde_json::json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
        let _ = self.state.notes.send(note);
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
