//! The MCP protocol, once: both eras (2025-03-26 … 2025-11-25 "legacy", 2026-07-28 "modern"),
//! version negotiation and era detection, JSON-RPC envelopes, request `_meta`, the request
//! headers of the modern Streamable HTTP transport, SSE, MRTR (`input_required`) and the error
//! codes. Pure: no HTTP client, no axum, no clock. Every path that speaks MCP (proxy, aggregate,
//! health, discovery probe, `connect`) takes its rules from here; the one upstream exchange that
//! sends them is `crate::upstream::exchange`, the one client session `client`.

pub mod annotations;
pub mod client;
pub mod codes;
pub mod envelope;
pub mod era;
pub mod headers;
pub mod meta;
pub mod mrtr;
pub mod raw;
mod scan;
pub mod shallow;
pub mod sse;
pub mod write;

pub use era::{Era, LEGACY_VERSIONS, MODERN_VERSION, SUPPORTED_VERSIONS};
