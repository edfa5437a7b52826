//! Whether JSON read by skipping is JSON the full parse reads. serde_json checks the syntax of
//! what it skips (a `RawValue`, an ignored field) but not what its full parse into a `Value`
//! refuses beyond it: a number out of `f64`'s range (`1e400`), a lone surrogate escape
//! (`"\ud800"`), nesting past its limit of 128, bad UTF-8 inside a skipped string. One pass over
//! the bytes refuses any body that might hold one of those (a number `f64` cannot hold, any
//! surrogate escape, deep nesting, bad UTF-8); such bodies are rare and take the full route.

/// The deepest nesting let through: serde_json refuses a 128th level.
const MAX_DEPTH: usize = 127;
/// The longest number let through unread: 300 digits stay below 1e300, well inside `f64`.
const MAX_NUMBER: usize = 300;

/// `body` as text when it may take a text route: one object (a derive reads an array as the
/// fields in order) holding nothing the full parse refuses that a skipping read accepts
/// ([`plain`]). The text is checked UTF-8, so a read of it (`serde_json::from_str`) need not
/// check its strings again.
pub(super) fn one_object_the_full_parse_reads(body: &[u8]) -> Option<&str> {
    let object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let text = std::str::from_utf8(body).ok()?;
    (object && plain(body)).then_some(text)
}

/// Whether `body` (valid UTF-8) holds nothing the full parse refuses that a skipping read
/// accepts (its syntax is left to that read).
fn plain(body: &[u8]) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        match b {
            b'"' => match string_end(body, i + 1) {
                Some(end) => i = end,
                None => return false,
            },
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let number = body[i..]
                    .iter()
                    .take_while(|b| matches!(b, b'-' | b'+' | b'.' | b'0'..=b'9' | b'e' | b'E'));
                let (len, exponent) = number.fold((0, false), |(n, e), b| {
                    (n + 1, e || matches!(b, b'e' | b'E'))
                });
                if (exponent || len > MAX_NUMBER) && !finite(&body[i..i + len]) {
                    return false;
                }
                i += len;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    true
}

/// Whether a number's text is one `f64` holds (serde_json refuses one past its range; its
/// parse rounds correctly, as Rust's does).
fn finite(number: &[u8]) -> bool {
    let parsed = std::str::from_utf8(number)
        .ok()
        .and_then(|n| n.parse::<f64>().ok());
    parsed.is_some_and(f64::is_finite)
}

/// The index of the closing quote of the string whose text starts at `i`; `None` at a
/// surrogate escape (`\uD800`–`\uDFFF`, paired or not) or when the string does not end.
fn string_end(body: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i += memchr::memchr2(b'"', b'\\', body.get(i..)?)?;
        if body[i] == b'"' {
            return Some(i);
        }
        if body.get(i + 1) == Some(&b'u') {
            let hex = body.get(i + 2..i + 4)?;
            let surrogate = matches!(hex[0], b'd' | b'D')
                && matches!(hex[1], b'8' | b'9' | b'a'..=b'f' | b'A'..=b'F');
            if surrogate {
                return None;
            }
        }
        i += 2; // the backslash and the escaped character
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_full_parse_refuses_beyond_syntax_is_not_plain() {
        let deep = format!("{}{}", "[".repeat(128), "]".repeat(128));
        let refused = [
            r#"{"n":1e400}"#,
            r#"{"n":-2E+309}"#,
            r#"{"s":"\ud800"}"#,
            r#"{"s":"\uDE00x"}"#,
            r#"{"s":"\ud83d\ude00"}"#,
            deep.as_str(),
        ];
        for body in refused {
            assert!(!plain(body.as_bytes()), "{body}");
            assert!(
                serde_json::from_str::<serde_json::Value>(body).is_err() || body.contains("ud83d"),
                "{body}"
            );
        }
        let long = format!(r#"{{"n":{}}}"#, "9".repeat(400));
        assert!(!plain(long.as_bytes()));
        let bad_utf8 = b"{\"s\":\"\xff\"}";
        assert!(
            one_object_the_full_parse_reads(bad_utf8).is_none(),
            "bad UTF-8"
        );
        assert!(!plain(br#"{"s":"\u"#), "a string that does not end");
    }

    #[test]
    fn ordinary_json_is_plain() {
        let fine = [
            r#"{"jsonrpc":"2.0","id":-1,"result":{"a":[1.5,-0.25,0,true,null],"t":"é \" \\ \n \u00e9 \\ud800"}}"#,
            r#"{"s":"\\"}"#,
            r#"{"e":"1e400 is text here","k":"\"{[["}"#,
            r#"{"n":1e308,"m":-1.5e-300,"i":18446744073709551616,"z":-0.0,"u":1e-400}"#,
        ];
        for body in fine {
            assert!(plain(body.as_bytes()), "{body}");
            serde_json::from_str::<serde_json::Value>(body).unwrap();
        }
        let nested = format!("{}{}", "[".repeat(127), "]".repeat(127));
        assert!(plain(nested.as_bytes()));
    }
}
