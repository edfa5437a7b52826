//! Client setup snippets: what to paste into Claude Code, Cursor or VS Code for a server.
//! Shared by the CLI (`client-config`) and the desktop shell (copy buttons).

use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Claude,
    Cursor,
    VsCode,
}

impl ClientKind {
    pub fn parse(name: &str) -> Option<ClientKind> {
        match name.to_ascii_lowercase().as_str() {
            "claude" | "claude-code" => Some(ClientKind::Claude),
            "cursor" => Some(ClientKind::Cursor),
            "vscode" | "vs-code" | "code" => Some(ClientKind::VsCode),
            _ => None,
        }
    }
}

/// The snippet for `client` to use `server` through the broker at `url`.
pub fn snippet(client: ClientKind, server: &str, url: &str) -> String {
    match client {
        ClientKind::Claude => format!("claude mcp add --transport http {server} {url}"),
        ClientKind::Cursor => pretty(json!({ "mcpServers": { server: { "url": url } } })),
        ClientKind::VsCode => {
            pretty(json!({ "servers": { server: { "type": "http", "url": url } } }))
        }
    }
}

fn pretty(v: serde_json::Value) -> String {
    serde_json::to_string_pretty(&v).expect("JSON serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_point_each_client_at_the_broker_url() {
        let url = "http://127.0.0.1:47823/github/mcp";
        assert_eq!(
            snippet(ClientKind::Claude, "github", url),
            "claude mcp add --transport http github http://127.0.0.1:47823/github/mcp"
        );
        let cursor: serde_json::Value =
            serde_json::from_str(&snippet(ClientKind::Cursor, "github", url)).unwrap();
        assert_eq!(cursor["mcpServers"]["github"]["url"], url);
        let vscode: serde_json::Value =
            serde_json::from_str(&snippet(ClientKind::VsCode, "github", url)).unwrap();
        assert_eq!(vscode["servers"]["github"]["type"], "http");
        assert_eq!(vscode["servers"]["github"]["url"], url);
        assert_eq!(ClientKind::parse("VSCode"), Some(ClientKind::VsCode));
        assert_eq!(ClientKind::parse("emacs"), None);
    }
}
