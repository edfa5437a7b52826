//! Sign-in failures in words a person can act on: a remote party's error text made safe and
//! readable, and the likely fix for the refusals whose fix is known (pure; every sign-in error
//! path and the token-request words use these, so a fix is named the same way everywhere).

/// The most characters of a remote party's error text that are kept.
pub const MAX_REMOTE_TEXT: usize = 300;

/// Text from a remote party, safe to show on one line: every control character (CR/LF, tabs,
/// escapes) becomes a space, runs of spaces collapse, and the length is bounded. Deleting the
/// control characters instead would glue the words of a multi-line message together
/// ("supported.Trace ID").
pub fn readable(text: &str, max: usize) -> String {
    let mut out = String::new();
    let (mut space, mut kept) = (false, 0);
    for c in text.chars() {
        if kept >= max {
            break;
        }
        if c.is_control() || c.is_whitespace() {
            space = kept > 0;
            continue;
        }
        if space && kept + 1 < max {
            out.push(' ');
            kept += 1;
        }
        space = false;
        out.push(c);
        kept += 1;
    }
    out
}

/// The likely fix for an OAuth error an authorization server answered, when one is known.
pub fn for_oauth_error(error: &str, description: Option<&str>) -> Option<&'static str> {
    let description = description.unwrap_or("");
    // Entra ID's v2 endpoints (and others) refuse RFC 8707 `resource`; Entra says so with
    // AADSTS901002, sometimes under another error code.
    if error == "invalid_target" || description.contains("AADSTS901002") {
        return Some(
            "the authorization server does not accept the \"resource\" parameter: set \"send_resource\": false for this server",
        );
    }
    None
}

/// `error` and its description in the words every sign-in error uses: `invalid_target
/// (description)`, then the likely fix when one is known.
pub fn oauth_refusal(error: &str, description: Option<&str>) -> String {
    let mut out = readable(error, 100);
    if let Some(d) = description.map(|d| readable(d, MAX_REMOTE_TEXT)) {
        if !d.is_empty() {
            out.push_str(&format!(" ({d})"));
        }
    }
    if let Some(fix) = for_oauth_error(error, description) {
        out.push_str(&format!(". Likely fix: {fix}"));
    }
    out
}

/// Why a sign-in is refused when the metadata does not advertise PKCE S256, and the way
/// around it the config offers.
pub fn pkce_not_advertised(issuer: &str, advertised: Option<&[String]>) -> String {
    let advertised = match advertised {
        None => "absent".to_string(),
        Some(list) => format!("{list:?}"),
    };
    format!(
        "refusing to sign in: the authorization server {issuer} does not advertise PKCE S256 in its metadata (code_challenge_methods_supported is {advertised}), and the MCP spec requires clients to refuse such servers. Likely fix: if the server does support PKCE (Microsoft Entra ID does, without saying so), set \"authorization_url\" and \"token_url\" for this server: configured endpoints bypass the metadata check (the broker always sends PKCE S256)"
    )
}

/// The warning for endpoints guessed from the server's origin (no metadata anywhere).
pub fn guessed_endpoints(authorize: &str, token: &str) -> String {
    format!(
        "no OAuth metadata was found, so the sign-in endpoints were guessed from the server's origin (the MCP 2025-03-26 defaults): {authorize} and {token}. If the sign-in page does not load, set \"authorization_url\" and \"token_url\" for this server (from its documentation)"
    )
}

/// The refusal when the guessed authorization endpoint does not exist.
pub fn guessed_endpoint_missing(authorize: &str, status: u16) -> String {
    format!(
        "no OAuth metadata was found, and the guessed authorization endpoint {authorize} (the MCP 2025-03-26 default) answers HTTP {status}. Likely fix: set \"authorization_url\" and \"token_url\" for this server (from its documentation)"
    )
}

/// The refusal of an interactive sign-in while the config leaves the flow open.
pub fn choose_flow(evidence: &[String]) -> String {
    format!(
        "the config allows several flows ({}). Likely fix: choose one before signing in: set \"oauth_flow\": \"authorization_code\" to sign in in the browser, or \"client_credentials\" for a machine-to-machine client",
        evidence.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_become_spaces_instead_of_gluing_words() {
        let text = "AADSTS901002: The 'resource' request parameter is not supported.\r\nTrace ID: 1\r\n\tCorrelation ID: 2\u{1b}[0m";
        assert_eq!(
            readable(text, 300),
            "AADSTS901002: The 'resource' request parameter is not supported. Trace ID: 1 Correlation ID: 2 [0m"
        );
        assert_eq!(readable("  a\n\nb  ", 300), "a b");
        assert_eq!(readable(&"x".repeat(500), 300).chars().count(), 300);
    }

    #[test]
    fn a_refused_resource_names_send_resource_false() {
        let said = oauth_refusal("invalid_target", Some("AADSTS901002: no.\r\nTrace ID: 1"));
        assert!(
            said.starts_with("invalid_target (AADSTS901002: no. Trace ID: 1). Likely fix:"),
            "{said}"
        );
        assert!(said.contains("\"send_resource\": false"), "{said}");
        let entra_other_code = for_oauth_error("invalid_request", Some("AADSTS901002: no"));
        assert!(entra_other_code.is_some());
        assert_eq!(oauth_refusal("access_denied", None), "access_denied");
    }

    #[test]
    fn the_pkce_refusal_names_the_configured_endpoints_that_bypass_it() {
        let said = pkce_not_advertised("https://login.example.com/t/v2.0", None);
        assert!(said.contains("is absent"), "{said}");
        assert!(
            said.contains("\"authorization_url\" and \"token_url\""),
            "{said}"
        );
    }
}
