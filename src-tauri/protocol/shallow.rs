//! A client's `tools/call` / `prompts/get` read shallowly: the envelope's `id`, `method` and
//! `params`' entries are kept as the text the client wrote, `name` is the only value read, and
//! `arguments` / `_meta` are copied to the upstream request as text ([`ShallowCall::write`]),
//! where the full route builds and writes a [`Value`] tree of them (most of an aggregate
//! call's parsing cost). Anything unusual is `None` and takes the full route, so both routes
//! send the same request: other methods, batches, escaped or duplicate keys, unknown fields
//! (`inputResponses`, `requestState`), params that are not an object, a `_meta` naming the
//! protocol's keys (the broker reads those), JSON the full parse would refuse.

use std::io::Write;
use std::ops::Range;

use bytes::Bytes;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::raw::one_object_the_full_parse_reads;
use super::write::{json, modern_entries};

/// The keys a shallow call's `params` may have; any other takes the full route.
const KEYS: [&str; 3] = ["name", "arguments", "_meta"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    jsonrpc: &'a str,
    #[serde(borrow)]
    id: &'a RawValue,
    method: &'a str,
    #[serde(borrow)]
    params: Entries<'a>,
}

/// An object's entries in the client's order, as text; duplicate or escaped keys refuse.
struct Entries<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EntriesVisitor(std::marker::PhantomData))
    }
}

struct EntriesVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for EntriesVisitor<'a> {
    type Value = Entries<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object of name, arguments and _meta")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<'a>, A::Error> {
        use serde::de::Error;
        let mut entries: Vec<(&'a str, &'a RawValue)> = Vec::with_capacity(3);
        while let Some(key) = map.next_key::<&'a str>()? {
            if !KEYS.contains(&key) || entries.iter().any(|(k, _)| *k == key) {
                return Err(A::Error::custom("not a shallow call"));
            }
            entries.push((key, map.next_value()?));
        }
        Ok(Entries(entries))
    }
}

/// A `tools/call` or `prompts/get` kept as the client's text (the body, and where its params'
/// entries are in it).
#[derive(Debug, Clone)]
pub struct TextCall {
    body: Bytes,
    method: &'static str,
    id: Value,
    /// The name: the client's until [`TextCall::set_name`] puts the upstream's in.
    name: String,
    entries: Vec<(&'static str, Range<usize>)>,
}

impl TextCall {
    /// The call in `body`, or `None` when it must take the full route (see the module).
    pub fn read(body: &Bytes) -> Option<TextCall> {
        if !one_object_the_full_parse_reads(body) {
            return None;
        }
        let envelope: Envelope = serde_json::from_slice(body).ok()?;
        let method = match envelope.method {
            "tools/call" => "tools/call",
            "prompts/get" => "prompts/get",
            _ => return None,
        };
        if envelope.jsonrpc != "2.0" || envelope.id.get() == "null" {
            return None;
        }
        let mut name = None;
        let mut entries = Vec::with_capacity(envelope.params.0.len());
        for (key, value) in &envelope.params.0 {
            match *key {
                "name" => name = Some(serde_json::from_str::<&str>(value.get()).ok()?),
                "_meta" if !plain_meta(value.get()) => return None,
                _ => {}
            }
            let key = KEYS.iter().find(|k| *k == key)?;
            let start = value.get().as_ptr() as usize - body.as_ptr() as usize;
            entries.push((*key, start..start + value.get().len()));
        }
        Some(TextCall {
            id: serde_json::from_str(envelope.id.get()).ok()?,
            name: name?.to_string(),
            body: body.clone(),
            method,
            entries,
        })
    }

    pub fn method(&self) -> &'static str {
        self.method
    }

    pub fn id(&self) -> &Value {
        &self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes the name out (to be put back by [`TextCall::set_name`]).
    pub fn take_name(&mut self) -> String {
        std::mem::take(&mut self.name)
    }

    /// Puts the name the request goes upstream under in place of the client's.
    pub fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn text(&self, range: &Range<usize>) -> &str {
        // The ranges are those of values read from this UTF-8 body.
        std::str::from_utf8(&self.body[range.clone()]).unwrap_or("null")
    }

    /// The params as the full route has them (for whatever must look inside or change them).
    pub fn to_value(&self) -> Value {
        let mut map = Map::with_capacity(self.entries.len());
        for (key, range) in &self.entries {
            let value = match *key {
                "name" => Value::String(self.name.clone()),
                _ => serde_json::from_str(self.text(range)).unwrap_or(Value::Null),
            };
            map.insert((*key).to_string(), value);
        }
        Value::Object(map)
    }

    /// The upstream request, as [`super::write::request_bytes`] writes [`TextCall::to_value`]:
    /// `arguments` and `_meta` copied as text, the broker's modern `_meta` merged in when
    /// `modern`.
    pub fn write(&self, id: u64, modern: Option<&Value>) -> bytes::Bytes {
        let size: usize = self.entries.iter().map(|e| e.1.len()).sum();
        let mut out = Vec::with_capacity(192 + size);
        let _ = write!(out, "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":");
        json(&mut out, self.method);
        out.extend_from_slice(b",\"params\":{");
        let mut met = false;
        for (i, (key, range)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json(&mut out, *key);
            out.push(b':');
            match *key {
                "name" => json(&mut out, self.name.as_str()),
                "_meta" => {
                    met = true;
                    let text = self.text(range).trim();
                    out.extend_from_slice(text[..text.len() - 1].trim_end().as_bytes());
                    if let Some(caps) = modern {
                        out.push(b',');
                        modern_entries(&mut out, caps);
                    }
                    out.push(b'}');
                }
                _ => out.extend_from_slice(self.text(range).as_bytes()),
            }
        }
        if let (false, Some(caps)) = (met, modern) {
            if !self.entries.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(b"\"_meta\":{");
            modern_entries(&mut out, caps);
            out.push(b'}');
        }
        out.extend_from_slice(b"}}");
        out.into()
    }
}

/// A request's params on their way upstream: values, or a call kept as the client's text.
#[derive(Debug, Clone)]
pub enum Params {
    Value(Value),
    Text(TextCall),
}

impl Default for Params {
    fn default() -> Self {
        Params::Value(Value::Null)
    }
}

impl From<Value> for Params {
    fn from(v: Value) -> Self {
        Params::Value(v)
    }
}

impl Params {
    /// The params as values (a text call is parsed now: something must look inside).
    pub fn into_value(self) -> Value {
        match self {
            Params::Value(v) => v,
            Params::Text(t) => t.to_value(),
        }
    }

    /// The params as values, to change them in place.
    pub fn value_mut(&mut self) -> &mut Value {
        if let Params::Text(t) = self {
            *self = Params::Value(t.to_value());
        }
        match self {
            Params::Value(v) => v,
            Params::Text(_) => unreachable!("replaced above"),
        }
    }
}

/// A `_meta` the text route copies: a non-empty object that names none of the protocol's keys
/// (nor any `\u` escape that could spell one): those the broker reads or leaves behind.
fn plain_meta(text: &str) -> bool {
    let inner = text.strip_prefix('{').and_then(|t| t.strip_suffix('}'));
    inner.is_some_and(|i| !i.trim().is_empty())
        && !text.contains("io.modelcontextprotocol/")
        && !text.contains("\\u")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::write::request_bytes;
    use serde_json::json;

    /// The full route: the body parsed, its params' name replaced, written from values.
    fn full(body: &str, name: &str, modern: Option<&Value>) -> Value {
        let mut message: Value = serde_json::from_str(body).unwrap();
        let method = message["method"].as_str().unwrap().to_string();
        let mut params = message["params"].take();
        params["name"] = Value::String(name.into());
        serde_json::from_slice(&request_bytes(9, &method, &params, modern)).unwrap()
    }

    #[test]
    fn the_shallow_route_writes_the_upstream_request_the_full_route_writes() {
        let caps = json!({"elicitation": {"url": {}}});
        let bodies = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","arguments":{"q":"é\"\n\\u00e9 \u00e9","n":1.50,"deep":{"a":[1,{"b":[null,true]}]}}}}"#,
            r#"{"params":{"arguments":{},"name":"s__t","_meta":{"progressToken":"p-1"}},"method":"tools/call","id":"x","jsonrpc":"2.0"}"#,
            r#" { "jsonrpc" : "2.0" , "id" : 3 , "method" : "prompts/get" , "params" : { "_meta" : { "progressToken" : 4 } , "name" : "s__p" } } "#,
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"s__t"}}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"s__t","arguments":[1e2,-0.0,"\ud83d\ude00"]}}"#,
        ];
        for body in bodies {
            let mut call = TextCall::read(&Bytes::from(body)).expect(body);
            assert!(call.name().starts_with("s__"), "{body}");
            call.set_name("t".into());
            for modern in [None, Some(&caps)] {
                let written: Value = serde_json::from_slice(&call.write(9, modern)).unwrap();
                let want = full(body, "t", modern);
                assert_eq!(written, want, "{body} modern: {}", modern.is_some());
                assert_eq!(written.to_string(), want.to_string(), "{body}");
            }
            let params = full(body, "t", None)["params"].clone();
            assert_eq!(call.to_value().to_string(), params.to_string(), "{body}");
        }
    }

    #[test]
    fn unusual_calls_take_the_full_route() {
        let bodies = [
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t"}}]"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","name":"s__u"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"s__t"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","requestState":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","inputResponses":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","_meta":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","arguments":{"n":1e400}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t","arguments":"\ud800"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s\u005f_t"}}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"s__t"}}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"s__t"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"s__t"},"extra":1}"#,
        ];
        for body in bodies {
            assert!(TextCall::read(&Bytes::from(body)).is_none(), "{body}");
        }
    }
}
