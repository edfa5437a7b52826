//! `WWW-Authenticate` parsing (RFC 9110 §11.6.1): several challenges per header or across
//! headers, quoted or unquoted parameter values, case-insensitive scheme and parameter names,
//! token68 challenges. Pure; never fails (garbage yields fewer challenges, not an error).

/// One challenge, e.g. `Bearer resource_metadata="…", scope="a b"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    /// Parameter names lowercased; values unquoted and unescaped.
    pub params: Vec<(String, String)>,
    pub token68: Option<String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the broker needs from an upstream's challenges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BearerInfo {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The Bearer challenge's parameters; when there is no Bearer challenge, `resource_metadata` is
/// still taken from any challenge that carries it (some servers use other schemes' spelling).
pub fn bearer_info(challenges: &[Challenge]) -> Option<BearerInfo> {
    let bearer = challenges
        .iter()
        .find(|c| c.scheme.eq_ignore_ascii_case("bearer"));
    let chosen = bearer.or_else(|| {
        challenges
            .iter()
            .find(|c| c.param("resource_metadata").is_some())
    })?;
    let get = |n: &str| {
        chosen
            .param(n)
            .map(str::to_string)
            .filter(|v| !v.is_empty())
    };
    Some(BearerInfo {
        resource_metadata: get("resource_metadata"),
        scope: get("scope"),
        error: get("error"),
        error_description: get("error_description"),
    })
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ws_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> String {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    /// An unquoted value: everything up to a comma or whitespace (lenient: URLs unquoted).
    fn bare_value(&mut self) -> String {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c != b',' && c != b' ' && c != b'\t')
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    fn quoted(&mut self) -> String {
        self.i += 1; // opening quote
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                other => out.push(other),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Parses every challenge in the given header values, in order.
pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out = Vec::new();
    for value in values {
        parse_one(value, &mut out);
    }
    out
}

fn parse_one(value: &str, out: &mut Vec<Challenge>) {
    let mut c = Cursor {
        s: value.as_bytes(),
        i: 0,
    };
    loop {
        c.skip_ws_commas();
        if c.peek().is_none() {
            return;
        }
        let scheme = c.token();
        if scheme.is_empty() {
            c.i += 1; // skip a stray character
            continue;
        }
        let mut ch = Challenge {
            scheme,
            params: Vec::new(),
            token68: None,
        };
        read_params(&mut c, &mut ch);
        out.push(ch);
    }
}

/// The parameters (or token68) of the challenge `ch`, up to the start of the next challenge.
fn read_params(c: &mut Cursor<'_>, ch: &mut Challenge) {
    loop {
        c.skip_ws_commas();
        let save = c.i;
        let name = c.token();
        if name.is_empty() {
            if c.peek().is_some_and(|b| b != b',') && c.peek().is_some() {
                c.i += 1; // garbage inside a challenge
                continue;
            }
            break;
        }
        c.skip_ws();
        if c.peek() == Some(b'=') {
            c.i += 1;
            // `abc==` is a token68, not a parameter.
            if ch.params.is_empty() && matches!(c.peek(), None | Some(b'=' | b',')) {
                let start = save;
                while c.peek() == Some(b'=') {
                    c.i += 1;
                }
                ch.token68 = Some(String::from_utf8_lossy(&c.s[start..c.i]).into_owned());
                continue;
            }
            c.skip_ws();
            let v = if c.peek() == Some(b'"') {
                c.quoted()
            } else {
                c.bare_value()
            };
            ch.params.push((name.to_ascii_lowercase(), v));
        } else if ch.params.is_empty()
            && ch.token68.is_none()
            && matches!(c.peek(), None | Some(b','))
        {
            ch.token68 = Some(name);
        } else {
            c.i = save; // the start of the next challenge
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: &str) -> Vec<Challenge> {
        parse([v])
    }

    #[test]
    fn bearer_with_quoted_params_is_read() {
        let c = one(
            r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource", scope="files:read files:write""#,
        );
        let info = bearer_info(&c).unwrap();
        assert_eq!(
            info.resource_metadata.as_deref(),
            Some("https://mcp.example.com/.well-known/oauth-protected-resource")
        );
        assert_eq!(info.scope.as_deref(), Some("files:read files:write"));
    }

    #[test]
    fn unquoted_values_and_odd_case_are_accepted() {
        let c = one("bearer Resource_Metadata=https://a.example/prm, error=invalid_token");
        let info = bearer_info(&c).unwrap();
        assert_eq!(
            info.resource_metadata.as_deref(),
            Some("https://a.example/prm")
        );
        assert_eq!(info.error.as_deref(), Some("invalid_token"));
    }

    #[test]
    fn several_challenges_in_one_header_are_split() {
        let c = one(
            r#"Basic realm="x, y", DPoP algs="ES256 PS256", Bearer error="insufficient_scope", scope="a b", resource_metadata="https://r/m""#,
        );
        assert_eq!(
            c.iter().map(|c| c.scheme.as_str()).collect::<Vec<_>>(),
            ["Basic", "DPoP", "Bearer"]
        );
        assert_eq!(c[0].param("realm"), Some("x, y"));
        let info = bearer_info(&c).unwrap();
        assert_eq!(info.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(info.scope.as_deref(), Some("a b"));
        assert_eq!(info.resource_metadata.as_deref(), Some("https://r/m"));
    }

    #[test]
    fn challenges_across_header_values_are_all_kept() {
        let c = parse(["Basic realm=\"r\"", "Bearer scope=\"s\""]);
        assert_eq!(c.len(), 2);
        assert_eq!(bearer_info(&c).unwrap().scope.as_deref(), Some("s"));
    }

    #[test]
    fn escaped_quotes_and_token68_are_handled() {
        let c = one(r#"Bearer error_description="say \"hi\"""#);
        assert_eq!(c[0].param("error_description"), Some(r#"say "hi""#));
        let c = one("Negotiate abc123==, Bearer");
        assert_eq!(c[0].token68.as_deref(), Some("abc123=="));
        assert_eq!(c[1].scheme, "Bearer");
        assert_eq!(bearer_info(&c).unwrap(), BearerInfo::default());
    }

    #[test]
    fn bare_bearer_and_garbage_do_not_panic() {
        assert_eq!(one("Bearer").len(), 1);
        assert!(one("").is_empty());
        let _ = one(r#"==,,"" Bearer x="unterminated"#);
        assert!(bearer_info(&one("Basic realm=\"x\"")).is_none());
    }
}
