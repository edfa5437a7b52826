//! The MCP clients on this machine and their config files: where they are ([`discover`]), the
//! remote servers in them ([`parse`], LiteLLM's YAML in [`litellm`], Claude Desktop's
//! `mcp-remote` entries in [`mcp_remote`]), and pointing them at the broker ([`edit`]: the pure
//! text edits; [`connect`]: planned, backed up, undone; [`changes`]: what the dashboard changed).
//! The CLI's `import` and the dashboard's first run share these rules.

pub mod changes;
pub mod connect;
pub mod discover;
pub mod edit;
mod jsonc;
pub mod litellm;
mod mcp_remote;
pub mod parse;

use std::collections::BTreeMap;

use crate::config::raw::RawServer;
use parse::{Found, Plan, Skipped};

/// Drops from `plan` the entries the broker already has; returns those with the same URL
/// separately, under the broker's name (they can still be pointed at the broker).
pub fn against_config(plan: Plan, existing: &BTreeMap<String, RawServer>) -> (Plan, Vec<Found>) {
    let mut out = Plan {
        found: vec![],
        skipped: plan.skipped,
    };
    let mut already = vec![];
    for f in plan.found {
        if let Some((name, _)) = existing.iter().find(|(_, s)| s.url == f.entry.url) {
            out.skipped.push(Skipped {
                name: f.source_name.clone(),
                reason: format!("already in the broker's config as \"{name}\""),
            });
            already.push(Found {
                name: name.clone(),
                ..f
            });
        } else if existing.contains_key(&f.name) {
            out.skipped.push(Skipped {
                name: f.source_name,
                reason: format!("the broker already has a server named \"{}\" with another URL; rename one of them", f.name),
            });
        } else {
            out.found.push(f);
        }
    }
    (out, already)
}

#[cfg(test)]
mod tests;
