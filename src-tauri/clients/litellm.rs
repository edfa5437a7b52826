//! LiteLLM's `config.yaml` for `import`: the YAML read, and one `mcp_servers` entry taken over
//! with LiteLLM's own field names. What the broker cannot take over is said: fields it ignores
//! are named in notes, and what keeps the entry from working (a literal secret, an auth type the
//! broker lacks) becomes the entry's "needs setup" reason instead of stopping the import.

use serde_json::Value;

use crate::config::raw::{RawConfig, RawServer};
use crate::config::{litellm, validate::validate_in};
use crate::secret::SecretRef;

/// True when the text is YAML rather than JSON (LiteLLM configs are usually YAML).
pub fn is_yaml(text: &str) -> bool {
    let first = text
        .lines()
        .map(str::trim_start)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    first.is_some_and(|l| !(l.starts_with('{') || l.starts_with('[') || l.starts_with("//")))
}

/// A YAML document as a JSON value. A key twice in one mapping is refused, as in JSON files.
pub fn read_yaml(text: &str) -> Result<Value, String> {
    let doc: yaml_serde::Value = yaml_serde::from_str(text)
        .map_err(|e| format!("not valid YAML: {e}; fix the file and import again"))?;
    yaml_serde::from_value(doc).map_err(|e| format!("not a config import can read: {e}"))
}

/// What became of one LiteLLM entry.
#[derive(Debug, Default)]
pub struct Taken {
    pub entry: RawServer,
    /// Said to the person, nothing to do.
    pub notes: Vec<String>,
    /// What keeps the entry from working; non-empty means "needs setup".
    pub setup: Vec<String>,
}

/// One LiteLLM entry → a broker entry (URL and headers are filled in by the caller).
pub fn take(raw: &Value) -> Result<Taken, String> {
    let mut s: RawServer = serde_json::from_value(raw.clone())
        .map_err(|e| format!("not a LiteLLM server entry: {e}"))?;
    let mut t = Taken::default();
    if let Some(token) = s.unknown.remove("authentication_token") {
        s.auth_value = s.auth_value.or(token.as_str().map(str::to_string));
    }
    let ignored: Vec<String> = std::mem::take(&mut s.unknown)
        .into_keys()
        .filter(|k| !matches!(k.as_str(), "type" | "serverUrl"))
        .map(|k| match litellm::ignored(&k) {
            Some(why) => format!("{k} ({why})"),
            None => format!("{k} (not a field the broker knows)"),
        })
        .collect();
    if !ignored.is_empty() {
        t.notes.push(format!("ignored: {}", ignored.join("; ")));
    }
    if let Some(flow) = litellm::inferred_flow(&s) {
        t.notes.push(format!("oauth_flow: {flow} written out (LiteLLM's rule for an oauth2 entry that names no flow)"));
        s.oauth_flow = Some(flow.into());
    }
    s.oauth_flow = s.oauth_flow.or(s.oauth2_flow.take());
    for (field, value) in [
        ("auth_value", &mut s.auth_value),
        ("client_secret", &mut s.client_secret),
    ] {
        if value
            .as_deref()
            .is_some_and(|v| SecretRef::parse(v).is_none())
        {
            *value = None;
            t.setup.push(format!("{field} was a literal secret in the LiteLLM file and was not copied (secrets never go in the broker's config): set \"{field}\": \"os.environ/VAR\" or type it into the dashboard's edit form"));
        }
    }
    t.entry = s;
    Ok(t)
}

/// What validation says of the entry on its own (environment variables taken as set: they are
/// read when the broker runs), as "needs setup" reasons.
pub fn problems(name: &str, entry: &RawServer) -> Vec<String> {
    let mut alone = RawConfig::default();
    let mut entry = entry.clone();
    entry.needs_setup = None;
    alone.mcp_servers.insert(name.to_string(), entry);
    match validate_in(&alone, &|_| Some("set".into())) {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .into_iter()
            .map(|e| format!("{}: {}; fix: {}", e.field, e.problem, e.fix))
            .collect(),
    }
}
