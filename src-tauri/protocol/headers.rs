//! The request headers of the modern Streamable HTTP transport: `MCP-Protocol-Version`,
//! `Mcp-Method`, `Mcp-Name`, `Mcp-Param-{name}` (from `x-mcp-header` tool parameters), their
//! Base64 sentinel form, and the header/body check (`-32020`). Names are lowercase `&str` so
//! both `http` versions in the tree (axum's and reqwest's) can use them.

use std::borrow::Cow;

use crate::sync::lock;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const METHOD: &str = "mcp-method";
pub const NAME: &str = "mcp-name";
pub const SESSION_ID: &str = "mcp-session-id";
pub const LAST_EVENT_ID: &str = "last-event-id";
/// Prefix of the headers mirrored from tool parameters.
pub const PARAM_PREFIX: &str = "mcp-param-";

const SENTINEL_START: &str = "=?base64?";
const SENTINEL_END: &str = "?=";

/// Whether a request header belongs to the MCP transport (and so is forwarded upstream).
/// Compares without allocating: the proxy asks this of every request header.
pub fn is_mcp_request_header(name: &str) -> bool {
    [PROTOCOL_VERSION, METHOD, NAME, SESSION_ID, LAST_EVENT_ID]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
        || (name.len() > PARAM_PREFIX.len()
            && name.as_bytes()[..PARAM_PREFIX.len()].eq_ignore_ascii_case(PARAM_PREFIX.as_bytes()))
}

/// A value as a header carries it: plain when it is visible ASCII (spaces inside allowed), else
/// (or when it looks like the sentinel itself) `=?base64?…?=` of its UTF-8.
pub fn encode_value(value: &str) -> Cow<'_, str> {
    let sentinel = value.starts_with(SENTINEL_START) && value.ends_with(SENTINEL_END);
    let plain = value
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || (0x21..=0x7e).contains(&b))
        && !value.starts_with([' ', '\t'])
        && !value.ends_with([' ', '\t'])
        && !sentinel;
    if plain {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(format!(
            "{SENTINEL_START}{}{SENTINEL_END}",
            STANDARD.encode(value)
        ))
    }
}

/// A header value decoded from its sentinel form; `None` when the sentinel holds bad Base64 or
/// bad UTF-8, or a plain value holds a character a header may not carry.
pub fn decode_value(header: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(header).ok()?;
    if let Some(inner) = text
        .strip_prefix(SENTINEL_START)
        .and_then(|t| t.strip_suffix(SENTINEL_END))
    {
        let bytes = STANDARD.decode(inner).ok()?;
        return String::from_utf8(bytes).ok();
    }
    text.bytes()
        .all(|b| b == b' ' || b == b'\t' || (0x21..=0x7e).contains(&b))
        .then(|| text.to_string())
}

/// The body field `Mcp-Name` mirrors for `method`: `params.name` or `params.uri`.
fn name_source(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// The standard headers a modern client sends with `message` (name, value): `Mcp-Method`, and
/// `Mcp-Name` where the method has one.
pub fn standard(message: &Value) -> Vec<(&'static str, Cow<'_, str>)> {
    let Some(method) = message["method"].as_str() else {
        return Vec::new();
    };
    // Method names are ASCII tokens; one no header can carry is mirrored by nothing (the server
    // then refuses the method itself), never by a header the value was squeezed into.
    let mut out = Vec::new();
    if let (Cow::Borrowed(plain), false) = (encode_value(method), method.is_empty()) {
        out.push((METHOD, Cow::Borrowed(plain)));
    }
    if let Some(v) = name_source(method).and_then(|f| message["params"][f].as_str()) {
        out.push((NAME, encode_value(v)));
    }
    out
}

/// The `Mcp-Param-{name}` headers of a `tools/call` with `arguments`, for a tool whose
/// `inputSchema` is `schema`: (header name without prefix, encoded value). Annotations that break
/// the rules (see [`valid_annotations`]) yield nothing.
pub fn params(schema: &Value, arguments: &Value) -> Vec<(String, String)> {
    match valid_annotations(schema) {
        Ok(annotations) => annotated(&annotations, arguments),
        Err(_) => Vec::new(),
    }
}

/// A tool's valid `x-mcp-header` annotations: (property path, header name without prefix).
pub type Annotations = Vec<(Vec<String>, String)>;

/// [`params`] for annotations already checked ([`valid_annotations`]).
fn annotated(annotations: &Annotations, arguments: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, name) in annotations {
        let mut v = arguments;
        for step in path {
            v = &v[step.as_str()];
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => {
                    format!("{}", f as i64)
                }
                _ => continue,
            },
            _ => continue,
        };
        out.push((name.clone(), encode_value(&text).into_owned()));
    }
    out
}

/// The `x-mcp-header` annotations of a tool's `inputSchema` as (property path, name), or why the
/// tool must be refused (a client excludes such a tool from `tools/list`): an empty or non-token
/// name, a duplicate (case-insensitive), a non-primitive or `number` parameter, or an annotation
/// not reachable through `properties` alone.
pub fn valid_annotations(schema: &Value) -> Result<Annotations, String> {
    let mut found = Vec::new();
    walk(schema, &mut Vec::new(), true, &mut found)?;
    let mut seen = std::collections::HashSet::new();
    for (_, name) in &found {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(format!(
                "x-mcp-header \"{name}\" is not a header name token"
            ));
        }
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(format!("x-mcp-header \"{name}\" is used twice"));
        }
    }
    Ok(found)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn walk(
    schema: &Value,
    path: &mut Vec<String>,
    reachable: bool,
    out: &mut Vec<(Vec<String>, String)>,
) -> Result<(), String> {
    let Some(map) = schema.as_object() else {
        return Ok(());
    };
    if let Some(name) = map.get("x-mcp-header") {
        if !reachable || path.is_empty() {
            return Err("x-mcp-header outside a chain of \"properties\"".into());
        }
        let name = name.as_str().ok_or("x-mcp-header is not a string")?;
        match map.get("type").and_then(Value::as_str) {
            Some("string" | "integer" | "boolean") => {}
            other => {
                return Err(format!(
                    "x-mcp-header \"{name}\" is on a parameter of type {other:?}; only string, integer and boolean may be mirrored"
                ))
            }
        }
        out.push((path.clone(), name.to_string()));
    }
    for (key, value) in map {
        match (key.as_str(), value) {
            ("properties", Value::Object(props)) => {
                for (prop, sub) in props {
                    path.push(prop.clone());
                    walk(sub, path, reachable, out)?;
                    path.pop();
                }
            }
            ("x-mcp-header" | "properties", _) => {}
            (_, Value::Object(_)) | (_, Value::Array(_)) => {
                for sub in nested(value) {
                    walk(sub, &mut Vec::new(), false, out)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn nested(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) if map.contains_key("type") || map.contains_key("properties") => {
            vec![value]
        }
        Value::Object(map) => map.values().collect(),
        _ => Vec::new(),
    }
}

/// The header annotations of tools' `inputSchema`s by name, learned (and checked once) from
/// `tools/list` answers: what a modern client needs to mirror `Mcp-Param-*` headers on later
/// calls. Tools without valid annotations are not kept: their calls carry no such header.
#[derive(Debug, Default)]
pub struct ToolSchemas(std::sync::Mutex<std::collections::HashMap<String, Annotations>>);

impl ToolSchemas {
    /// Remembers the annotations of listed tools (a `tools/list` result's `tools`).
    pub fn learn(&self, tools: &[Value]) {
        let mut map = lock(&self.0);
        for tool in tools {
            if let (Some(name), Some(schema)) = (tool["name"].as_str(), tool.get("inputSchema")) {
                match valid_annotations(schema) {
                    Ok(found) if !found.is_empty() => map.insert(name.to_string(), found),
                    _ => map.remove(name),
                };
            }
        }
    }

    /// The `Mcp-Param-*` headers of a modern `tools/call` (full lowercase name, encoded value).
    fn param_headers(&self, message: &Value) -> Vec<(String, String)> {
        if message["method"] != "tools/call" {
            return Vec::new();
        }
        let map = lock(&self.0);
        let Some(found) = message["params"]["name"].as_str().and_then(|n| map.get(n)) else {
            return Vec::new();
        };
        let arguments = &message["params"]["arguments"];
        let named = annotated(found, arguments).into_iter();
        named
            .map(|(name, v)| (format!("{PARAM_PREFIX}{}", name.to_ascii_lowercase()), v))
            .collect()
    }

    /// Every header a modern client sends with `message` (lowercase name, encoded value):
    /// `MCP-Protocol-Version` from its `_meta`, the standard ones, and `Mcp-Param-*` of a call
    /// to a tool whose schema is known. Empty for a message without modern `_meta`. The standard
    /// names are static and plain values borrowed from the message (nothing allocated for them).
    pub fn request_headers<'m>(&self, message: &'m Value) -> Outgoing<'m> {
        let Some(version) = super::meta::declared_version(message) else {
            return Vec::new();
        };
        let mut out: Outgoing = vec![(Cow::Borrowed(PROTOCOL_VERSION), Cow::Borrowed(version))];
        out.extend(
            standard(message)
                .into_iter()
                .map(|(n, v)| (Cow::Borrowed(n), v)),
        );
        let params = self.param_headers(message).into_iter();
        out.extend(params.map(|(n, v)| (Cow::Owned(n), Cow::Owned(v))));
        out
    }
}

/// Headers to send: the name (static for the protocol's own, lowercase) and the encoded value.
pub type Outgoing<'a> = Vec<(Cow<'static, str>, Cow<'a, str>)>;

/// Checks the standard headers against the body (what an intermediary that reads the body must
/// do): `get` looks a header up by lowercase name. `Err` is the `-32020` message.
pub fn check_standard<'a>(
    message: &Value,
    get: impl Fn(&str) -> Option<&'a [u8]>,
) -> Result<(), String> {
    for (name, expected) in standard(message) {
        let Some(raw) = get(name) else {
            return Err(format!(
                "the {name} header is missing; it must be \"{expected}\""
            ));
        };
        if raw == expected.as_bytes() && !expected.starts_with(SENTINEL_START) {
            continue; // the usual case: the same plain value, nothing to decode
        }
        let got = decode_value(raw).ok_or_else(|| format!("the {name} header is malformed"))?;
        let want =
            decode_value(expected.as_bytes()).unwrap_or_else(|| expected.clone().into_owned());
        if got != want {
            return Err(format!(
                "the {name} header \"{got}\" does not match the body's \"{want}\""
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_plain_when_safe_and_base64_otherwise() {
        assert_eq!(encode_value("us-west1"), "us-west1");
        assert_eq!(
            encode_value("Hello, 世界"),
            "=?base64?SGVsbG8sIOS4lueVjA==?="
        );
        assert_eq!(encode_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(encode_value("line1\nline2"), "=?base64?bGluZTEKbGluZTI=?=");
        assert_eq!(
            encode_value("=?base64?literal?="),
            "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="
        );
        for v in ["us-west1", "Hello, 世界", " padded ", "=?base64?literal?="] {
            assert_eq!(decode_value(encode_value(v).as_bytes()).as_deref(), Some(v));
        }
        assert_eq!(decode_value(b"=?base64?!!?="), None);
        assert_eq!(decode_value(b"a\x01b"), None);
    }

    #[test]
    fn standard_headers_mirror_method_and_name() {
        let call = json!({"method": "tools/call", "params": {"name": "wëather"}});
        let h = standard(&call);
        assert_eq!(h[0], (METHOD, Cow::Borrowed("tools/call")));
        assert_eq!(h[1].0, NAME);
        assert_eq!(decode_value(h[1].1.as_bytes()).unwrap(), "wëather");
        let read = json!({"method": "resources/read", "params": {"uri": "file:///a"}});
        assert_eq!(standard(&read)[1].1, "file:///a");
        assert_eq!(standard(&json!({"method": "tools/list"})).len(), 1);
    }

    #[test]
    fn a_method_no_header_can_carry_is_not_mirrored_and_still_passes_its_own_check() {
        // Found by the `mcp_request_headers` fuzz target: a non-ASCII method.
        let odd = json!({"method": "tools/cawëather", "params": {"name": "x"}});
        assert!(standard(&odd).is_empty());
        assert!(check_standard(&odd, |_| None).is_ok());
    }

    #[test]
    fn mcp_headers_are_recognised_case_insensitively() {
        for h in [
            "Mcp-Method",
            "MCP-PROTOCOL-VERSION",
            "mcp-param-Region",
            "Mcp-Name",
        ] {
            assert!(is_mcp_request_header(h), "{h}");
        }
        for h in ["mcp-param-", "authorization", "mcp-other", "cookie"] {
            assert!(!is_mcp_request_header(h), "{h}");
        }
    }

    #[test]
    fn param_headers_follow_annotated_properties_only() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "n": {"type": "integer", "x-mcp-header": "N"},
            "deep": {"type": "object", "properties": {"flag": {"type": "boolean", "x-mcp-header": "Flag"}}},
            "query": {"type": "string"}}});
        let args = json!({"region": "us-west1", "n": 42.0, "deep": {"flag": true}, "query": "x"});
        let mut h = params(&schema, &args);
        h.sort();
        assert_eq!(
            h,
            vec![
                ("Flag".to_string(), "true".to_string()),
                ("N".to_string(), "42".to_string()),
                ("Region".to_string(), "us-west1".to_string()),
            ]
        );
        assert!(params(&schema, &json!({"region": null})).is_empty());
    }

    #[test]
    fn invalid_annotations_are_refused() {
        let bad = [
            json!({"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "A"}, "b": {"type": "string", "x-mcp-header": "a"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "bad name"}}}),
            json!({"properties": {"a": {"type": "array", "items": {"type": "string", "x-mcp-header": "A"}}}}),
            json!({"anyOf": [{"properties": {"a": {"type": "string", "x-mcp-header": "A"}}}]}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": ""}}}),
        ];
        for schema in bad {
            assert!(valid_annotations(&schema).is_err(), "{schema}");
        }
    }

    #[test]
    fn learned_schemas_give_a_modern_call_all_its_headers() {
        let schemas = ToolSchemas::default();
        schemas.learn(&[json!({"name": "lookup", "inputSchema": {"type": "object",
            "properties": {"region": {"type": "string", "x-mcp-header": "Region"}}}})]);
        let call = json!({"method": "tools/call", "params": {"name": "lookup",
            "arguments": {"region": "eu"}, "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}});
        let h = schemas.request_headers(&call);
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_ref());
        assert_eq!(get(PROTOCOL_VERSION), Some("2026-07-28"));
        assert_eq!(get(METHOD), Some("tools/call"));
        assert_eq!(get(NAME), Some("lookup"));
        assert_eq!(get("mcp-param-region"), Some("eu"));
        assert!(schemas
            .request_headers(&json!({"method": "tools/list"}))
            .is_empty());
    }

    #[test]
    fn a_header_that_disagrees_with_the_body_is_a_mismatch() {
        let call = json!({"method": "tools/call", "params": {"name": "a"}});
        let ok = |n: &str| match n {
            METHOD => Some(&b"tools/call"[..]),
            NAME => Some(&b"=?base64?YQ==?="[..]),
            _ => None,
        };
        assert!(check_standard(&call, ok).is_ok());
        let wrong = |n: &str| match n {
            METHOD => Some(&b"tools/call"[..]),
            NAME => Some(&b"b"[..]),
            _ => None,
        };
        assert!(check_standard(&call, wrong)
            .unwrap_err()
            .contains("does not match"));
        assert!(check_standard(&call, |_| None)
            .unwrap_err()
            .contains("missing"));
    }
}
