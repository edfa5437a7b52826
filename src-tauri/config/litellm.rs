//! LiteLLM compatibility, in one place: the fields of LiteLLM's `mcp_servers` entries that mean
//! nothing to the broker (reported by name when ignored, never silently dropped), the entries it
//! cannot proxy at all (stdio), and LiteLLM's rule for the OAuth flow of an entry that names none.

use super::raw::RawServer;

/// LiteLLM fields the broker has no use for, each with what the person should know. Anything
/// not listed here and not a broker field is reported as unknown.
const LITELLM_ONLY: &[(&str, &str)] = &[
    ("description", "a label for LiteLLM's UI"),
    ("alias", "the broker's name for a server is its key under mcp_servers"),
    ("mcp_info", "LiteLLM's server metadata"),
    ("access_groups", "LiteLLM's key/team permissions; every local client of the broker may use every server"),
    ("allow_all_keys", "LiteLLM's key permissions"),
    ("available_on_public_internet", "the broker listens on 127.0.0.1 only"),
    ("allowed_params", "LiteLLM's per-tool parameter filter; use allowed_tools / disallowed_tools"),
    ("extra_headers", "LiteLLM forwards these headers from each client request; the broker sends only the fixed \"headers\" (or static_headers) upstream"),
    ("env_vars", "LiteLLM's per-user variables"),
    ("instructions", "LiteLLM's server instructions override"),
    ("spec_path", "LiteLLM's OpenAPI-to-MCP tools; the broker proxies MCP servers only"),
    ("authentication_token", "LiteLLM's older name for the static token; write it as \"auth_value\": \"os.environ/VAR\""),
    ("timeout", "the broker uses its own timeouts"),
    ("max_concurrent_requests", "LiteLLM's request limit"),
    ("allow_sampling", "the broker passes sampling requests to clients that declare it"),
    ("allow_elicitation", "the broker passes elicitation requests to clients that declare it"),
    ("oauth_passthrough", "LiteLLM's passthrough mode; see delegate_auth_to_upstream"),
    ("token_exchange_endpoint", "LiteLLM's on-behalf-of token exchange, which the broker does not do"),
    ("subject_token_type", "LiteLLM's on-behalf-of token exchange, which the broker does not do"),
    ("args", "a stdio server's arguments"),
    ("env", "a stdio server's environment"),
];

/// Why a LiteLLM field is ignored, or `None` when LiteLLM does not have it either.
pub fn ignored(field: &str) -> Option<&'static str> {
    if field.starts_with("aws_") {
        return Some("LiteLLM's AWS SigV4 signing, which the broker does not do");
    }
    LITELLM_ONLY
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, why)| *why)
}

/// The warning for one ignored field of server `server`.
pub fn ignored_warning(server: &str, field: &str) -> Option<String> {
    ignored(field)
        .map(|why| format!("server \"{server}\": LiteLLM field \"{field}\" ignored ({why})"))
}

/// Why an entry is not an upstream the broker can proxy (a stdio server LiteLLM would spawn),
/// or `None` for a remote one.
pub fn not_proxied(raw: &RawServer) -> Option<String> {
    if let Some(cmd) = raw.unknown.get("command").and_then(|c| c.as_str()) {
        return Some(format!("a stdio server (LiteLLM runs `{cmd}`): only remote (http/sse url) servers can go through the broker"));
    }
    (raw.transport.as_deref() == Some("stdio")).then(|| {
        "a stdio server: only remote (http/sse url) servers can go through the broker".to_string()
    })
}

/// LiteLLM's flow for an `oauth2` entry that names none: an `authorization_url` means
/// interactive sign-in; a client ID, a client secret and a `token_url` mean machine-to-machine.
/// Import writes it out, so the entry keeps its flow even when its literal secret stays behind.
pub fn inferred_flow(raw: &RawServer) -> Option<&'static str> {
    if raw.oauth_flow.is_some() || raw.oauth2_flow.is_some() {
        return None;
    }
    if raw.auth_type.as_deref() != Some("oauth2") {
        return None;
    }
    if raw.authorization_url.is_some() {
        return Some("authorization_code");
    }
    (raw.client_id.is_some() && raw.client_secret.is_some() && raw.token_url.is_some())
        .then_some("client_credentials")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(json: serde_json::Value) -> RawServer {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn litellm_infers_client_credentials_from_id_secret_and_token_url_only() {
        let m2m = entry(
            serde_json::json!({"auth_type": "oauth2", "client_id": "a", "client_secret": "b", "token_url": "https://t.example/token"}),
        );
        assert_eq!(inferred_flow(&m2m), Some("client_credentials"));
        let interactive = entry(
            serde_json::json!({"auth_type": "oauth2", "client_id": "a", "client_secret": "b", "token_url": "https://t.example/token", "authorization_url": "https://t.example/authorize"}),
        );
        assert_eq!(inferred_flow(&interactive), Some("authorization_code"));
        let dcr = entry(serde_json::json!({"auth_type": "oauth2"}));
        assert_eq!(inferred_flow(&dcr), None);
        let named =
            entry(serde_json::json!({"auth_type": "oauth2", "oauth2_flow": "client_credentials"}));
        assert_eq!(
            inferred_flow(&named),
            None,
            "a named flow needs no inference"
        );
    }

    #[test]
    fn litellm_only_fields_say_why_they_are_ignored_and_stdio_entries_are_not_proxied() {
        assert!(ignored("description").is_some());
        assert!(ignored("aws_region_name").is_some());
        assert!(ignored("token_url").is_none());
        assert!(ignored("colour").is_none());
        let stdio = entry(
            serde_json::json!({"transport": "stdio", "command": "python3", "args": ["s.py"]}),
        );
        assert!(not_proxied(&stdio).unwrap().contains("`python3`"));
        assert!(not_proxied(&entry(serde_json::json!({"url": "https://a.example/mcp"}))).is_none());
    }
}
