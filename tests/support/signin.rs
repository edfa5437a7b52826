//! One upstream named `demo` behind a real broker: the starting point of the upstream sign-in
//! and token-lifecycle tests, which sign in with [`TestBroker::sign_in`].

use std::time::Duration;

use mcp_auth_broker::config::ServerConfig;
use serde_json::json;

use super::{TestBroker, TestUpstream, UpstreamOptions};

/// How long a sign-in may take before the test fails.
pub const SIGN_IN_WAIT: Duration = Duration::from_secs(20);

/// Starts an upstream with `options` and a broker whose only server, `demo`, points at it; the
/// entry is `{"url": …}` extended by `extra` (e.g. `{"oauth_flow": …}`).
pub async fn demo_server(
    options: UpstreamOptions,
    extra: serde_json::Value,
) -> (TestUpstream, TestBroker, ServerConfig) {
    let up = TestUpstream::start(options).await;
    let mut entry = json!({ "url": up.mcp_url });
    entry
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let broker = TestBroker::start(json!({ "mcp_servers": { "demo": entry } })).await;
    let server = broker.broker.server("demo").unwrap();
    (up, broker, server)
}
