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
/// 2025-06-18 … 2025-11-25: `resources/read` of a URI the server does not have (2026-07-28
/// says `INVALID_PARAMS` instead).
pub const RESOURCE_NOT_FOUND: i64 = -32002;

/// Streamable HTTP: the `Mcp-Session-Id` names no session this client may use. The transport
/// mandates HTTP 404 (the client then re-initializes) and leaves the body open; this is the code
/// the official SDKs send with it, so a client reads the broker's 404 as it reads a server's.
/// It means only this: nothing the broker sends about an upstream it cannot use reuses it.
pub const SESSION_NOT_FOUND: i64 = -32001;

/// The broker's own codes, one per reason it cannot use an upstream for a request, in a block
/// no MCP revision or SDK defines (`data.reason` names the same reason in words, `data.server`
/// the server). A `tools/call` gets them as a result with `isError: true` instead, which
/// models show to the person.
///
/// The person must sign in to the upstream (tray, dashboard, `login NAME`, or a sign-in link).
pub const NEEDS_SIGN_IN: i64 = -32031;
/// The upstream could not be reached or answered with a server error.
pub const UPSTREAM_UNREACHABLE: i64 = -32032;
/// The upstream refused the broker's credential (a revoked token, a wrong static key).
pub const UPSTREAM_AUTH_REJECTED: i64 = -32033;
/// The upstream broke the protocol (an answer the broker cannot read).
pub const UPSTREAM_PROTOCOL: i64 = -32034;
/// The server's config cannot be used as it is (a flow to choose, a missing secret).
pub const UPSTREAM_SETUP: i64 = -32035;

/// The errors only a modern (2026-07-28) server sends: seeing one in a 4xx body means the server
/// is modern and the request needs fixing, not a fallback to `initialize`.
pub const MODERN_ONLY: [i64; 3] = [
    HEADER_MISMATCH,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    UNSUPPORTED_PROTOCOL_VERSION,
];
