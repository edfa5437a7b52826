//! Paste-back: finishing a sign-in whose browser cannot reach the broker's callback (an SSH host,
//! WSL, a container). The person pastes the address the browser ended on, or just its `code`,
//! and it goes through the callback's own completion ([`Upstream::callback`]): the same
//! single-use `state`, PKCE verifier and `iss` check. Reading the pasted text is pure
//! ([`parse`]); only [`Upstream::paste`] touches the sign-in in flight.

use crate::config::ServerName;

use super::{now, CallbackQuery, Upstream, UpstreamError};
use crate::sync::lock;

/// Why pasted text did not finish a sign-in.
#[derive(Debug, thiserror::Error)]
pub enum PasteError {
    /// The text itself is wrong (the person can paste again; nothing was spent).
    #[error("{0}")]
    Input(String),
    /// The completion ran and failed (as it would have at the callback).
    #[error(transparent)]
    SignIn(#[from] UpstreamError),
}

/// What was pasted, as the callback would have received it.
#[derive(Debug, Clone)]
pub struct Pasted {
    pub query: CallbackQuery,
    /// Only a code was pasted: `state` is the sign-in's own, and there is no `iss`.
    pub bare: bool,
}

const WHOLE_ADDRESS: &str =
    "paste the whole address the browser ended on (it starts with http://127.0.0.1:…/oauth/callback?)";
const WHAT_TO_PASTE: &str = "paste the whole address the browser ended on (it starts with http://127.0.0.1:…/oauth/callback?), or just the value of its code parameter";

/// Reads pasted text for the sign-in started with `state`: a full address, its query string, or
/// a bare code. An address carrying another sign-in's `state` is refused.
pub fn parse(input: &str, state: &str) -> Result<Pasted, PasteError> {
    let text = input.trim();
    let bad = |why: &str| PasteError::Input(format!("{why}; {WHAT_TO_PASTE}"));
    if text.is_empty() {
        return Err(bad("nothing was pasted"));
    }
    let query = if let Ok(url) = url::Url::parse(text) {
        url.query().map(str::to_string).unwrap_or_default()
    } else if text.starts_with('?') || text.contains('=') {
        text.trim_start_matches('?').to_string()
    } else {
        if !text.chars().all(|c| c.is_ascii_graphic() && c != '&') {
            return Err(bad("the pasted text is neither an address nor a code"));
        }
        let query = CallbackQuery {
            code: Some(text.to_string()),
            state: Some(state.to_string()),
            ..CallbackQuery::default()
        };
        return Ok(Pasted { query, bare: true });
    };
    let query: CallbackQuery = callback_params(&query)
        .ok_or_else(|| bad("the pasted address has parameters the broker cannot read"))?;
    if query.code.is_none() && query.error.is_none() {
        return Err(bad("the pasted address has no code parameter"));
    }
    match &query.state {
        None => Err(bad("the pasted address has no state parameter (it may be cut short)")),
        Some(s) if s != state => Err(PasteError::Input(
            "the pasted address belongs to another sign-in: its state does not match the one this sign-in started with. Paste the address from the browser window this sign-in opened, or start the sign-in again".into(),
        )),
        Some(_) => Ok(Pasted { query, bare: false }),
    }
}

/// The callback parameters of a query string (unknown ones ignored, repeats refused).
fn callback_params(query: &str) -> Option<CallbackQuery> {
    let mut q = CallbackQuery::default();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match k.as_ref() {
            "code" => &mut q.code,
            "state" => &mut q.state,
            "iss" => &mut q.iss,
            "error" => &mut q.error,
            "error_description" => &mut q.error_description,
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return None;
        }
    }
    Some(q)
}

impl Upstream {
    /// Finishes the sign-in started with `state` from pasted text, through the callback's own
    /// completion. A bare code is refused (nothing spent) when the authorization server promises
    /// its `iss` in the address: only the whole address can pass that check.
    pub async fn paste(&self, input: &str, state: &str) -> Result<ServerName, PasteError> {
        let pasted = parse(input, state)?;
        let waiting = lock(&self.inner.pending).peek(state, now());
        let iss_supported = waiting.map_err(|e| PasteError::Input(e.to_string()))?;
        if pasted.bare && iss_supported {
            return Err(PasteError::Input(format!("this authorization server names itself in the address it sends the browser to (the iss parameter), which a bare code lacks; {WHOLE_ADDRESS}")));
        }
        Ok(self.callback(&pasted.query).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_callback_address_is_read_as_the_callback_would() {
        let p = parse(
            "  http://127.0.0.1:47823/oauth/callback?code=abc&state=s1&iss=https%3A%2F%2Fas \n",
            "s1",
        )
        .unwrap();
        assert!(!p.bare);
        assert_eq!(p.query.code.as_deref(), Some("abc"));
        assert_eq!(p.query.iss.as_deref(), Some("https://as"));
        let p = parse("?code=abc&state=s1", "s1").unwrap();
        assert_eq!(p.query.code.as_deref(), Some("abc"));
        let p = parse("error=access_denied&state=s1", "s1").unwrap();
        assert_eq!(p.query.error.as_deref(), Some("access_denied"));
    }

    #[test]
    fn a_bare_code_takes_the_sign_ins_own_state() {
        let p = parse("AbC-123_x.y~z", "s1").unwrap();
        assert!(p.bare);
        assert_eq!(p.query.state.as_deref(), Some("s1"));
        assert_eq!(p.query.code.as_deref(), Some("AbC-123_x.y~z"));
    }

    #[test]
    fn another_sign_ins_state_is_refused_by_name() {
        let e = parse("http://127.0.0.1:1/oauth/callback?code=a&state=s2", "s1").unwrap_err();
        assert!(e.to_string().contains("belongs to another sign-in"), "{e}");
    }

    #[test]
    fn unreadable_pastes_say_what_to_paste() {
        for (input, why) in [
            ("", "nothing was pasted"),
            ("two words", "neither an address nor a code"),
            ("http://127.0.0.1:1/oauth/callback?state=s1", "no code"),
            ("http://127.0.0.1:1/oauth/callback?code=a", "no state"),
            ("code=a&code=b&state=s1", "cannot read"),
        ] {
            let e = parse(input, "s1").unwrap_err().to_string();
            assert!(
                e.contains(why) && e.contains("paste the whole address"),
                "{input}: {e}"
            );
        }
    }
}
