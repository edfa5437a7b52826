//! The gateway's integration tests in one binary: the perimeter and skeleton (`foundation_gateway`),
//! the broker's OAuth server toward local clients, `/{server}/mcp` proxying in both eras, the
//! aggregate `/mcp`, delegate mode, tool filters, unusable servers and faults (upstreams failing,
//! broker restarts). `gateway_delegate` installs this process's one tracing subscriber (every
//! log line to a temp file, to prove no credential is logged); `gateway_aggregate_modern_cost`
//! installs the binary's global allocator, counting only on threads it marks, so the other
//! tests' results do not depend on either.

mod gateway_common;
#[path = "../support/mod.rs"]
mod support;

mod fault_restart;
mod fault_tolerance;
mod foundation_gateway;
mod gateway_aggregate;
mod gateway_aggregate_content;
mod gateway_aggregate_live;
mod gateway_aggregate_modern;
mod gateway_aggregate_modern_cost;
mod gateway_aggregate_modern_meta;
mod gateway_aggregate_modern_sdk;
mod gateway_aggregate_pass;
mod gateway_aggregate_relay;
mod gateway_aggregate_subscriptions;
mod gateway_cimd;
mod gateway_delegate;
mod gateway_delegate_http;
mod gateway_legacy;
mod gateway_modern;
mod gateway_modern_sdk;
mod gateway_oauth;
mod gateway_proxy;
mod gateway_proxy_translate;
mod gateway_sdk;
mod gateway_signin_links;
mod gateway_tokens;
mod gateway_tool_filter;
mod gateway_unusable;
