//! Opening the system browser, replaceably.
//!
//! Architecture Invariant: a URL reaches the browser only through [`Opener::open`], which
//! validates it first (http/https only, no userinfo) and hands over the re-serialised form,
//! never the text it was given.

use std::fmt;
use std::sync::Arc;

use url::Url;

use crate::urlcheck::{check_browser_url, UrlProblem};

#[derive(Clone)]
pub enum Opener {
    /// The system browser via `webbrowser` (which honours `BROWSER` on Linux).
    System,
    /// Headless: print the URL to stderr for the person to open.
    Print,
    /// Tests: a function that completes the browser step itself.
    Custom(Arc<dyn Fn(Url) + Send + Sync>),
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("refusing to open a URL that {0}")]
    BadUrl(#[from] UrlProblem),
    #[error("could not start the browser ({0}); open this address by hand: {1}")]
    Launch(String, Url),
}

impl Opener {
    pub fn open(&self, url: &str) -> Result<(), OpenError> {
        let url = check_browser_url(url)?;
        match self {
            Opener::System => webbrowser::open(url.as_str())
                .map_err(|e| OpenError::Launch(e.to_string(), url.clone())),
            Opener::Print => {
                eprintln!("Open this address in a browser to sign in:\n  {url}");
                Ok(())
            }
            Opener::Custom(f) => {
                f(url);
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Opener::System => "Opener::System",
            Opener::Print => "Opener::Print",
            Opener::Custom(_) => "Opener::Custom",
        })
    }
}
