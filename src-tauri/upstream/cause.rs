//! Why a request to an upstream got no answer, read from the error's structure (reqwest's flags,
//! the I/O error's kind, the resolver's and rustls' own error types) rather than from its text,
//! and kept with the error ([`Cause`]) so the words a person reads (`crate::words`) do not have
//! to guess from a message that changes with the platform, the locale or a dependency.

use std::error::Error as StdError;
use std::fmt;
use std::io;

use super::dns::{ForbiddenAnswer, LookupFailed};

/// The kind of transport failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseKind {
    /// Nothing listens there (the connection was refused).
    Refused,
    /// The server's name has no address (or the lookup itself failed).
    Dns,
    /// The TLS handshake or the certificate failed.
    Tls,
    /// No answer within the deadline.
    Timeout,
    /// Anything else, or a cause that arrived as words only.
    #[default]
    Other,
}

/// A transport failure: its kind and its secret-free words (what `Display` shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub kind: CauseKind,
    pub text: String,
}

impl Cause {
    pub fn new(kind: CauseKind, text: impl Into<String>) -> Cause {
        Cause {
            kind,
            text: text.into(),
        }
    }

    /// The kind and words of a failed reqwest request.
    pub fn of(e: &reqwest::Error) -> Cause {
        let kind = kind_of(e);
        Cause::new(kind, describe(e, kind))
    }

    /// The same kind with other words (more context around the cause).
    pub fn map_text(self, f: impl FnOnce(String) -> String) -> Cause {
        Cause::new(self.kind, f(self.text))
    }
}

/// Words with no kind known: `Other`.
impl From<String> for Cause {
    fn from(text: String) -> Cause {
        Cause::new(CauseKind::Other, text)
    }
}

impl From<&str> for Cause {
    fn from(text: &str) -> Cause {
        Cause::new(CauseKind::Other, text)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The errors under `e`, outermost first. An `io::Error` reports its inner error's source, not
/// the inner error itself, so the errors it wraps (io errors in io errors, rustls' error at the
/// bottom) are added after it.
fn chain<'a>(e: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = e.source();
    while let Some(s) = next {
        out.push(s);
        let mut wrapper = s;
        while let Some(inner) = wrapper
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
        {
            out.push(inner);
            wrapper = inner;
        }
        next = s.source();
    }
    out
}

/// The kind of a failed reqwest request, from its structure.
pub fn kind_of(e: &reqwest::Error) -> CauseKind {
    let chain = chain(e);
    let io_kind = |k: io::ErrorKind| {
        chain.iter().any(|s| {
            s.downcast_ref::<io::Error>()
                .is_some_and(|io| io.kind() == k)
        })
    };
    if chain.iter().any(|s| s.is::<LookupFailed>()) {
        CauseKind::Dns
    } else if chain.iter().any(|s| s.is::<rustls::Error>()) {
        CauseKind::Tls
    } else if e.is_timeout() || io_kind(io::ErrorKind::TimedOut) {
        CauseKind::Timeout
    } else if io_kind(io::ErrorKind::ConnectionRefused) {
        CauseKind::Refused
    } else {
        CauseKind::Other
    }
}

/// A short, secret-free description of a transport failure.
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    describe(e, kind_of(e))
}

fn describe(e: &reqwest::Error, kind: CauseKind) -> String {
    let chain = chain(e);
    let found = |pick: &dyn Fn(&(dyn StdError + 'static)) -> Option<String>| {
        chain.iter().find_map(|s| pick(*s))
    };
    if let Some(refused) = found(&|s| s.downcast_ref::<ForbiddenAnswer>().map(|f| f.to_string())) {
        return refused;
    }
    match kind {
        CauseKind::Refused => "connection refused".into(),
        CauseKind::Timeout => "timed out".into(),
        CauseKind::Dns => found(&|s| s.downcast_ref::<LookupFailed>().map(|l| l.to_string()))
            .unwrap_or_else(|| "the name could not be resolved".into()),
        CauseKind::Tls => found(&|s| s.downcast_ref::<rustls::Error>().map(|t| t.to_string()))
            .map_or_else(|| "TLS failed".into(), |t| format!("TLS failed: {t}")),
        CauseKind::Other if e.is_connect() => "connection failed".into(),
        CauseKind::Other => {
            let mut text = e.to_string();
            let mut next = e.source();
            while let Some(s) = next {
                text = format!("{text}: {s}");
                next = s.source();
            }
            text
        }
    }
}

#[cfg(test)]
#[path = "cause_tests.rs"]
mod tests;
