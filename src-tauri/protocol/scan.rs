//! Whether JSON read by skipping is JSON the full parse reads. serde_json checks the syntax of
//! what it skips (a `RawValue`, an ignored field) but not what its full parse into a `Value`
//! refuses beyond it: a number out of `f64`'s range (`1e400`), a lone surrogate escape
//! (`"\ud800"`), nesting past its limit of 128, bad UTF-8 inside a skipped string. One pass over
//! the bytes refuses any body that might hold one of those (any exponent, any very long number,
//! any surrogate escape, deep nesting, bad UTF-8); such bodies are rare and take the full route.

/// The deepest nesting let through (serde_json refuses past 128).
const MAX_DEPTH: usize = 100;
/// The longest number let through: 300 digits stay below 1e300, well inside `f64`.
const MAX_NUMBER: usize = 300;

/// Whether `body` holds nothing the full parse refuses that a skipping read accepts (its syntax
/// is left to that read).
pub(super) fn plain(body: &[u8]) -> bool {
    if std::str::from_utf8(body).is_err() {
        return false;
    }
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
                if exponent || len > MAX_NUMBER {
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
        let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        let refused = [
            r#"{"n":1e400}"#,
            r#"{"n":1E2}"#,
            r#"{"s":"\ud800"}"#,
            r#"{"s":"\uDE00x"}"#,
            r#"{"s":"\ud83d\ude00"}"#,
            deep.as_str(),
        ];
        for body in refused {
            assert!(!plain(body.as_bytes()), "{body}");
            assert!(
                serde_json::from_str::<serde_json::Value>(body).is_err()
                    || body.contains(['e', 'E', 'd', 'D']),
                "{body}"
            );
        }
        let long = format!(r#"{{"n":{}}}"#, "9".repeat(400));
        assert!(!plain(long.as_bytes()));
        assert!(!plain(b"{\"s\":\"\xff\"}"), "bad UTF-8");
        assert!(!plain(br#"{"s":"\u"#), "a string that does not end");
    }

    #[test]
    fn ordinary_json_is_plain() {
        let fine = [
            r#"{"jsonrpc":"2.0","id":-1,"result":{"a":[1.5,-0.25,0,true,null],"t":"é \" \\ \n \u00e9 \\ud800"}}"#,
            r#"{"s":"\\"}"#,
            r#"{"e":"1e400 is text here","k":"\"{[["}"#,
        ];
        for body in fine {
            assert!(plain(body.as_bytes()), "{body}");
            serde_json::from_str::<serde_json::Value>(body).unwrap();
        }
        let nested = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(plain(nested.as_bytes()));
    }
}
