//! Whether a credential header carries a broker credential, whatever its spelling. A delegate
//! server's upstream is a third party: the client's own `Authorization` goes there, so the broker
//! must recognise its tokens and API keys in every form an upstream could read one from (no
//! scheme, odd whitespace, Basic or base64url encoding, percent-encoding, another case, quoted in
//! an auth-param), not only as `Bearer <token>`. The decision is made from what the value
//! contains: a broker prefix in any case, or a word that is (with or without its prefix) a token
//! or key the broker issued.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::crypto::{self, hash};
use super::Issuer;

/// Every prefix of a broker-issued credential.
const PREFIXES: [&str; 4] = [
    crypto::ACCESS_PREFIX,
    crypto::REFRESH_PREFIX,
    crypto::API_KEY_PREFIX,
    crypto::CODE_PREFIX,
];
/// How many decodings deep a value is read (base64 of base64 of …).
const MAX_DEPTH: usize = 3;
/// Shortest word worth decoding (base64 of the shortest prefix is 10 characters).
const MIN_ENCODED: usize = 8;
/// Length of the random part of every broker credential (256 bits, base64url).
const RANDOM_LEN: usize = 43;

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

impl Issuer {
    /// True when `value` (a raw header value) carries a broker access or refresh token, code or
    /// API key in any reading: a broker prefix in any case, or a word that the broker issued
    /// (expired and revoked ones included when the prefix shows; by hash otherwise).
    pub fn carries_credential(&self, value: &[u8]) -> bool {
        let readings = readings(value);
        if readings.iter().any(|r| names_prefix(r)) {
            return true;
        }
        let state = self.lock();
        let issued = |h: &str| {
            state.access.contains_key(h)
                || state.refresh.contains_key(h)
                || state.api_keys.iter().any(|k| k.hash == h)
        };
        let found = readings
            .iter()
            .flat_map(|r| words(r))
            .filter(|w| w.len() >= RANDOM_LEN)
            .any(|w| {
                issued(&hash(w)) || PREFIXES.iter().any(|p| issued(&hash(&format!("{p}{w}"))))
            });
        found
    }
}

/// The texts an upstream could read from `value`: the value itself (invalid UTF-8 replaced), its
/// percent-decoding, and the base64 and base64url decodings of each word, [`MAX_DEPTH`] deep.
pub fn readings(value: &[u8]) -> Vec<String> {
    let raw = String::from_utf8_lossy(value).into_owned();
    let mut out = vec![percent_decoded(&raw), raw];
    let mut next = 0;
    for _ in 0..MAX_DEPTH {
        let end = out.len();
        let mut decoded = Vec::new();
        for reading in &out[next..end] {
            for word in words(reading).filter(|w| w.len() >= MIN_ENCODED) {
                for engine in [&STANDARD, &URL_SAFE] {
                    if let Ok(bytes) = engine.decode(word.trim_end_matches('=')) {
                        decoded.push(String::from_utf8_lossy(&bytes).into_owned());
                    }
                }
            }
        }
        next = end;
        out.extend(decoded);
    }
    out
}

/// True when `text` contains a broker credential prefix, in any letter case.
fn names_prefix(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    PREFIXES.iter().any(|p| lower.contains(p))
}

/// Runs of base64, base64url and token characters (what a token or its encoding is made of).
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/' | '=')))
        .filter(|w| !w.is_empty())
}

/// `%XX` sequences decoded (others left as they are).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_is_found_in_every_encoding_and_case() {
        let token = "mab_at_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
        let b64 = STANDARD.encode(format!("u:{token}"));
        let nested = URL_SAFE.encode(format!("Basic {b64}"));
        for value in [
            token.to_string(),
            format!("Basic {b64}"),
            format!("Bearer {nested}"),
            format!("Bearer {}", token.to_uppercase()),
            format!("Bearer {}", token.replace('_', "%5f")),
        ] {
            assert!(
                readings(value.as_bytes()).iter().any(|r| names_prefix(r)),
                "{value}"
            );
        }
    }

    #[test]
    fn an_ordinary_credential_names_no_prefix() {
        for value in [
            "Bearer client-own-token",
            "Basic dXNlcjpwYXNz",
            "DPoP eyJhbGciOi.x.y",
        ] {
            assert!(
                !readings(value.as_bytes()).iter().any(|r| names_prefix(r)),
                "{value}"
            );
        }
    }

    #[test]
    fn an_issued_key_is_recognised_by_its_random_part_and_an_unknown_word_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = Issuer::open(dir.path(), "http://127.0.0.1:1".parse().unwrap()).unwrap();
        let (_, key) = issuer.create_api_key("t", None).unwrap();
        let random = key.expose().strip_prefix(crypto::API_KEY_PREFIX).unwrap();
        assert!(issuer.carries_credential(format!("Bearer {random}").as_bytes()));
        let unknown = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
        assert!(!issuer.carries_credential(format!("Bearer {unknown}").as_bytes()));
    }
}
