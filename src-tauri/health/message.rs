//! The words a status shows for upstream answers, and keeping secrets out of them: a failed
//! request's status, challenge and body in one line, transport errors with their causes, and
//! the token scrubbed from anything shown. Reading JSON-RPC and SSE is the protocol layer's
//! (`crate::protocol`); this is only health's own vocabulary.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, WWW_AUTHENTICATE};

use super::probe::{ProbeError, MAX_BODY};
use crate::protocol::client::ClientError;
use crate::upstream::Credential;

pub(super) fn headers(credential: &Credential) -> Result<HeaderMap, ProbeError> {
    let mut map = credential.header_map().map_err(ProbeError::Protocol)?;
    map.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    Ok(map)
}

/// Removes the token from text that will be shown.
pub(super) fn scrub(mut text: String, secrets: &[String]) -> String {
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        text = text.replace(secret.as_str(), "[redacted]");
    }
    text
}

/// Every secret value `credential` sends (token and configured header values), for [`scrub`].
pub(super) fn secrets_of(credential: &Credential) -> Vec<String> {
    let headers = credential
        .headers
        .iter()
        .map(|(_, v)| v.expose().to_string());
    credential
        .bearer
        .iter()
        .map(|b| b.expose().to_string())
        .chain(headers)
        .collect()
}

/// The error for a non-2xx answer to `what`, with the upstream's own words.
pub(super) async fn failure(
    response: reqwest::Response,
    what: &str,
    secrets: &[String],
) -> ProbeError {
    let status = response.status().as_u16();
    let challenge: Vec<String> = response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let text = read_capped(response, 2048).await.unwrap_or_default();
    status_error(status, what, &challenge, &text, secrets)
}

/// What a status means for health: 401/403 the credential was refused, 5xx the server is down,
/// anything else a protocol error; the detail is "HTTP 401 Unauthorized (challenge): body".
fn status_error(
    status: u16,
    what: &str,
    challenge: &[String],
    body: &str,
    secrets: &[String],
) -> ProbeError {
    let shown = reqwest::StatusCode::from_u16(status)
        .map(|s| s.to_string())
        .unwrap_or_else(|_| status.to_string());
    let mut detail = format!("HTTP {shown}");
    if !challenge.is_empty() {
        detail.push_str(&format!(" ({})", challenge.join(", ")));
    }
    let text = snippet(body);
    if !text.is_empty() {
        detail.push_str(&format!(": {text}"));
    }
    let detail = scrub(detail, secrets);
    match status {
        401 | 403 => ProbeError::Rejected { status, detail },
        500..=599 => ProbeError::Unreachable(format!("the server answered {detail}")),
        _ => ProbeError::Protocol(format!("{what} answered {detail}")),
    }
}

/// A protocol client's error as a probe's, in the same words and without the token.
pub(super) fn from_client_error(e: ClientError, secrets: &[String]) -> ProbeError {
    match e {
        ClientError::Status {
            what,
            status,
            challenge,
            detail,
        } => status_error(status, &what, &challenge, &detail, secrets),
        ClientError::Unreachable(cause) => ProbeError::Unreachable(scrub(cause, secrets)),
        ClientError::Protocol(detail) => ProbeError::Protocol(scrub(detail, secrets)),
    }
}

pub(super) async fn read_capped(
    response: reqwest::Response,
    cap: usize,
) -> Result<String, ProbeError> {
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ProbeError::Unreachable(format!("the response broke off: {}", chain(&e)))
        })?;
        body.extend_from_slice(&chunk);
        if body.len() > cap {
            if cap < MAX_BODY {
                body.truncate(cap);
                break;
            }
            return Err(ProbeError::Protocol(format!(
                "the response is larger than {cap} bytes"
            )));
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// At most 200 characters of upstream text on one line, for a status detail.
pub fn snippet(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// An error and its causes, joined.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Why a request got no answer, for a person.
pub fn describe(e: &reqwest::Error, per_request: Duration) -> String {
    if e.is_timeout() {
        return format!(
            "no answer within {} s ({})",
            per_request.as_secs(),
            chain(e)
        );
    }
    chain(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sent_secret_is_scrubbed_from_shown_text() {
        let credential = Credential {
            bearer: Some(crate::secret::Secret::new("tok-123456")),
            headers: vec![(
                reqwest::header::HeaderName::from_static("x-api-key"),
                crate::secret::Secret::new("key-987654"),
            )],
            dpop: None,
        };
        let text = scrub(
            "bad token tok-123456 and key key-987654".into(),
            &secrets_of(&credential),
        );
        assert_eq!(text, "bad token [redacted] and key [redacted]");
    }

    #[test]
    fn client_errors_read_as_health_words_without_the_token() {
        let secrets = ["tok-123456".to_string()];
        let status = |status: u16| ClientError::Status {
            what: "server/discover".into(),
            status,
            challenge: vec!["Bearer error=\"invalid_token\"".into()],
            detail: "token tok-123456 expired".into(),
        };
        assert_eq!(
            from_client_error(status(401), &secrets),
            ProbeError::Rejected {
                status: 401,
                detail: "HTTP 401 Unauthorized (Bearer error=\"invalid_token\"): token [redacted] expired".into()
            }
        );
        assert!(matches!(
            from_client_error(status(503), &secrets),
            ProbeError::Unreachable(d) if d.starts_with("the server answered HTTP 503")
        ));
        assert!(matches!(
            from_client_error(status(404), &secrets),
            ProbeError::Protocol(d) if d.starts_with("server/discover answered HTTP 404")
        ));
        assert_eq!(
            from_client_error(ClientError::Protocol("bad tok-123456".into()), &secrets),
            ProbeError::Protocol("bad [redacted]".into())
        );
    }

    #[test]
    fn snippets_are_one_short_line() {
        assert_eq!(snippet("a\n  b\tc"), "a b c");
        assert_eq!(snippet(&"x".repeat(500)).chars().count(), 201);
    }
}
