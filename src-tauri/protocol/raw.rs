//! Upstream answers passed on as the text the upstream wrote. A plain result (one JSON object,
//! the usual answer to a call) is not parsed into a tree and written again: only its envelope is
//! read (`id`, and that it is a result, not an error) and the result's `resultType`; the client's
//! answer is written around the result's own bytes. Anything else (an error, a batch, an odd
//! envelope) is read as a [`Value`], as before.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::LazyLock;

use bytes::Bytes;
use memchr::memmem::Finder;
use serde::de::Deserializer;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::envelope;
use super::mrtr::INPUT_REQUIRED;

/// An upstream's plain result, kept as its text.
#[derive(Debug, Clone)]
pub struct RawResult {
    /// The body the upstream sent.
    body: Bytes,
    /// Where the `result` object is in `body`.
    span: Range<usize>,
    /// The result names its `resultType`, and whether that is `input_required`.
    typed: bool,
    input_required: bool,
    /// The id of the request it answers.
    id: Value,
    /// Write `resultType: "complete"` into it when it names none (for a modern client).
    pub name_type: bool,
}

/// The JSON-RPC answer to one request, as read from a server.
#[derive(Debug)]
pub enum Answer {
    /// The whole answer (`result` or `error`), parsed.
    Value(Value),
    /// A plain result kept as text.
    Raw(RawResult),
}

/// A request's result on its way to the client: built by the broker (or parsed), or an
/// upstream's passed on as text.
#[derive(Debug)]
pub enum Reply {
    Value(Value),
    Raw(RawResult),
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Typed<'a> {
    /// `Some` when the result has the key, even as `null`: the full route then adds no
    /// `resultType` either.
    #[serde(rename = "resultType", borrow, default, deserialize_with = "present")]
    result_type: Option<Option<Cow<'a, str>>>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Cow<'de, str>>>, D::Error> {
    #[derive(Deserialize)]
    struct Named<'a>(#[serde(borrow)] Option<Cow<'a, str>>);
    Named::deserialize(d).map(|named| Some(named.0))
}

/// The `resultType` key as a result's text has it when unescaped.
const RESULT_TYPE: &str = "\"resultType\"";

// Searchers built once: a search with a prepared finder costs little more than the bytes it reads.
/// Finds [`RESULT_TYPE`].
static KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(RESULT_TYPE));
/// Finds a `\u` escape, which could spell any letter of a key or value.
static ESCAPE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("\\u"));
/// Finds the word `input_required`.
static ASKS: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(INPUT_REQUIRED));

/// Whether an answer's JSON text may be `input_required` or lack its `resultType`, so that it
/// must be read: `false` only when `"resultType"` is in it and `input_required` is nowhere in it,
/// written plainly or with a `\u` escape.
pub fn must_be_read(text: &[u8]) -> bool {
    KEY.find(text).is_none() || ASKS.find(text).is_some() || ESCAPE.find(text).is_some()
}

/// A result's `resultType` read from its text alone, where that is certain; `None` needs the
/// second pass. With no `\u` escape (which could spell the key otherwise): no `"resultType"` in
/// it means none; one, as the object's first or last entry with the value `"complete"` (how
/// modern servers write a plain result), means `complete`. A string value `"resultType"` or a
/// key given twice makes two, which takes the pass.
fn typed_by_its_text(text: &str) -> Option<Typed<'static>> {
    let bytes = text.as_bytes();
    if ESCAPE.find(bytes).is_some() {
        return None;
    }
    let mut found = KEY.find_iter(bytes);
    match (found.next(), found.next()) {
        (None, _) => Some(Typed { result_type: None }),
        (Some(at), None) => {
            let rest = after_complete(&text[at..])?;
            let first = text[1..at].trim().is_empty() && rest.starts_with([',', '}']);
            (first || rest == "}").then_some(Typed {
                result_type: Some(Some(Cow::Borrowed("complete"))),
            })
        }
        _ => None,
    }
}

/// What follows `"resultType": "complete"` at the start of `entry` (whitespace trimmed).
fn after_complete(entry: &str) -> Option<&str> {
    let value = entry
        .strip_prefix(RESULT_TYPE)?
        .trim_start()
        .strip_prefix(':')?;
    Some(
        value
            .trim_start()
            .strip_prefix("\"complete\"")?
            .trim_start(),
    )
}

impl RawResult {
    /// The plain result answering `id` in a JSON body; `None` when the body is anything else
    /// (read it as a [`Value`] then: errors, batches, duplicate or odd fields, bad UTF-8).
    pub fn read(body: Bytes, id: &Value) -> Option<RawResult> {
        let whole = super::scan::one_object_the_full_parse_reads(&body)?;
        let envelope: Envelope = serde_json::from_str(whole).ok()?;
        let (Some(got), Some(result), None, None) = (
            envelope.id,
            envelope.result,
            envelope.error,
            envelope.method,
        ) else {
            return None;
        };
        let text = result.get();
        if !text.starts_with('{') || !same_id(got.get(), id) {
            return None;
        }
        let typed = match typed_by_its_text(text) {
            Some(known) => known,
            None => serde_json::from_str(text).ok()?,
        };
        let start = text.as_ptr() as usize - body.as_ptr() as usize;
        Some(RawResult {
            span: start..start + text.len(),
            typed: typed.result_type.is_some(),
            input_required: typed.result_type.flatten().as_deref() == Some(INPUT_REQUIRED),
            id: id.clone(),
            name_type: false,
            body,
        })
    }

    /// The result's own text.
    pub fn text(&self) -> &[u8] {
        &self.body[self.span.clone()]
    }

    pub fn is_input_required(&self) -> bool {
        self.input_required
    }

    /// The result parsed (for a caller that must look inside).
    pub fn to_value(&self) -> Value {
        serde_json::from_slice(self.text()).unwrap_or(Value::Null)
    }

    /// The client's answer to its request `id`: this result, with `resultType: "complete"` put
    /// last when [`RawResult::name_type`] asks for it and the result names none.
    pub fn reply(&self, id: &Value) -> Bytes {
        let text = self.text();
        let mut out = Vec::with_capacity(text.len() + 64);
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        let _ = serde_json::to_writer(&mut out, id);
        out.extend_from_slice(b",\"result\":");
        if self.name_type && !self.typed {
            let inner = &text[1..text.len() - 1];
            out.extend_from_slice(&text[..text.len() - 1]);
            if inner.iter().any(|b| !b.is_ascii_whitespace()) {
                out.push(b',');
            }
            out.extend_from_slice(b"\"resultType\":\"complete\"}");
        } else {
            out.extend_from_slice(text);
        }
        out.push(b'}');
        out.into()
    }
}

/// Whether the id text `got` is `id` (ids compared as JSON values): the broker's own ids are
/// integers, compared without building a value.
fn same_id(got: &str, id: &Value) -> bool {
    match (id.as_u64(), got.parse::<u64>()) {
        (Some(want), Ok(n)) => n == want,
        _ => serde_json::from_str::<Value>(got).is_ok_and(|v| v == *id),
    }
}

impl Answer {
    /// The whole answer as a value.
    pub fn into_value(self) -> Value {
        match self {
            Answer::Value(v) => v,
            Answer::Raw(r) => envelope::result(r.id.clone(), r.to_value()),
        }
    }

    /// Whether it is a modern `input_required` result.
    pub fn asks_for_input(&self) -> bool {
        match self {
            Answer::Value(answer) => {
                let result = &answer["result"];
                result.is_object() && super::mrtr::is_input_required(result)
            }
            Answer::Raw(r) => r.input_required,
        }
    }
}

impl Reply {
    /// The result as a value.
    pub fn into_value(self) -> Value {
        match self {
            Reply::Value(v) => v,
            Reply::Raw(r) => {
                let mut v = r.to_value();
                if let (true, false, Some(map)) = (r.name_type, r.typed, v.as_object_mut()) {
                    map.insert("resultType".into(), Value::String("complete".into()));
                }
                v
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_complete_result_without_the_word_or_an_escape_may_skip_reading() {
        let plain = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"resultType":"complete"}}"#;
        assert!(!must_be_read(plain));
        for text in [
            &br#"{"id":1,"result":{"resultType":"input_required","inputRequests":{}}}"#[..],
            br#"{"id":1,"result":{"resultType":"input_required"}}"#,
            br#"{"id":1,"result":{"content":[]}}"#,
            br#"{"id":1,"error":{"code":-32602,"message":"no"}}"#,
        ] {
            assert!(must_be_read(text), "{}", String::from_utf8_lossy(text));
        }
    }
    use serde_json::json;

    fn read(body: &str, id: u64) -> Option<RawResult> {
        RawResult::read(Bytes::copy_from_slice(body.as_bytes()), &json!(id))
    }

    #[test]
    fn a_plain_result_is_passed_on_as_written_with_only_the_id_replaced() {
        let body = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"é \"1\""}],"n":1.50}}"#;
        let raw = read(body, 7).unwrap();
        assert_eq!(
            raw.reply(&json!("c-1")),
            r#"{"jsonrpc":"2.0","id":"c-1","result":{"content":[{"type":"text","text":"é \"1\""}],"n":1.50}}"#
        );
        assert!(!raw.is_input_required());
    }

    #[test]
    fn a_modern_client_gets_result_type_complete_added_last_unless_the_result_names_one() {
        let mut raw = read(r#"{"id":1,"result":{"a":1}}"#, 1).unwrap();
        raw.name_type = true;
        let reply: Value = serde_json::from_slice(&raw.reply(&json!(2))).unwrap();
        assert_eq!(reply["result"], json!({"a": 1, "resultType": "complete"}));
        let key_order: Vec<&String> = reply["result"].as_object().unwrap().keys().collect();
        assert_eq!(key_order, ["a", "resultType"]);
        let mut empty = read(r#"{"id":1,"result":{ }}"#, 1).unwrap();
        empty.name_type = true;
        let reply: Value = serde_json::from_slice(&empty.reply(&json!(2))).unwrap();
        assert_eq!(reply["result"], json!({"resultType": "complete"}));
        let mut typed = read(r#"{"id":1,"result":{"resultType":"input_required"}}"#, 1).unwrap();
        typed.name_type = true;
        assert!(typed.is_input_required());
        let escaped = read(
            r#"{"id":1,"result":{"result\u0054ype":"input_required"}}"#,
            1,
        );
        assert!(escaped.unwrap().is_input_required());
        assert_eq!(
            Reply::Raw(typed).into_value()["resultType"],
            "input_required"
        );
    }

    #[test]
    fn anything_but_a_plain_result_answering_the_request_is_left_to_the_full_parse() {
        for body in [
            r#"{"id":1,"error":{"code":-1,"message":"x"}}"#,
            r#"{"id":2,"result":{}}"#,
            r#"{"id":"1","result":{}}"#,
            r#"{"id":1,"result":[]}"#,
            r#"{"id":1,"result":null}"#,
            r#"{"id":1,"method":"m","result":{}}"#,
            r#"{"id":1,"result":{},"result":{}}"#,
            r#"{"id":1,"result":{"resultType":5}}"#,
            r#"{"id":1,"result":{"result\u0054ype":5}}"#,
            r#"{"id":1.0,"result":{}}"#,
            r#"[{"id":1,"result":{}}]"#,
        ] {
            assert!(read(body, 1).is_none(), "{body}");
        }
        let bad_utf8 = Bytes::from_static(b"{\"id\":1,\"result\":{\"a\":\"\xff\"}}");
        assert!(RawResult::read(bad_utf8, &json!(1)).is_none());
        let answer = Answer::Raw(read(r#"{"id":1,"result":{"x":[1]}}"#, 1).unwrap());
        assert_eq!(
            answer.into_value(),
            json!({"jsonrpc": "2.0", "id": 1, "result": {"x": [1]}})
        );
    }

    /// Found by the `upstream_answer` fuzz target: skipping a value checks less than the full
    /// parse, and the derive reads an array as the fields in order.
    #[test]
    fn a_body_the_full_parse_refuses_or_reads_otherwise_is_left_to_it() {
        let deep = format!(
            r#"{{"id":1,"result":{{"a":{}{}}}}}"#,
            "[".repeat(130),
            "]".repeat(130)
        );
        for body in [
            r#"{"id":1,"result":{"n":2e308}}"#,
            r#"{"id":1,"result":{"s":"\ud800"}}"#,
            r#"{"id":1,"result":{},"x":"\udc00"}"#,
            r#"{"id":1,"result":{},"jsonrpc":1e999}"#,
            &deep,
            r#"[1,{"a":1}]"#,
        ] {
            assert!(
                serde_json::from_str::<Value>(body).map_or(true, |v| envelope::find_answer(
                    v,
                    &json!(1)
                )
                .is_none())
            );
            assert!(read(body, 1).is_none(), "{body}");
        }
    }

    #[test]
    fn a_result_type_read_from_the_text_is_what_the_second_pass_reads() {
        let texts = [
            r#"{"resultType":"complete","a":1}"#,
            r#"{ "a" : [1] , "resultType" : "complete" }"#,
            r#"{"resultType":"complete"}"#,
            r#"{"a":{"resultType":"complete"}}"#,
            r#"{"a":{"b":1,"resultType":"complete"}}"#,
            r#"{"resultType":"complete","resultType":"input_required"}"#,
            r#"{"resultType":"completed"}"#,
            r#"{"resultType":"input_required","a":1}"#,
            r#"{"k":"resultType","resultType":"complete"}"#,
            r#"{"resultType":null}"#,
            r#"{"a":"x","resultType":"complete"}"#,
            r#"{"a":1}"#,
        ];
        for text in texts {
            let second = serde_json::from_str::<Typed>(text).map(|t| t.result_type);
            match (typed_by_its_text(text), second) {
                (Some(known), Ok(read)) => assert_eq!(known.result_type, read, "{text}"),
                (None, _) => {}
                (Some(_), Err(e)) => panic!("{text}: read from the text, refused by the pass: {e}"),
            }
        }
        assert!(typed_by_its_text(texts[0]).is_some() && typed_by_its_text(texts[1]).is_some());
    }

    /// Found by the `upstream_answer` fuzz target (after the byte scan replaced the checked
    /// pass): numbers in exponent form that `f64` holds, as serde_json writes them.
    #[test]
    fn a_result_with_exponents_in_range_is_passed_on_as_text() {
        let body = r#"{"id":1,"result":{"n":1e308,"m":-1.5e-300,"i":1.8446744073709552e19}}"#;
        let raw = read(body, 1).expect("kept as text");
        assert_eq!(
            raw.to_value(),
            serde_json::from_str::<Value>(body).unwrap()["result"]
        );
    }

    /// Found by the `upstream_answer` fuzz target.
    #[test]
    fn a_result_naming_a_null_result_type_gets_no_second_one_for_a_modern_client() {
        let mut raw = read(r#"{"id":1,"result":{"resultType":null,"a":1}}"#, 1).unwrap();
        raw.name_type = true;
        assert!(!raw.is_input_required());
        let reply: Value = serde_json::from_slice(&raw.reply(&json!(2))).unwrap();
        assert_eq!(reply["result"], json!({"resultType": null, "a": 1}));
        assert_eq!(
            Reply::Raw(raw).into_value(),
            json!({"resultType": null, "a": 1})
        );
    }
}
