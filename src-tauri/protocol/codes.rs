//! JSON-RPC error codes: the base protocol's, the MCP revisions', and the broker's own.

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Not a valid JSON-RPC request.
pub const INVALID_REQUEST: i64 = -32600;
/// Unknown method (2026-07-28: with HTTP 404).
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Bad parameters (2026-07-28: also "resource not found").
pub const INVALID_PARAMS: i64 = -32602;
/// Internal error.
pub const INTERNAL_ERROR: i64 = -32603;

/// 2026-07-28: the HTTP request headers do not match the body, or a required one is missing.
pub const HEADER_MISMATCH: i64 = -32020;
/// 2026-07-28: the request needs a client capability it did not declare.
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
/// 2026-07-28: the requested protocol version is not served; `data.supported` lists those that are.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
/// 2025-11-25: the request needs the person to open a URL first (URL-mode elicitation).
pub const URL_ELICITATION_REQUIRED: i64 = -32042;

/// The errors only a modern (2026-07-28) server sends: seeing one in a 4xx body means the server
/// is modern and the request needs fixing, not a fallback to `initialize`.
pub const MODERN_ONLY: [i64; 3] = [
    HEADER_MISMATCH,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    UNSUPPORTED_PROTOCOL_VERSION,
];
