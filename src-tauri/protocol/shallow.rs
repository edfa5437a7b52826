//! A client's `tools/call` / `prompts/get` read shallowly, in one pass of serde over the body:
//! the envelope's `method`, `id` and `params`' `name` are read, `_meta`'s keys are read in the
//! same pass, and `arguments` and `_meta`'s values are kept as the text the client wrote and
//! copied to the upstream request as text ([`TextCall::write`]),
//! where the full route builds and writes a [`Value`] tree of them (most of an aggregate
//! call's parsing cost). `_meta`'s entries are copied one by one: the protocol's own
//! (`io.modelcontextprotocol/*`) stay behind, as the full route leaves them. A 2026-07-28
//! client's call ([`TextCall::read_modern`]) must declare its version and capabilities there,
//! which are read. Anything unusual is `None` and takes the full route, so both routes send the
//! same request: other methods, batches, escaped or duplicate keys, unknown fields
//! (`inputResponses`, `requestState`), params or `_meta` that are not an object, a legacy
//! call's protocol `_meta` (it would make the request modern), a modern call whose `_meta` the
//! full route would refuse, JSON the full parse would refuse.

use std::borrow::Cow;
use std::ops::Range;

use bytes::Bytes;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::meta;
use super::scan::one_object_the_full_parse_reads;
use super::write::{json, modern_entries, separate};

/// The keys a shallow call's `params` may have; any other takes the full route.
const KEYS: [&str; 3] = ["name", "arguments", "_meta"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    jsonrpc: &'a str,
    id: Value,
    method: &'a str,
    #[serde(borrow)]
    params: ParamsIn<'a>,
}

/// `params` as one pass reads it: its entries in the client's order (`arguments` as text,
/// `name` read as an unescaped string, `_meta` read in the same pass); duplicate, escaped or
/// other keys refuse.
struct ParamsIn<'a> {
    entries: Vec<(&'static str, Option<&'a RawValue>)>,
    name: Option<&'a str>,
    meta: Option<MetaIn<'a>>,
}

/// `_meta` as one pass reads it: the entries that go upstream, as text, and the protocol's own
/// (`io.modelcontextprotocol/*`) read: the version and capabilities, the rest skipped;
/// duplicate or escaped keys refuse.
struct MetaIn<'a> {
    /// Every key in the client's order, with its text when it goes upstream (`None`: a key of
    /// the protocol's own).
    entries: Vec<(&'a str, Option<&'a RawValue>)>,
    version: Option<Cow<'a, str>>,
    caps: Option<Value>,
}

/// The map visitor of [`ParamsIn`] and [`MetaIn`].
struct MapOf<T>(std::marker::PhantomData<T>);

impl<'de: 'a, 'a> Deserialize<'de> for ParamsIn<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MapOf::<ParamsIn<'a>>(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Visitor<'de> for MapOf<ParamsIn<'a>> {
    type Value = ParamsIn<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ParamsIn<'a>, A::Error> {
        let mut params = ParamsIn {
            entries: Vec::with_capacity(KEYS.len()),
            name: None,
            meta: None,
        };
        while let Some(key) = map.next_key::<&'a str>()? {
            let known = KEYS.iter().find(|k| **k == key);
            let Some(key) = known.filter(|k| !params.entries.iter().any(|e| e.0 == **k)) else {
                return Err(not_shallow());
            };
            let value = match *key {
                "name" => {
                    params.name = Some(map.next_value()?);
                    None
                }
                "_meta" => {
                    params.meta = Some(map.next_value()?);
                    None
                }
                _ => Some(map.next_value()?),
            };
            params.entries.push((*key, value));
        }
        Ok(params)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for MetaIn<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MapOf::<MetaIn<'a>>(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Visitor<'de> for MapOf<MetaIn<'a>> {
    type Value = MetaIn<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MetaIn<'a>, A::Error> {
        let mut meta = MetaIn {
            entries: Vec::with_capacity(4),
            version: None,
            caps: None,
        };
        while let Some(key) = map.next_key::<&'a str>()? {
            if meta.entries.iter().any(|(k, _)| *k == key) {
                return Err(not_shallow());
            }
            if !meta::is_protocol_key(key) {
                meta.entries.push((key, Some(map.next_value()?)));
                continue;
            }
            meta.entries.push((key, None));
            match key {
                meta::PROTOCOL_VERSION => meta.version = Some(map.next_value()?),
                meta::CLIENT_CAPABILITIES => meta.caps = Some(map.next_value()?),
                _ => drop(map.next_value::<IgnoredAny>()?), // client info, log level
            }
        }
        Ok(meta)
    }
}

fn not_shallow<E: serde::de::Error>() -> E {
    E::custom("not a shallow call")
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
    /// `_meta`'s entries that go upstream: where each key (without its quotes) and value is.
    meta: Vec<(Range<usize>, Range<usize>)>,
}

impl TextCall {
    /// A 2025-era client's call in `body`, or `None` when it must take the full route (see the
    /// module).
    pub fn read(body: &Bytes) -> Option<TextCall> {
        Self::read_in(body, None).map(|(call, _)| call)
    }

    /// A 2026-07-28 client's call in `body`, sent with `MCP-Protocol-Version: version`, and the
    /// client capabilities its `_meta` declares; `None` when it must take the full route (see
    /// the module), which also answers every malformed one.
    pub fn read_modern(body: &Bytes, version: &str) -> Option<(TextCall, Value)> {
        let (call, caps) = Self::read_in(body, Some(version))?;
        Some((call, caps?))
    }

    fn read_in(body: &Bytes, modern: Option<&str>) -> Option<(TextCall, Option<Value>)> {
        let whole = one_object_the_full_parse_reads(body)?;
        let envelope: Envelope = serde_json::from_str(whole).ok()?;
        let method = match envelope.method {
            "tools/call" => "tools/call",
            "prompts/get" => "prompts/get",
            _ => return None,
        };
        if envelope.jsonrpc != "2.0" || envelope.id.is_null() {
            return None;
        }
        let at = |text: &str| text.as_ptr() as usize - body.as_ptr() as usize;
        let span = |text: &str| at(text)..at(text) + text.len();
        let params = envelope.params;
        // Where `arguments` is; `name` and `_meta` are written from what was read of them.
        let entries = params.entries.iter();
        let entries = entries.map(|(key, value)| (*key, value.map_or(0..0, |v| span(v.get()))));
        let entries = entries.collect();
        let (meta, caps) = match (params.meta, modern) {
            (Some(read), _) => read_meta(read, modern, span)?,
            (None, None) => (Vec::new(), None),
            (None, Some(_)) => return None, // the full route refuses it (`-32602`)
        };
        let call = TextCall {
            id: envelope.id,
            name: params.name?.to_string(),
            body: body.clone(),
            method,
            entries,
            meta,
        };
        Some((call, caps))
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

    /// The params as the full route has them (for whatever must look inside or change them):
    /// the client's, parsed now, with [`TextCall::name`] as the name.
    pub fn to_value(&self) -> Value {
        let mut params = match serde_json::from_slice::<Value>(&self.body) {
            Ok(mut message) => message["params"].take(),
            Err(_) => Value::Null, // read once already: it is JSON
        };
        if let Some(name) = params.get_mut("name") {
            *name = Value::String(self.name.clone());
        }
        params
    }

    /// The upstream request, as [`super::write::request_bytes`] writes [`TextCall::to_value`]:
    /// `arguments` and `_meta`'s entries copied as text (the protocol's own left behind), the
    /// broker's modern `_meta` put in when `modern`; under `id`, the link's own or, for a call
    /// passed through (`crate::aggregate::pass`), the client's.
    pub fn write(&self, id: &Value, modern: Option<&Value>) -> bytes::Bytes {
        let size: usize = self.entries.iter().map(|e| e.1.len()).sum();
        let mut out = Vec::with_capacity(192 + size);
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        json(&mut out, id);
        out.extend_from_slice(b",\"method\":");
        json(&mut out, self.method);
        out.extend_from_slice(b",\"params\":{");
        let (mut first, mut met) = (true, false);
        for (key, range) in &self.entries {
            match *key {
                "_meta" => {
                    met = true;
                    // As `request_bytes`: a legacy request leaves a `_meta` left empty out.
                    if modern.is_some() || !self.meta.is_empty() {
                        separate(&mut out, &mut first);
                        self.write_meta(&mut out, modern);
                    }
                }
                "name" => {
                    separate(&mut out, &mut first);
                    out.extend_from_slice(b"\"name\":");
                    json(&mut out, self.name.as_str());
                }
                _ => {
                    separate(&mut out, &mut first);
                    json(&mut out, *key);
                    out.push(b':');
                    out.extend_from_slice(&self.body[range.clone()]);
                }
            }
        }
        if let (false, Some(_)) = (met, modern) {
            separate(&mut out, &mut first);
            self.write_meta(&mut out, modern);
        }
        out.extend_from_slice(b"}}");
        out.into()
    }

    /// `"_meta":{…}`: the client's entries that go upstream, then the broker's modern ones.
    fn write_meta(&self, out: &mut Vec<u8>, modern: Option<&Value>) {
        out.extend_from_slice(b"\"_meta\":{");
        let mut first = true;
        for (key, value) in &self.meta {
            separate(out, &mut first);
            // A key read borrowed has no escapes: its text is its JSON without the quotes.
            out.push(b'"');
            out.extend_from_slice(&self.body[key.clone()]);
            out.extend_from_slice(b"\":");
            out.extend_from_slice(&self.body[value.clone()]);
        }
        if let Some(caps) = modern {
            separate(out, &mut first);
            modern_entries(out, caps);
        }
        out.push(b'}');
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

/// Where `_meta`'s entries that go upstream are (each key without its quotes, and its value, by
/// `span`), and for a modern call (`modern` is its header's version) the capabilities it declares.
/// `None` when the full route must read it: a legacy call naming a protocol key (the full route
/// may take it as modern), a modern call whose version is not its header's or whose
/// capabilities are not an object. (One that is not an object, or has escaped or duplicate
/// keys, was refused by the read.)
#[allow(clippy::type_complexity)]
fn read_meta(
    read: MetaIn,
    modern: Option<&str>,
    span: impl Fn(&str) -> Range<usize>,
) -> Option<(Vec<(Range<usize>, Range<usize>)>, Option<Value>)> {
    // A legacy call naming a protocol key takes the full route (it may take it as modern).
    let protocol = read.entries.iter().any(|(_, value)| value.is_none());
    if protocol && modern.is_none() {
        return None;
    }
    let kept = read
        .entries
        .iter()
        .filter_map(|(key, value)| Some((span(key), span((*value)?.get()))));
    let kept = kept.collect();
    let (version, caps) = (read.version, read.caps);
    let Some(header) = modern else {
        return Some((kept, None));
    };
    (version.as_deref() == Some(header)).then_some(())?;
    Some((kept, Some(caps.filter(Value::is_object)?)))
}

#[cfg(test)]
mod tests;
