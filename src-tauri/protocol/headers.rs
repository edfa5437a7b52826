//! The request headers of the modern Streamable HTTP transport: `MCP-Protocol-Version`,
//! `Mcp-Method`, `Mcp-Name`, `Mcp-Param-{name}` (from `x-mcp-header` tool parameters), their
//! Base64 sentinel form, and the header/body check (`-32020`). Names are lowercase `&str`, and
//! the same as [`HeaderName`]s in [`names`] (a map looked up by `&str` parses the name first).

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::HeaderName;
use serde_json::Value;

pub use super::annotations::{params, valid_annotations, Annotations, Outgoing, ToolSchemas};

pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const METHOD: &str = "mcp-method";
pub const NAME: &str = "mcp-name";
pub const SESSION_ID: &str = "mcp-session-id";
pub const LAST_EVENT_ID: &str = "last-event-id";
/// Prefix of the headers mirrored from tool parameters.
pub const PARAM_PREFIX: &str = "mcp-param-";

/// The transport's header names as [`HeaderName`]s, made at compile time: inserted or looked up
/// on every request without parsing the name.
pub mod names {
    use http::HeaderName;

    pub const PROTOCOL_VERSION: HeaderName = HeaderName::from_static(super::PROTOCOL_VERSION);
    pub const METHOD: HeaderName = HeaderName::from_static(super::METHOD);
    pub const NAME: HeaderName = HeaderName::from_static(super::NAME);
    pub const SESSION_ID: HeaderName = HeaderName::from_static(super::SESSION_ID);
    pub const LAST_EVENT_ID: HeaderName = HeaderName::from_static(super::LAST_EVENT_ID);
}

/// The standard headers of one request (name, value): `Mcp-Method` and, where the method has
/// one, `Mcp-Name`; made without allocating when the values are plain.
pub type Standard<'m> = [Option<(HeaderName, Cow<'m, str>)>; 2];

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
pub fn standard(message: &Value) -> Vec<(HeaderName, Cow<'_, str>)> {
    standard_in(message).into_iter().flatten().collect()
}

/// [`standard`] as [`Standard`] (none for a message without a method).
fn standard_in(message: &Value) -> Standard<'_> {
    match message["method"].as_str() {
        Some(method) => standard_of(method, &message["params"]),
        None => [None, None],
    }
}

/// [`standard`] of a request of `method` with `params`, for a sender that has not built the
/// message (the aggregate writes its upstream requests straight from the client's params).
pub fn standard_of<'m>(method: &'m str, params: &'m Value) -> Standard<'m> {
    standard_named(method, name_source(method).and_then(|f| params[f].as_str()))
}

/// [`standard_of`] of a request whose `params` name (or URI, for `resources/read`) is `name`:
/// for a sender or checker that has not parsed the params.
pub fn standard_named<'m>(method: &'m str, name: Option<&'m str>) -> Standard<'m> {
    // Method names are ASCII tokens; one no header can carry is mirrored by nothing (the server
    // then refuses the method itself), never by a header the value was squeezed into.
    let method_header = match (encode_value(method), method.is_empty()) {
        (Cow::Borrowed(plain), false) => Some((names::METHOD, Cow::Borrowed(plain))),
        _ => None,
    };
    let name = name.filter(|_| name_source(method).is_some());
    [method_header, name.map(|v| (names::NAME, encode_value(v)))]
}

/// Checks the standard headers against the body (what an intermediary that reads the body must
/// do): `get` looks a header up by lowercase name. `Err` is the `-32020` message.
pub fn check_standard<'a>(
    message: &Value,
    get: impl Fn(&HeaderName) -> Option<&'a [u8]>,
) -> Result<(), String> {
    check_pairs(standard_in(message), get)
}

/// [`check_standard`] of a request of `method` whose params name `name` (see [`standard_named`]).
pub fn check_standard_named<'a>(
    method: &str,
    name: Option<&str>,
    get: impl Fn(&HeaderName) -> Option<&'a [u8]>,
) -> Result<(), String> {
    check_pairs(standard_named(method, name), get)
}

fn check_pairs<'a>(
    expected: Standard<'_>,
    get: impl Fn(&HeaderName) -> Option<&'a [u8]>,
) -> Result<(), String> {
    for (name, expected) in expected.into_iter().flatten() {
        let Some(raw) = get(&name) else {
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
        assert_eq!(h[0], (names::METHOD, Cow::Borrowed("tools/call")));
        assert_eq!(h[1].0, names::NAME);
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
    fn a_header_that_disagrees_with_the_body_is_a_mismatch() {
        let call = json!({"method": "tools/call", "params": {"name": "a"}});
        let ok = |n: &HeaderName| match n.as_str() {
            METHOD => Some(&b"tools/call"[..]),
            NAME => Some(&b"=?base64?YQ==?="[..]),
            _ => None,
        };
        assert!(check_standard(&call, ok).is_ok());
        let wrong = |n: &HeaderName| match n.as_str() {
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
