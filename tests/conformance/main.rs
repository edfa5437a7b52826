//! The official MCP conformance suite against the broker: as a client
//! (`examples/conformance_client`, `conformance_client`) and as a server (`gateway_conformance`,
//! `gateway_conformance_sets`).

mod gateway_conformance_common;
#[path = "../support/mod.rs"]
mod support;

mod conformance_client;
mod gateway_conformance;
mod gateway_conformance_sets;
