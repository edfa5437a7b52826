//! Protocol versions, the two eras, version negotiation and era detection.

use serde_json::Value;

use super::codes;

/// The modern revision: stateless, per-request `_meta`, no `initialize`.
pub const MODERN_VERSION: &str = "2026-07-28";
/// Versions negotiated with `initialize`, newest first.
pub const LEGACY_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
/// Every version the broker speaks, newest first (what `-32022` lists as `supported`).
pub const SUPPORTED_VERSIONS: [&str; 4] = [
    MODERN_VERSION,
    LEGACY_VERSIONS[0],
    LEGACY_VERSIONS[1],
    LEGACY_VERSIONS[2],
];

/// How a client and a server talk: with an `initialize` handshake and sessions, or stateless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Era {
    /// 2025-03-26 … 2025-11-25: `initialize`, `Mcp-Session-Id`, server→client requests.
    Legacy,
    /// 2026-07-28: `_meta` on every request, `server/discover`, MRTR, `subscriptions/listen`.
    Modern,
}

impl Era {
    /// The era of a version the broker speaks; `None` for any other string. Versions are dates,
    /// so a newer modern revision the broker does not know yet is not guessed at.
    pub fn of(version: &str) -> Option<Era> {
        if version == MODERN_VERSION {
            Some(Era::Modern)
        } else if LEGACY_VERSIONS.contains(&version) {
            Some(Era::Legacy)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Era::Legacy => "legacy",
            Era::Modern => "modern",
        }
    }
}

/// The version answered to a legacy `initialize` asking for `asked`: the same when the broker
/// speaks it as a legacy version, else the newest legacy version (the client then decides).
pub fn negotiate_legacy(asked: &str) -> &'static str {
    LEGACY_VERSIONS
        .iter()
        .find(|v| **v == asked)
        .copied()
        .unwrap_or(LEGACY_VERSIONS[0])
}

/// Whether `version` (from `initialize` results, headers or `_meta`) is one the broker speaks.
pub fn is_supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}

/// What a 4xx answer to a modern request says about the server (the transport's "Backward
/// Compatibility" rule): a recognised modern JSON-RPC error means a modern server (fix the
/// request, or pick a version from `supported`); anything else means fall back to `initialize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detected {
    /// A modern server refused this version; it speaks these instead.
    ModernOtherVersions(Vec<String>),
    /// A modern server refused the request for another modern reason (code, message).
    ModernRefused(i64, String),
    /// Not a modern answer: the server is legacy (or not MCP at all).
    Legacy,
}

/// Reads a 400/404/405 answer's body after a modern request.
pub fn detect(status: u16, body: &[u8]) -> Detected {
    if !matches!(status, 400 | 404 | 405) {
        return Detected::Legacy;
    }
    let Ok(message) = serde_json::from_slice::<Value>(body) else {
        return Detected::Legacy;
    };
    let error = &message["error"];
    let Some(code) = error["code"].as_i64() else {
        return Detected::Legacy;
    };
    let text = error["message"].as_str().unwrap_or("").to_string();
    if code == codes::UNSUPPORTED_PROTOCOL_VERSION {
        return Detected::ModernOtherVersions(versions_in(&error["data"]["supported"]));
    }
    // -32601 is modern only with 404: a legacy server answers unknown methods with it too, but
    // inside a session (and `server/discover` without one is a 400 there).
    let modern =
        codes::MODERN_ONLY.contains(&code) || (code == codes::METHOD_NOT_FOUND && status == 404);
    if modern {
        Detected::ModernRefused(code, text)
    } else {
        Detected::Legacy
    }
}

/// The version strings of a JSON array (`supported`, `supportedVersions`); anything else is none.
pub fn versions_in(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The version to use with a modern server that listed `supported`: the newest both speak.
pub fn pick(supported: &[String]) -> Option<&'static str> {
    SUPPORTED_VERSIONS
        .iter()
        .find(|v| supported.iter().any(|s| s == *v))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_belong_to_their_era_and_unknown_ones_to_none() {
        assert_eq!(Era::of("2026-07-28"), Some(Era::Modern));
        assert_eq!(Era::of("2025-06-18"), Some(Era::Legacy));
        assert_eq!(Era::of("2024-11-05"), None);
        assert_eq!(Era::of("2027-01-01"), None);
    }

    #[test]
    fn a_legacy_initialize_gets_its_own_version_or_the_newest_legacy_one() {
        assert_eq!(negotiate_legacy("2025-03-26"), "2025-03-26");
        assert_eq!(negotiate_legacy("2026-07-28"), "2025-11-25");
        assert_eq!(negotiate_legacy("garbage"), "2025-11-25");
    }

    #[test]
    fn a_modern_error_body_marks_a_modern_server_and_anything_else_legacy() {
        let e = |code: i64| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"error":{{"code":{code},"message":"m","data":{{"supported":["2026-07-28"]}}}}}}"#
            )
        };
        assert_eq!(
            detect(400, e(-32022).as_bytes()),
            Detected::ModernOtherVersions(vec!["2026-07-28".into()])
        );
        assert_eq!(
            detect(400, e(-32020).as_bytes()),
            Detected::ModernRefused(-32020, "m".into())
        );
        assert_eq!(
            detect(404, e(-32601).as_bytes()),
            Detected::ModernRefused(-32601, "m".into())
        );
        assert_eq!(detect(400, e(-32601).as_bytes()), Detected::Legacy);
        assert_eq!(detect(400, e(-32600).as_bytes()), Detected::Legacy);
        assert_eq!(detect(400, b"Bad Request: no session"), Detected::Legacy);
        assert_eq!(detect(405, b""), Detected::Legacy);
        assert_eq!(detect(500, e(-32022).as_bytes()), Detected::Legacy);
    }

    #[test]
    fn the_newest_common_version_is_picked() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(pick(&s(&["2025-06-18", "2026-07-28"])), Some("2026-07-28"));
        assert_eq!(pick(&s(&["2025-06-18"])), Some("2025-06-18"));
        assert_eq!(pick(&s(&["2030-01-01"])), None);
    }
}
