//! The one place a failed token-endpoint call becomes words: every error names the server, the
//! URL, the HTTP status and the OAuth error fields (with the likely fix where one is known),
//! never a bare parse error, never a token; and says whether trying later may help.

use oauth2::RequestTokenError;

use super::http::{Answer, Cause, CauseKind, FetchError};
use super::UpstreamError;

/// Why a token request failed, already in words, plus what the caller should do about it.
#[derive(Debug, Clone)]
pub struct TokenFailure {
    pub url: String,
    pub status: Option<u16>,
    pub oauth_error: Option<String>,
    pub detail: String,
    /// Network failure, timeout, 5xx or 429: worth retrying later.
    pub transient: bool,
    /// The transport failure's kind when the request got no answer (else `Other`).
    pub kind: CauseKind,
}

impl TokenFailure {
    /// A failure found before or after the exchange itself (no HTTP status, no OAuth error,
    /// not worth retrying): a bad endpoint, a client that cannot be made, an odd answer.
    pub fn local(url: &str, detail: String) -> TokenFailure {
        TokenFailure {
            url: url.into(),
            status: None,
            oauth_error: None,
            detail,
            transient: false,
            kind: CauseKind::Other,
        }
    }

    pub fn invalid_grant(&self) -> bool {
        self.oauth_error.as_deref() == Some("invalid_grant")
    }

    pub fn into_error(self, server: &str) -> UpstreamError {
        let server = server.to_string();
        match (self.status, self.transient) {
            (None, _) => UpstreamError::Unreachable {
                server,
                url: self.url,
                cause: Cause::new(self.kind, self.detail),
            },
            (Some(_), true) => UpstreamError::Unreachable {
                server,
                url: self.url.clone(),
                cause: Cause::new(self.kind, self.detail),
            },
            (Some(s), false) if (400..500).contains(&s) => UpstreamError::AuthRejected {
                server,
                detail: self.detail,
            },
            (Some(_), false) => UpstreamError::Protocol {
                server,
                detail: self.detail,
            },
        }
    }
}

fn body_shape(a: &Answer) -> String {
    let text = String::from_utf8_lossy(&a.body);
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        "an empty body".into()
    } else if a.content_type.contains("html") || trimmed.starts_with('<') {
        format!(
            "an HTML page (Content-Type \"{}\") instead of JSON",
            a.content_type
        )
    } else {
        match serde_json::from_str::<serde_json::Value>(trimmed) {
            Ok(v) if v.is_object() && v.get("access_token").is_none() => {
                "JSON without an access_token".into()
            }
            Ok(_) => "JSON that is not a valid token response".into(),
            Err(_) => format!(
                "text that is not JSON (Content-Type \"{}\")",
                a.content_type
            ),
        }
    }
}

fn oauth_fields(a: &Answer) -> (Option<String>, Option<String>) {
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(|x| super::hints::readable(x, super::hints::MAX_REMOTE_TEXT))
    };
    (s("error"), s("error_description"))
}

/// Turns an `oauth2` failure plus what the endpoint answered into a [`TokenFailure`].
pub fn describe<TE: oauth2::ErrorResponse>(
    what: &str,
    url: &str,
    answer: &Answer,
    err: RequestTokenError<FetchError, TE>,
) -> TokenFailure {
    if let RequestTokenError::Request(e) = &err {
        let transient = !matches!(
            e,
            FetchError::BadUrl { .. }
                | FetchError::TooLarge { .. }
                | FetchError::CrossOrigin { .. }
        );
        return TokenFailure {
            url: url.into(),
            status: None,
            oauth_error: None,
            detail: format!("{what} at {url} failed: {e}"),
            transient,
            kind: e.cause().kind,
        };
    }
    let status = answer.status;
    let (error, description) = oauth_fields(answer);
    let mut detail = match status {
        Some(s) => format!("{what} at {url} answered HTTP {s}"),
        None => format!("{what} at {url} gave no usable answer"),
    };
    match (&error, &err) {
        (Some(e), _) => {
            detail.push_str(&format!(" with OAuth error \"{e}\""));
            if let Some(d) = &description {
                detail.push_str(&format!(" ({d})"));
            }
            if let Some(fix) = super::hints::for_oauth_error(e, description.as_deref()) {
                detail.push_str(&format!(". Likely fix: {fix}"));
            }
        }
        (None, _) => detail.push_str(&format!(" with {}", body_shape(answer))),
    }
    let transient = status.is_some_and(|s| s >= 500 || s == 429);
    TokenFailure {
        url: url.into(),
        status,
        oauth_error: error,
        detail,
        transient,
        kind: CauseKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth2::basic::BasicErrorResponse;

    fn answer(status: u16, ct: &str, body: &str) -> Answer {
        Answer {
            status: Some(status),
            content_type: ct.into(),
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    fn other() -> RequestTokenError<FetchError, BasicErrorResponse> {
        RequestTokenError::Other("x".into())
    }

    #[test]
    fn failures_name_url_status_and_oauth_fields() {
        let f = describe(
            "token request",
            "https://as/token",
            &answer(
                400,
                "application/json",
                r#"{"error":"invalid_grant","error_description":"expired"}"#,
            ),
            other(),
        );
        assert!(f.invalid_grant());
        assert_eq!(f.detail, "token request at https://as/token answered HTTP 400 with OAuth error \"invalid_grant\" (expired)");
        let f = describe(
            "token request",
            "https://as/token",
            &answer(200, "text/html", "<html>login</html>"),
            other(),
        );
        assert!(
            f.detail.contains("HTTP 200 with an HTML page"),
            "{}",
            f.detail
        );
        let f = describe(
            "token request",
            "https://as/token",
            &answer(200, "application/json", ""),
            other(),
        );
        assert!(f.detail.ends_with("with an empty body"));
        let f = describe(
            "token request",
            "https://as/token",
            &answer(200, "application/json", r#"{"token":"x"}"#),
            other(),
        );
        assert!(f.detail.ends_with("JSON without an access_token"));
        let f = describe(
            "token request",
            "https://as/token",
            &answer(200, "text/plain", "hello"),
            other(),
        );
        assert!(f.detail.contains("not JSON"));
        let f = describe(
            "token request",
            "https://as/token",
            &answer(503, "text/plain", "down"),
            other(),
        );
        assert!(f.transient && f.detail.contains("HTTP 503"));
    }
}
