//! Request `_meta` of the modern era: protocol version, client capabilities and client info ride
//! on every request instead of an `initialize` handshake.

use serde_json::{json, Map, Value};

use super::era::{Era, MODERN_VERSION};

pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// The log level a modern client asks for on one request (replaces `logging/setLevel`).
pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";

/// Whether a `_meta` key is the protocol's own (`io.modelcontextprotocol/*`: version,
/// capabilities, client info, log level): a client's stays behind when the broker sends its
/// request on, where the broker is the client.
pub fn is_protocol_key(key: &str) -> bool {
    key.starts_with("io.modelcontextprotocol/")
}

/// The broker's own `clientInfo` when it is the client (built once: every modern request to an
/// upstream carries a copy).
pub fn broker_client_info() -> Value {
    static INFO: std::sync::LazyLock<Value> = std::sync::LazyLock::new(
        || json!({"name": "mcp-auth-broker", "version": env!("CARGO_PKG_VERSION")}),
    );
    INFO.clone()
}

/// The `_meta` of a request the broker sends as a modern client.
pub fn modern_meta(capabilities: &Value) -> Value {
    super::envelope::object([
        (PROTOCOL_VERSION, MODERN_VERSION.into()),
        (CLIENT_CAPABILITIES, capabilities.clone()),
        (CLIENT_INFO, broker_client_info()),
    ])
}

/// Adds the modern `_meta` to `params` (an object, or null), keeping what the caller put there.
pub fn with_modern_meta(params: Value, capabilities: &Value) -> Value {
    let mut params = match params {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let meta = params
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let (Some(meta), Value::Object(ours)) = (meta.as_object_mut(), modern_meta(capabilities)) {
        for (k, v) in ours {
            meta.entry(k).or_insert(v);
        }
    }
    Value::Object(params)
}

/// The protocol version a request's `_meta` declares (modern requests carry one).
pub fn declared_version(message: &Value) -> Option<&str> {
    message["params"]["_meta"][PROTOCOL_VERSION].as_str()
}

/// The client capabilities a modern request declares (`{}` when absent).
pub fn declared_capabilities(message: &Value) -> &Value {
    static EMPTY: Value = Value::Null;
    let caps = &message["params"]["_meta"][CLIENT_CAPABILITIES];
    if caps.is_object() {
        caps
    } else {
        &EMPTY
    }
}

/// Whether client capabilities declare URL-mode elicitation (2025-11-25: `elicitation.url`), so
/// the client can be sent a link to open.
pub fn url_elicitation(capabilities: &Value) -> bool {
    capabilities["elicitation"]["url"].is_object()
}

/// The `_meta` keys every 2026-07-28 request must carry (`clientInfo` and `logLevel` are
/// optional).
pub const REQUIRED: [&str; 2] = [PROTOCOL_VERSION, CLIENT_CAPABILITIES];

/// Whether a modern request carries the `_meta` every request must: its protocol version (a
/// string) and its client capabilities (an object). A request without them is malformed, so a
/// server answers `-32602` (HTTP 400) before it compares headers with the body. `Err` is that
/// error's message, naming what is missing or of the wrong type.
pub fn check_required(message: &Value) -> Result<(), String> {
    let Some(meta) = message["params"]["_meta"].as_object() else {
        return Err(format!(
            "a 2026-07-28 request needs params._meta with {} and {}",
            REQUIRED[0], REQUIRED[1]
        ));
    };
    // Each looked up once (every modern request passes here).
    let found = REQUIRED.map(|k| meta.get(k).filter(|v| !v.is_null()));
    if found.iter().any(Option::is_none) {
        let missing: Vec<&str> = REQUIRED
            .into_iter()
            .zip(found)
            .filter_map(|(k, v)| v.is_none().then_some(k))
            .collect();
        return Err(format!("params._meta is missing {}", missing.join(" and ")));
    }
    if !found[0].is_some_and(Value::is_string) {
        return Err(format!("params._meta {PROTOCOL_VERSION} must be a string"));
    }
    if !found[1].is_some_and(Value::is_object) {
        return Err(format!(
            "params._meta {CLIENT_CAPABILITIES} must be an object"
        ));
    }
    Ok(())
}

/// The era a client speaks, from one request: the `MCP-Protocol-Version` header when it names a
/// modern version, else the body's `_meta`; a legacy client never sends either as modern.
pub fn client_era(header_version: Option<&str>, message: Option<&Value>) -> Era {
    era_of(header_version, message.and_then(declared_version))
}

/// [`client_era`] from the header's version and the one the body's `_meta` declares.
pub fn era_of(header_version: Option<&str>, declared: Option<&str>) -> Era {
    let modern = |v: &str| Era::of(v) == Some(Era::Modern);
    if header_version.is_some_and(modern) || declared.is_some_and(modern) {
        Era::Modern
    } else {
        Era::Legacy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modern_meta_is_added_without_replacing_what_the_caller_set() {
        let params = json!({"name": "t", "_meta": {"progressToken": 3, PROTOCOL_VERSION: "x"}});
        let p = with_modern_meta(params, &json!({"elicitation": {}}));
        assert_eq!(p["_meta"]["progressToken"], 3);
        assert_eq!(p["_meta"][PROTOCOL_VERSION], "x");
        assert_eq!(p["_meta"][CLIENT_CAPABILITIES]["elicitation"], json!({}));
        let p = with_modern_meta(Value::Null, &json!({}));
        assert_eq!(p["_meta"][PROTOCOL_VERSION], MODERN_VERSION);
    }

    #[test]
    fn a_modern_request_without_its_version_or_capabilities_in_meta_is_malformed() {
        let full = json!({"params": {"_meta": {PROTOCOL_VERSION: "2026-07-28",
            CLIENT_CAPABILITIES: {}}}});
        assert_eq!(check_required(&full), Ok(()));
        let no_meta = check_required(&json!({"params": {}})).unwrap_err();
        assert!(no_meta.contains(PROTOCOL_VERSION), "{no_meta}");
        assert!(check_required(&json!({"method": "server/discover"})).is_err());
        let no_version = json!({"params": {"_meta": {CLIENT_CAPABILITIES: {}, CLIENT_INFO: {}}}});
        let why = check_required(&no_version).unwrap_err();
        assert!(
            why.contains(PROTOCOL_VERSION) && !why.contains(CLIENT_CAPABILITIES),
            "{why}"
        );
        let no_caps = json!({"params": {"_meta": {PROTOCOL_VERSION: "2026-07-28"}}});
        let why = check_required(&no_caps).unwrap_err();
        assert!(why.contains(CLIENT_CAPABILITIES), "{why}");
        let null_caps = json!({"params": {"_meta": {PROTOCOL_VERSION: "2026-07-28",
            CLIENT_CAPABILITIES: null}}});
        assert!(check_required(&null_caps).is_err());
        let bad_types = json!({"params": {"_meta": {PROTOCOL_VERSION: 2026,
            CLIENT_CAPABILITIES: {}}}});
        assert!(check_required(&bad_types).unwrap_err().contains("string"));
        let caps_list = json!({"params": {"_meta": {PROTOCOL_VERSION: "2026-07-28",
            CLIENT_CAPABILITIES: ["sampling"]}}});
        assert!(check_required(&caps_list).unwrap_err().contains("object"));
    }

    #[test]
    fn a_client_is_modern_by_its_header_or_its_meta() {
        let m = json!({"params": {"_meta": {PROTOCOL_VERSION: "2026-07-28"}}});
        assert_eq!(client_era(Some("2026-07-28"), None), Era::Modern);
        assert_eq!(client_era(None, Some(&m)), Era::Modern);
        assert_eq!(
            client_era(Some("2025-11-25"), Some(&json!({}))),
            Era::Legacy
        );
        assert_eq!(client_era(None, None), Era::Legacy);
    }
}
