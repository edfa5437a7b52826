//! mcp-auth-broker: a local MCP auth broker. See ARCHITECTURE.md for the map.

pub mod aggregate;
pub mod broker;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod config;
pub mod events;
pub mod fsutil;
pub mod gateway;
pub mod health;
pub mod issuer;
pub mod logging;
pub mod opener;
pub mod protocol;
pub mod secret;
pub mod snippets;
pub mod startup;
pub mod sync;
pub mod upstream;
pub mod urlcheck;
pub mod vault;
pub mod words;

#[cfg(feature = "desktop")]
pub mod desktop;

#[cfg(test)]
mod layering;
