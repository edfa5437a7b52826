//! Logging: `tracing` to stderr and to a daily file in the OS log dir, filtered `RUST_LOG`-style,
//! with every line passed through [`redact`] on its way out.
//!
//! Architecture Invariant: secrets are kept out of logs twice — structurally (`Secret` has a
//! redacted `Debug`) and by this last-line filter for anything that slipped through as text.

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// Parameter and field names whose values never reach a log line.
const SENSITIVE_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "code_verifier",
    "code",
    "password",
    "api_key",
    "apikey",
    "x-api-key",
    "token",
    "authorization",
    "cookie",
    "set-cookie",
    "secret",
];

const REDACTED: &str = "[redacted]";

/// Lines the file writer may hold before its thread writes them out; beyond that new lines are
/// dropped rather than blocking a request. `tracing-appender`'s default (128 000) preallocates
/// ~4 MB, which alone was a quarter of the headless broker's idle memory.
const FILE_LOG_BUFFER_LINES: usize = 8192;

/// Where log files go: `~/Library/Logs/mcp-auth-broker` on macOS, else
/// `<OS state dir, or local data dir>/mcp-auth-broker/logs`.
pub fn default_log_dir() -> PathBuf {
    if cfg!(target_os = "macos") {
        if let Some(home) = dirs::home_dir() {
            return home.join("Library").join("Logs").join("mcp-auth-broker");
        }
    }
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("mcp-auth-broker")
        .join("logs")
}

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG` is unset. Returns a
/// guard that flushes the file writer when dropped.
pub fn init(
    log_dir: Option<&Path>,
    default_filter: &str,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(Redacting(io::stderr))
        .with_target(false);
    // Owner-only directory and files (`fsutil`): logs name servers, clients and URLs.
    let appender =
        log_dir.and_then(|d| crate::fsutil::DailyLog::new(d, "mcp-auth-broker.log").ok());
    let (file_layer, guard) = match appender {
        Some(appender) => {
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .buffered_lines_limit(FILE_LOG_BUFFER_LINES)
                .finish(appender);
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(Redacting(writer));
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file_layer)
        .try_init();
    guard
}

/// A `MakeWriter` whose writers redact each chunk before passing it on.
#[derive(Clone)]
pub struct Redacting<M>(pub M);

pub struct RedactingWriter<W>(W);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(self.0.make_writer())
    }
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Keys that also occur in ordinary sentences ("token: fetched", "code: expired"): after one
/// of these in prose (`key: value`, unquoted), a value that is an ordinary word is kept.
const PROSE_KEYS: &[&str] = &["token", "code"];

/// Replaces the values of sensitive `key=value` / `"key": "value"` pairs and `Bearer` tokens.
pub fn redact(line: &str) -> Cow<'_, str> {
    let lower = line.to_ascii_lowercase();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    for key in SENSITIVE_KEYS {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(key) {
            let start = from + pos;
            from = start + key.len();
            cuts.extend(value_after(line, &lower, key, start));
        }
    }
    let mut from = 0;
    while let Some(pos) = lower[from..].find("bearer ") {
        let start = from + pos + "bearer ".len();
        from = start;
        let len = line[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '}'))
            .unwrap_or(line.len() - start);
        if len > 0 && &line[start..start + len] != REDACTED {
            cuts.push((start, start + len));
        }
    }
    if cuts.is_empty() {
        return Cow::Borrowed(line);
    }
    cuts.sort();
    let mut out = String::with_capacity(line.len());
    let mut at = 0;
    for (s, e) in cuts {
        if s < at {
            at = at.max(e);
            continue;
        }
        out.push_str(&line[at..s]);
        out.push_str(REDACTED);
        at = e;
    }
    out.push_str(&line[at..]);
    Cow::Owned(out)
}

/// The span of the value after the sensitive `key` found at `start`, if `key` is a whole word
/// followed by `=` or `:` and the value is not already redacted nor an ordinary word in prose.
fn value_after(line: &str, lower: &str, key: &str, start: usize) -> Option<(usize, usize)> {
    let from = start + key.len();
    if start > 0 && is_word(lower.as_bytes()[start - 1]) {
        return None;
    }
    let after = &lower.as_bytes()[from..];
    let mut i = 0;
    if after.first() == Some(&b'"') {
        i += 1;
    }
    while after.get(i) == Some(&b' ') {
        i += 1;
    }
    let separator = *after.get(i).filter(|b| matches!(b, b'=' | b':'))?;
    i += 1;
    let spaced = after.get(i) == Some(&b' ');
    let mut quoted = after.first() == Some(&b'"');
    while matches!(after.get(i), Some(b' ') | Some(b'"') | Some(b'\'')) {
        quoted |= after[i] != b' ';
        i += 1;
    }
    // "Authorization: Bearer x" — skip the scheme word, redact the credential.
    if lower[from + i..].starts_with("bearer ") || lower[from + i..].starts_with("basic ") {
        i += lower[from + i..].find(' ').unwrap_or(0) + 1;
    }
    let value_start = from + i;
    let len = line[value_start..]
        .find(['&', '"', '\'', ',', '}', ')', ' ', '\n', ';'])
        .unwrap_or(line.len() - value_start);
    let value = &line[value_start..value_start + len];
    let prose = PROSE_KEYS.contains(&key) && separator == b':' && spaced && !quoted;
    if len == 0 || value == REDACTED || (prose && is_ordinary_word(value)) {
        return None;
    }
    Some((value_start, value_start + len))
}

/// A short word of letters (and `_`), capitalised at most: prose, not a credential (every
/// token, key or code the broker or an upstream issues is longer or has digits or symbols).
fn is_ordinary_word(value: &str) -> bool {
    value.len() <= 20
        && value
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_lowercase() || b == b'_' || (i == 0 && b.is_ascii_uppercase()))
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_bearer_tokens_and_sensitive_parameters() {
        let cases = [
            ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
            (
                "body=grant_type=authorization_code&code=SplxlOB&code_verifier=dBjftJeZ4",
                "SplxlOB",
            ),
            (
                "body=grant_type=authorization_code&code=SplxlOB&code_verifier=dBjftJeZ4",
                "dBjftJeZ4",
            ),
            (
                r#"{"access_token":"tok-123","refresh_token": "rt-456"}"#,
                "tok-123",
            ),
            (
                r#"{"access_token":"tok-123","refresh_token": "rt-456"}"#,
                "rt-456",
            ),
            ("client_secret=s3cr3t", "s3cr3t"),
            ("x-api-key: key-999", "key-999"),
        ];
        for (line, secret) in cases {
            let out = redact(line);
            assert!(!out.contains(secret), "{line:?} leaked {secret:?}: {out}");
            assert!(out.contains("[redacted]"), "{out}");
        }
    }

    #[test]
    fn ordinary_words_after_token_or_code_in_prose_are_kept_and_credentials_are_not() {
        for line in [
            "demo: client-credentials token: fetched, valid for 3600 s",
            "the upstream refused a fresh token: invalid_grant (refresh token expired)",
            "sign-in failed, code: Expired",
        ] {
            assert_eq!(redact(line), line, "over-matched");
        }
        for (line, secret) in [
            ("token: mab_at_Zk3xQ9vLr2", "mab_at_Zk3xQ9vLr2"),
            (
                "token: eyJhbGciOiJSUzI1NiJ9.e30.sig",
                "eyJhbGciOiJSUzI1NiJ9.e30.sig",
            ),
            (
                "token: abcdefghijklmnopqrstuvwxyzabcdef",
                "abcdefghijklmnopqrstuvwxyzabcdef",
            ),
            ("code: 9f8e7d", "9f8e7d"),
            ("token=fetched", "fetched"),
            (r#"{"token": "fetched"}"#, "fetched"),
            ("password: hunter", "hunter"),
            ("secret: letmein", "letmein"),
        ] {
            let out = redact(line);
            assert!(!out.contains(secret), "{line:?} leaked {secret:?}: {out}");
        }
    }

    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_through_the_subscriber_are_redacted() {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(super::Redacting(move || sink.clone()))
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(header = "Bearer eyJhbGciOi.payload.sig", "proxying");
            tracing::warn!(
                "token endpoint said {}",
                r#"{"access_token":"at-777","expires_in":3600}"#
            );
            tracing::error!(body = "code=abc123&code_verifier=ver456", "exchange failed");
        });
        let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        for secret in ["eyJhbGciOi", "at-777", "abc123", "ver456"] {
            assert!(!out.contains(secret), "leaked {secret}: {out}");
        }
        assert!(
            out.contains("proxying")
                && out.contains("exchange failed")
                && out.contains("expires_in"),
            "{out}"
        );
    }

    #[test]
    fn a_word_that_merely_looks_like_a_secret_stays_but_the_credential_goes() {
        // Found by the log_redaction fuzz target: prose is not a credential position.
        let out = redact("codiveifuzzsecret123:di3 Authorization: Bearer fuzzsecret123 done");
        assert!(out.starts_with("codiveifuzzsecret123:di3"), "{out}");
        assert!(
            out.contains("Authorization: Bearer [redacted] done"),
            "{out}"
        );
    }

    #[test]
    fn redact_leaves_harmless_lines_and_grant_types_alone() {
        assert_eq!(
            redact("server github healthy in 12 ms"),
            "server github healthy in 12 ms"
        );
        assert!(redact("grant_type=authorization_code").contains("authorization_code"));
    }
}
