//! Pure rules of the aggregate endpoint: the naming scheme and how each server's list answers
//! become one list.
//!
//! Naming scheme (collision-free): `SERVER__NAME`. A server name never contains `__` nor ends
//! with `_` (config validation), so the first `__` of a prefixed name always ends the server
//! part: `github__create_issue` → (`github`, `create_issue`), `a__b__c` → (`a`, `b__c`). Two
//! servers can never produce the same prefixed name, and names from one server stay distinct.

use serde_json::{json, Value};

use crate::config::{ServerConfig, Transport};

pub const SEPARATOR: &str = "__";

/// `server__name`.
pub fn prefixed(server: &str, name: &str) -> String {
    format!("{server}{SEPARATOR}{name}")
}

/// The server and the upstream's own name of a prefixed name, if it has both parts.
pub fn split(prefixed: &str) -> Option<(&str, &str)> {
    // A scan of the bytes, not `split_once`: its searcher's set-up costs more than a short
    // name's whole scan, and this runs on every call on `/mcp`.
    let sep = SEPARATOR.as_bytes();
    let at = prefixed
        .as_bytes()
        .windows(sep.len())
        .position(|w| w == sep)?;
    // The separator is ASCII, so both ends are character boundaries.
    let (server, name) = (&prefixed[..at], &prefixed[at + sep.len()..]);
    (!server.is_empty() && !name.is_empty()).then_some((server, name))
}

/// The list methods the aggregate merges, with the key holding the items in their results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

impl Listing {
    pub fn from_method(method: &str) -> Option<Listing> {
        Some(match method {
            "tools/list" => Listing::Tools,
            "prompts/list" => Listing::Prompts,
            "resources/list" => Listing::Resources,
            "resources/templates/list" => Listing::ResourceTemplates,
            _ => return None,
        })
    }

    pub fn method(self) -> &'static str {
        match self {
            Listing::Tools => "tools/list",
            Listing::Prompts => "prompts/list",
            Listing::Resources => "resources/list",
            Listing::ResourceTemplates => "resources/templates/list",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Listing::Tools => "tools",
            Listing::Prompts => "prompts",
            Listing::Resources => "resources",
            Listing::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The `initialize` capability a server must declare for this list to exist.
    pub fn capability(self) -> &'static str {
        match self {
            Listing::Tools => "tools",
            Listing::Prompts => "prompts",
            Listing::Resources | Listing::ResourceTemplates => "resources",
        }
    }
}

/// One server's items as the aggregate shows them: tools the server's allow/deny lists hide are
/// dropped, and every name is prefixed (when `prefix`: `/mcp`, not a scoped `/{server}/mcp`). Resource URIs stay as they are (clients open them by
/// URI; the session remembers which server listed which URI). Items without a string `name`
/// are dropped: they could not be called or shown.
pub fn present(
    cfg: &ServerConfig,
    listing: Listing,
    items: Vec<Value>,
    prefix: bool,
) -> Vec<Value> {
    let server = cfg.name.as_str();
    items
        .into_iter()
        .filter_map(|mut item| {
            let name = item.get("name")?.as_str()?.to_string();
            if listing == Listing::Tools && !cfg.permits_tool(&name) {
                return None;
            }
            if !prefix {
                return Some(item);
            }
            item["name"] = Value::String(prefixed(server, &name));
            if let Some(title) = item.get("title").and_then(Value::as_str) {
                item["title"] = Value::String(format!("{title} ({server})"));
            }
            Some(item)
        })
        .collect()
}

/// Why a call names something the aggregate will not forward, if it will not. `tool` is the
/// tool's name for a tool call (checked against the server's allow/deny lists), `None` for a
/// prompt.
pub fn refusal(cfg: Option<&ServerConfig>, server: &str, tool: Option<&str>) -> Option<String> {
    match cfg {
        None => Some(format!(
            "no server named \"{server}\" is configured in the broker (names are SERVER{SEPARATOR}NAME; list them again)"
        )),
        Some(c) if c.needs_setup.is_some() => Some(format!(
            "server \"{server}\" needs setup in the broker: {}",
            c.needs_setup.as_deref().unwrap_or_default()
        )),
        Some(c) if !c.enabled => Some(format!(
            "server \"{server}\" is disabled in the broker; enable it in the tray app or the config"
        )),
        Some(c) if left_out(c).is_some() => left_out(c),
        Some(c) if tool.is_some_and(|t| !c.permits_tool(t)) => Some(format!(
            "tool \"{}\" of server \"{server}\" is hidden by the broker's config (allowed_tools / disallowed_tools); ask whoever manages the broker to allow it",
            tool.unwrap_or_default()
        )),
        Some(_) => None,
    }
}

/// Whether a server takes part in the aggregate at all.
pub fn aggregated(cfg: &ServerConfig) -> bool {
    left_out(cfg).is_none() && cfg.enabled
}

/// Why an enabled server is not part of `/mcp` (said in list notices, so it never silently
/// vanishes), if it is not.
pub fn left_out(cfg: &ServerConfig) -> Option<String> {
    let server = cfg.name.as_str();
    if cfg.delegate_auth_to_upstream {
        return Some(format!("server \"{server}\" delegates sign-in to its upstream, so it is not part of /mcp; connect to /{server}/mcp directly"));
    }
    if cfg.transport == Transport::Sse {
        return Some(format!("server \"{server}\" speaks the older HTTP+SSE transport, which /mcp does not aggregate; connect to /{server}/mcp directly"));
    }
    None
}

/// An MCP log notification (`notifications/message`) from the broker about one server.
pub fn notice(level: &str, server: &str, text: &str) -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {
        "level": level,
        "logger": "mcp-auth-broker",
        "data": {"server": server, "message": text},
    }})
}

/// A tool result that reports a problem to the model (`isError`), rather than a protocol error.
pub fn error_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": true})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{validate, RawConfig};

    fn server(json: Value) -> ServerConfig {
        let raw: RawConfig = serde_json::from_value(json!({"mcp_servers": {"gh": json}})).unwrap();
        validate(&raw).unwrap().config.server("gh").unwrap().clone()
    }

    #[test]
    fn prefixed_names_split_back_at_the_first_separator() {
        assert_eq!(
            split(&prefixed("gh", "create_issue")),
            Some(("gh", "create_issue"))
        );
        assert_eq!(split(&prefixed("a", "b__c")), Some(("a", "b__c")));
        assert_eq!(
            split(&prefixed("my-srv_2", "__x")),
            Some(("my-srv_2", "__x"))
        );
        assert_eq!(split("plain"), None);
        assert_eq!(split("__tool"), None);
        assert_eq!(split("gh__"), None);
    }

    #[test]
    fn presented_tools_are_prefixed_and_filtered_by_the_servers_lists() {
        let cfg = server(json!({"url": "https://a.example.com/mcp", "disallowed_tools": ["drop"]}));
        let items = vec![
            json!({"name": "read", "title": "Read", "inputSchema": {}}),
            json!({"name": "drop"}),
            json!({"title": "no name"}),
        ];
        let shown = present(&cfg, Listing::Tools, items.clone(), true);
        assert_eq!(
            present(&cfg, Listing::Tools, items, false),
            vec![json!({"name": "read", "title": "Read", "inputSchema": {}})],
            "a scoped /{{server}}/mcp keeps the server's own names"
        );
        assert_eq!(
            shown,
            vec![json!({"name": "gh__read", "title": "Read (gh)", "inputSchema": {}})]
        );
    }

    #[test]
    fn resources_keep_their_uri_and_only_tools_are_filtered() {
        let cfg = server(json!({"url": "https://a.example.com/mcp", "allowed_tools": ["x"]}));
        let shown = present(
            &cfg,
            Listing::Resources,
            vec![json!({"name": "readme", "uri": "file:///r"})],
            true,
        );
        assert_eq!(
            shown,
            vec![json!({"name": "gh__readme", "uri": "file:///r"})]
        );
    }

    #[test]
    fn refusals_name_the_reason_and_what_to_do() {
        let deny = server(json!({"url": "https://a.example.com/mcp", "allowed_tools": ["read"]}));
        assert!(refusal(Some(&deny), "gh", Some("read")).is_none());
        assert!(
            refusal(Some(&deny), "gh", None).is_none(),
            "prompts are not filtered"
        );
        assert!(refusal(Some(&deny), "gh", Some("write"))
            .unwrap()
            .contains("allowed_tools"));
        assert!(refusal(None, "zz", None)
            .unwrap()
            .contains("no server named \"zz\""));
        let delegated =
            server(json!({"url": "https://a.example.com/mcp", "delegate_auth_to_upstream": true}));
        assert!(refusal(Some(&delegated), "gh", None)
            .unwrap()
            .contains("/gh/mcp"));
        assert!(!aggregated(&delegated));
    }
}
