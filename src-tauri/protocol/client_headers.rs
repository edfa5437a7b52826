//! The HTTP headers of a session's requests: the era's own (`Accept`, `MCP-Protocol-Version`,
//! a legacy `Mcp-Session-Id`; a POST's `Content-Type`) and, for a modern request, those mirrored
//! from its body (`Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`).

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use serde_json::Value;

use super::super::era::{Era, SUPPORTED_VERSIONS};
use super::super::headers::{self, names, Standard};
use super::{Client, Transport};

/// Header values that are the same on every request, made once.
const ACCEPT_BOTH: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

impl<T: Transport> Client<T> {
    /// The headers of one request: a POST of `message` (the era's own, its `Content-Type`, and
    /// for a modern request those mirrored from the body), or with `None` a GET or DELETE.
    pub fn headers(&self, message: Option<&Value>) -> HeaderMap {
        let Some(m) = message else {
            return self.era_headers(false);
        };
        let mut h = self.post_headers(m["method"] == "initialize");
        // Mirrored from a modern message's body (one without modern `_meta` has none).
        if self.era == Era::Modern {
            for (name, value) in self.schemas.request_headers(m) {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    h.insert(name, v);
                }
            }
        }
        h
    }

    /// [`Client::headers`] of the request of `method` with `params` this session sends (modern:
    /// with its own `_meta`), without that message being built: what a caller that writes the
    /// body itself sends with it.
    pub fn request_headers(&self, method: &str, params: &Value) -> HeaderMap {
        let mut h = self.named_headers(method, headers::standard_of(method, params));
        if self.era == Era::Modern {
            for (name, value) in self.schemas.param_headers(method, params) {
                if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_str(&value))
                {
                    h.insert(n, v);
                }
            }
        }
        h
    }

    /// [`Client::request_headers`] of a call of the tool or prompt `name` that mirrors none of
    /// its arguments (see [`Client::mirrors_arguments`]): what a caller that has not parsed the
    /// params sends.
    pub fn call_headers(&self, method: &str, name: &str) -> HeaderMap {
        self.named_headers(method, headers::standard_named(method, Some(name)))
    }

    /// Whether a modern call of `method` to `name` mirrors arguments in `Mcp-Param-*` headers
    /// (its tool's schema has `x-mcp-header` parameters).
    pub fn mirrors_arguments(&self, method: &str, name: &str) -> bool {
        self.era == Era::Modern && self.schemas.annotated(method, name)
    }

    /// A POST's headers, and for a modern request the `standard` ones.
    fn named_headers(&self, method: &str, standard: Standard) -> HeaderMap {
        let mut h = self.post_headers(method == "initialize");
        if self.era == Era::Modern {
            for (name, value) in standard.into_iter().flatten() {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    h.insert(name, v);
                }
            }
        }
        h
    }

    /// The era's headers and `Content-Type` of a POST: once the session is open, a copy of those
    /// it made then (they do not change after; most requests are POSTs).
    fn post_headers(&self, initialize: bool) -> HeaderMap {
        if initialize || self.post_copy.is_empty() {
            let mut h = self.era_headers(initialize);
            h.insert(CONTENT_TYPE, JSON);
            return h;
        }
        self.post_copy.clone()
    }

    /// Makes the copy [`Client::post_headers`] hands out, when the session has opened.
    pub(super) fn opened(&mut self) {
        self.post_copy = self.post_headers(false);
    }

    /// `Accept`, the negotiated version (not on a legacy `initialize`, which negotiates it) and
    /// a legacy session's id.
    fn era_headers(&self, initialize: bool) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(8);
        h.insert(ACCEPT, ACCEPT_BOTH);
        let before_init = self.era == Era::Legacy && self.session.is_none() && initialize;
        if !before_init {
            // The versions the broker speaks are static: no copy of the text per request.
            let known = SUPPORTED_VERSIONS.iter().find(|v| **v == self.version);
            let version = match known {
                Some(v) => Ok(HeaderValue::from_static(v)),
                None => HeaderValue::from_str(&self.version),
            };
            if let Ok(v) = version {
                h.insert(names::PROTOCOL_VERSION, v);
            }
        }
        // As the server gave it, when a header may carry it back (visible ASCII).
        if let Some(s) = self.session.as_ref().filter(|s| s.to_str().is_ok()) {
            h.insert(names::SESSION_ID, s.clone());
        }
        h
    }
}
