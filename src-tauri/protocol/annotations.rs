//! The `x-mcp-header` annotations of tools' `inputSchema`s (checked once, when a tool list is
//! learned) and the `Mcp-Param-{name}` headers a modern `tools/call` mirrors from its arguments;
//! with the standard headers ([`super::headers`]), every header a modern request carries.

use std::borrow::Cow;

use serde_json::Value;

use http::HeaderName;

use super::headers::{encode_value, names, standard, PARAM_PREFIX};
use crate::sync::lock;

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
pub struct ToolSchemas {
    map: std::sync::Mutex<std::collections::HashMap<String, Annotations>>,
    /// A tool list was learned: until then a call's headers cannot be known (a client may call
    /// with a tool list it kept from an earlier session), so the caller lists first.
    listed: std::sync::atomic::AtomicBool,
}

impl ToolSchemas {
    /// Whether any `tools/list` answer was learned yet.
    pub fn listed(&self) -> bool {
        self.listed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Remembers the annotations of listed tools (a `tools/list` result's `tools`).
    pub fn learn(&self, tools: &[Value]) {
        let mut map = lock(&self.map);
        self.listed
            .store(true, std::sync::atomic::Ordering::Release);
        for tool in tools {
            if let (Some(name), Some(schema)) = (tool["name"].as_str(), tool.get("inputSchema")) {
                match valid_annotations(schema) {
                    Ok(found) if !found.is_empty() => map.insert(name.to_string(), found),
                    _ => map.remove(name),
                };
            }
        }
    }

    /// Whether a `tools/call` of `name` has `Mcp-Param-*` headers (its listed schema has
    /// annotations).
    pub fn annotated(&self, method: &str, name: &str) -> bool {
        method == "tools/call" && lock(&self.map).contains_key(name)
    }

    /// The `Mcp-Param-*` headers of a modern `tools/call` with `params` (full lowercase name,
    /// encoded value). Nothing is looked up while no listed tool has annotations (the usual case).
    pub fn param_headers(&self, method: &str, params: &Value) -> Vec<(String, String)> {
        if method != "tools/call" {
            return Vec::new();
        }
        let map = lock(&self.map);
        if map.is_empty() {
            return Vec::new();
        }
        let Some(found) = params["name"].as_str().and_then(|n| map.get(n)) else {
            return Vec::new();
        };
        let named = annotated(found, &params["arguments"]).into_iter();
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
        let mut out: Outgoing = vec![(names::PROTOCOL_VERSION, Cow::Borrowed(version))];
        out.extend(standard(message));
        let method = message["method"].as_str().unwrap_or_default();
        let params = self.param_headers(method, &message["params"]).into_iter();
        // Each name was checked a valid token when the schema was learned.
        let params = params.filter_map(|(n, v)| Some((HeaderName::try_from(n).ok()?, v.into())));
        out.extend(params);
        out
    }
}

/// Headers to send: the name and the encoded value.
pub type Outgoing<'a> = Vec<(HeaderName, Cow<'a, str>)>;

#[cfg(test)]
mod tests {
    use super::super::headers::{METHOD, NAME, PROTOCOL_VERSION};
    use super::*;
    use serde_json::json;

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
}
