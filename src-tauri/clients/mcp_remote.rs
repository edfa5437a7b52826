//! `mcp-remote` entries: how Claude Desktop, which starts only local (stdio) servers, reaches a
//! remote one (`npx -y mcp-remote URL --header "Name: value"`). Read so such a server can be
//! imported like any remote entry.

use serde_json::{Map, Value};

/// The server URL of an `npx mcp-remote URL …` entry (how Claude Desktop reaches a remote
/// server): the first argument after the one naming `mcp-remote` that is an http(s) URL.
pub(super) fn url(obj: &Map<String, Value>) -> Option<&str> {
    let args = obj.get("args")?.as_array()?;
    let command = obj.get("command").and_then(Value::as_str).unwrap_or("");
    let named = |a: &str| {
        let base = a.rsplit('/').next().unwrap_or(a);
        base == "mcp-remote" || base.starts_with("mcp-remote@")
    };
    let start = if named(command) {
        0
    } else {
        args.iter().position(|a| a.as_str().is_some_and(named))? + 1
    };
    args[start..]
        .iter()
        .filter_map(Value::as_str)
        .find(|a| a.starts_with("https://") || a.starts_with("http://"))
}

/// The `--header "Name: value"` arguments of an `mcp-remote` entry.
pub(super) fn headers(obj: &Map<String, Value>) -> Map<String, Value> {
    let args: Vec<&str> = obj["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    args.windows(2)
        .filter(|w| w[0] == "--header")
        .filter_map(|w| w[1].split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), Value::from(v.trim())))
        .collect()
}
