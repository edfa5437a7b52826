//! Shared fixtures for the integration tests: real servers on `127.0.0.1:0`.
//!
//! Each test binary's `main.rs` declares it once (`#[path = "../support/mod.rs"] mod support;`);
//! a test file in that binary has `use crate::support;`.
//!
//! - [`TestUpstream`]: an MCP server (Streamable HTTP at `/mcp`: `initialize` with
//!   `Mcp-Session-Id` and version negotiation among [`mcp::VERSIONS`], `notifications/*` → 202,
//!   `ping`, `tools/list`, `tools/call` of `echo`/`add`/`slow_stream` (and of the unlisted `ask_client`, which sends
//!   requests to the client and returns its answers: [`streams`]), GET SSE stream or 405,
//!   DELETE; with `with_catalog(label)` also prompts, resources, templates, subscriptions and
//!   completions marked with the label), answering JSON or SSE, optionally requiring a bearer token from its own
//!   [`TestAs`] (401 with `WWW-Authenticate: Bearer resource_metadata=…, scope=…`), serving its
//!   PRM (path-inserted and root), recording every request. The same server speaks the older
//!   HTTP+SSE transport at [`TestUpstream::sse_url`] (`GET /sse`, `POST /messages`).
//!   `UpstreamOptions::default().with_era(UpstreamEra::Modern)` makes `/mcp` speak only
//!   2026-07-28 ([`modern`]: `server/discover`, header validation with `-32020`, `-32022`,
//!   404 `-32601`, results with `resultType`/`ttlMs`/`cacheScope`, the tools `lookup`
//!   (`x-mcp-header` `Region`) and `ask_user` (MRTR), `subscriptions/listen`, no sessions, GET
//!   and DELETE 405, `initialize` 400); `UpstreamEra::Dual` speaks both, per request;
//!   `with_cache(ttl_ms, scope)` sets the cache hints. [`TestUpstream::notify_tools_changed`]
//!   (and `notify_prompts_changed`, `notify_resources_changed`, `notify_resource_updated`)
//!   reach GET streams and opted-in listen streams alike; `wait_listening(n)`, `end_listens()`.
//! - [`wire`]: talking to any endpoint by hand in either era (`modern_request`, `modern_post`
//!   with the conforming headers, each overridable; `read_message`, `refusal`, `listen` /
//!   `stream_messages` / `next_message`, `legacy_session`, `legacy_post`, `legacy_ask_user`,
//!   `first_on_get_stream`).
//! - [`transport::HttpTransport`]: `protocol::client::Transport` straight to a URL (with an
//!   optional bearer), for driving any fixture with the broker's own `Client`.
//! - [`jsserver::JsServer`]: `tests/js/modern_server.mjs`, an upstream built on the official
//!   TypeScript SDK v2 server (`JsServer::dual()` / `JsServer::modern_only()`; `stop()` waits
//!   for the exit), killed on drop.
//! - [`FastMcpServer`]: `tests/py/fastmcp_server.py`, FastMCP with its own authorization server
//!   (`scripts/setup-python.sh` installs it), killed on drop.
//! - [`TestAs`]: an OAuth AS (RFC 8414 metadata, auto-approving `/authorize` with PKCE S256,
//!   `/token` for authorization_code / refresh_token (rotation) / client_credentials (basic or
//!   post), `/register`, `/revoke`), with counters, fault injection ([`TokenFault`]; `Hold`
//!   parks token requests until [`AsState::release_token`]) and `revoke_all`.
//! - [`TestBroker`]: the real broker and gateway on `127.0.0.1:0` over a config in a tempdir,
//!   with a [`Browser`] opener that follows the sign-in redirects over HTTP.
//!   `BrokerOptions { background: true, .. }` also starts the config watcher and health monitors.
//! - [`providers`]: upstreams whose AS behaves like a real provider's (`entra()`: no PKCE in
//!   the metadata, `resource` refused with AADSTS901002, `offline_access` for refresh tokens;
//!   `entra_config` the entry that works).
//! - [`health`]: waiting on the broker's status channel (`wait_status`, `wait_settled`).
//! - [`node`]: Node >= 22 and `tests/js` (run `scripts/setup-node.sh`); panics, never skips.
//! - [`device`]: the test AS's device flow (`AsOptions::device_interval`), with scripted
//!   `slow_down`, refusal and expiry; [`oidc`]: `oidc-provider` with its device flow, an MCP
//!   upstream naming it, and `confirm_device` (its verification pages driven over HTTP).
//! - [`dpop`]: DPoP proofs checked as the test AS's token endpoint and the test upstream check
//!   them (a bound token is taken only as `DPoP` with a proof of its key).
//! - [`workload`]: the test AS's jwt-bearer grant (workload identity federation): trusted
//!   workload tokens, and every assertion received.
//! - [`cli`]: the real binary against a test broker (`Cli`), and `Interactive`, a run the test
//!   reads and types into like the person at the terminal.
//!
//! Synchronise on events, never sleeps: `Recorder::wait_for(n)`, `Browser::wait_followed(n)`,
//! the status channel, `release_event` / `release_token` gates.
//!
//! ```ignore
//! use crate::support;
//! use support::*;
//!
//! #[tokio::test]
//! async fn example() {
//!     // An upstream that wants OAuth tokens; one M2M client "m2m-client"/"m2m-secret" exists.
//!     let up = TestUpstream::start(UpstreamOptions::oauth()).await;
//!     let token = up.oauth().mint("m2m-client", None); // or let the broker fetch one
//!     up.set_response(ResponseMode::Sse);
//!     up.oauth().set_fault(TokenFault::ServerError);
//!
//!     let broker = TestBroker::start(serde_json::json!({"mcp_servers": {"demo": {
//!         "url": up.mcp_url, "auth_type": "oauth2", "oauth_flow": "client_credentials",
//!         "client_id": "m2m-client", "client_secret": "os.environ/DEMO_SECRET",
//!         "token_url": up.auth_server.token_url()}}})).await;
//!
//!     assert_eq!(count(&up.counters().initialize), 0);
//!     assert_eq!(count(&up.oauth().counters.token_client_credentials), 0);
//!     let calls = up.recorder().to_path("/mcp"); // method, headers (Authorization), …
//!     # let _ = (token, broker, calls);
//! }
//! ```
//!
//! `slow_stream` sends each progress event only after [`TestUpstream::release_event`], so a
//! test can prove an event crossed the broker before the response finished.
#![allow(dead_code, unused_imports)]

pub mod auth_server;
pub mod broker;
pub mod catalog;
pub mod cli;
pub mod company_idp;
pub mod consent;
pub mod device;
pub mod dpop;
pub mod health;
pub mod id_jag;
pub mod jsserver;
pub mod legacy;
pub mod listen;
pub mod mcp;
pub mod mcp_stream;
pub mod modern;
pub mod node;
pub mod oidc;
pub mod providers;
pub mod pyserver;
pub mod record;
pub mod signin;
pub mod streams;
pub mod token;
pub mod transport;
pub mod upstream;
pub mod wire;
pub mod workload;

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub use auth_server::{
    AsCounters, AsOptions, AsState, ClientAuthRule, IssuedToken, TestAs, TestClient, TokenFault,
};
pub use broker::{BrokerOptions, Browser, Followed, TestBroker};
pub use cli::{Cli, Interactive};
pub use consent::{hidden, submit_consent};
pub use jsserver::JsServer;
pub use pyserver::FastMcpServer;
pub use record::{Recorded, Recorder};
pub use signin::{demo_server, SIGN_IN_WAIT};
pub use transport::HttpTransport;
pub use upstream::{
    McpCounters, McpFault, Requires, ResponseMode, TestUpstream, UpstreamEra, UpstreamOptions,
};

/// A fresh random URL-safe string (tokens, codes, session ids).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>())
}

/// Asserts that `root` and everything under it is owner-only: directories 0700, files 0600
/// (Unix). Returns the files seen, so a test can check what it expected was there.
pub fn assert_owner_only(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                dirs.push(path);
            } else {
                let mode = meta.permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{} is {mode:o}", path.display());
                files.push(path);
            }
        }
    }
    files
}

/// Reads a counter.
pub fn count(c: &AtomicUsize) -> usize {
    c.load(Ordering::SeqCst)
}
