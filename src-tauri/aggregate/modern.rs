//! What `/mcp` answers a modern (2026-07-28) client by itself: `server/discover`, and the
//! `subscriptions/listen` stream fanned in from every upstream (its acknowledgment, and which
//! notifications it carries: list changes from every server, and the updates of the resources
//! it watches, [`super::subscriptions`]). Pure but for reading the open links.

use serde_json::{json, Map, Value};

use super::hub::Hub;
use super::names;
use crate::protocol::{meta, SUPPORTED_VERSIONS};

/// The methods `/mcp` serves a modern client; any other is `404` / `-32601`.
pub const METHODS: [&str; 10] = [
    "server/discover",
    "subscriptions/listen",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "completion/complete",
];
/// `_meta` key naming the subscription a notification belongs to.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
/// How long a client may keep the discovery result: the endpoint's own capabilities only
/// change with the broker's version.
const DISCOVER_TTL_MS: u64 = 300_000;
/// The list notifications `subscriptions/listen` can carry, by filter field.
const LISTS: [(&str, &str); 3] = [
    ("toolsListChanged", "notifications/tools/list_changed"),
    ("promptsListChanged", "notifications/prompts/list_changed"),
    (
        "resourcesListChanged",
        "notifications/resources/list_changed",
    ),
];

/// The endpoint's capabilities: what it serves itself (every list, with `listChanged`, since it
/// announces servers coming and going), merged with what the open links' servers declare of
/// the same kinds.
pub fn capabilities(upstream: &[&Value]) -> Value {
    let mut caps = json!({
        "tools": {"listChanged": true},
        "prompts": {"listChanged": true},
        "resources": {"listChanged": true},
        "completions": {},
    });
    for theirs in upstream {
        for kind in ["tools", "prompts", "resources", "completions"] {
            if let (Some(Value::Object(add)), Some(ours)) = (theirs.get(kind), caps.get_mut(kind)) {
                for (k, v) in add {
                    // `subscribe` too: a listen's resourceSubscriptions reach the URI's server.
                    ours[k.as_str()] = merged(&ours[k.as_str()], v);
                }
            }
        }
    }
    caps
}

/// `true` wins over anything; objects merge.
fn merged(ours: &Value, theirs: &Value) -> Value {
    match (ours, theirs) {
        (Value::Bool(true), _) | (_, Value::Null) => ours.clone(),
        (Value::Object(a), Value::Object(b)) => {
            let mut m: Map<String, Value> = a.clone();
            for (k, v) in b {
                m.insert(k.clone(), merged(a.get(k).unwrap_or(&Value::Null), v));
            }
            Value::Object(m)
        }
        (Value::Null, t) => t.clone(),
        _ => ours.clone(),
    }
}

/// The `server/discover` result.
pub async fn discover(hub: &Hub) -> Value {
    let links = hub.pool.open_links().await;
    let upstream: Vec<&Value> = links.iter().map(|l| l.capabilities()).collect();
    json!({
        "resultType": "complete",
        "supportedVersions": SUPPORTED_VERSIONS,
        "capabilities": capabilities(&upstream),
        "_meta": {meta::SERVER_INFO: {"name": "mcp-auth-broker", "title": "MCP Auth Broker: all servers", "version": env!("CARGO_PKG_VERSION")}},
        "instructions": format!("Tools, prompts and resources of every server configured in MCP Auth Broker, named SERVER{}NAME.", names::SEPARATOR),
        "ttlMs": DISCOVER_TTL_MS,
        "cacheScope": "public",
    })
}

/// The notification methods a listen with `filter` (its `notifications` param) carries, when
/// it watches the resources `watched`.
pub fn honoured(filter: &Value, watched: &[String]) -> Vec<&'static str> {
    let updates = (!watched.is_empty()).then_some("notifications/resources/updated");
    LISTS
        .iter()
        .filter(|(field, _)| filter[*field] == true)
        .map(|(_, method)| *method)
        .chain(updates)
        .collect()
}

/// The resource URIs a listen's `filter` asks updates of: strings, each once, in order.
pub fn resource_uris(filter: &Value) -> Vec<String> {
    let mut uris: Vec<String> = Vec::new();
    let asked = filter["resourceSubscriptions"]
        .as_array()
        .map(Vec::as_slice);
    for uri in asked.unwrap_or_default().iter().filter_map(Value::as_str) {
        if !uris.iter().any(|u| u == uri) {
            uris.push(uri.to_string());
        }
    }
    uris
}

/// The first message of a listen stream: which of the asked notifications it carries, and the
/// resources it watches (those a server that owns them accepted).
pub fn acknowledged(id: &Value, filter: &Value, watched: &[String]) -> Value {
    let mut agreed: Map<String, Value> = LISTS
        .iter()
        .filter(|(field, _)| filter[*field] == true)
        .map(|(field, _)| (field.to_string(), json!(true)))
        .collect();
    if !watched.is_empty() {
        agreed.insert("resourceSubscriptions".into(), json!(watched));
    }
    json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
        "params": {"_meta": {SUBSCRIPTION_ID: id}, "notifications": agreed}})
}

/// `note` as the listen `id` carries it, if its filter lets it through.
pub fn on_listen(id: &Value, methods: &[&str], note: &Value) -> Option<Value> {
    let method = note["method"].as_str()?;
    if !methods.contains(&method) {
        return None;
    }
    let mut out = note.clone();
    let params = match out.get_mut("params") {
        Some(Value::Object(p)) => p,
        _ => {
            out["params"] = json!({});
            out["params"].as_object_mut()?
        }
    };
    let meta = params.entry("_meta").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta[SUBSCRIPTION_ID] = id.clone();
    Some(out)
}

/// The cache fields of a merged list: the smallest `ttlMs`, `private` if any part is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cache {
    pub ttl_ms: u64,
    pub private: bool,
}

impl Cache {
    /// What nothing has narrowed yet.
    pub const OPEN: Cache = Cache {
        ttl_ms: u64::MAX,
        private: false,
    };

    /// The fields of one upstream result: absent ones are the safest (`0`, `private`).
    pub fn of(result: &Value) -> Cache {
        Cache {
            ttl_ms: result["ttlMs"].as_i64().map_or(0, |t| t.max(0) as u64),
            private: result["cacheScope"] != "public",
        }
    }

    pub fn merge(self, other: Cache) -> Cache {
        Cache {
            ttl_ms: self.ttl_ms.min(other.ttl_ms),
            private: self.private || other.private,
        }
    }

    /// Puts the fields into a modern `result`.
    pub fn apply(self, result: &mut Value) {
        let ttl = if self.ttl_ms == u64::MAX {
            0
        } else {
            self.ttl_ms
        };
        result["resultType"] = json!("complete");
        result["ttlMs"] = json!(ttl);
        result["cacheScope"] = json!(if self.private { "private" } else { "public" });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_merge_what_upstreams_add_but_never_lose_the_endpoints_own() {
        let a = json!({"tools": {"listChanged": false}, "resources": {"subscribe": true}});
        let b = json!({"prompts": {"x": {"y": 1}}, "logging": {}});
        let caps = capabilities(&[&a, &b]);
        assert_eq!(caps["tools"]["listChanged"], true);
        assert_eq!(caps["resources"]["subscribe"], true);
        assert!(capabilities(&[&b])["resources"].get("subscribe").is_none());
        assert_eq!(caps["prompts"]["x"]["y"], 1);
        assert!(caps.get("logging").is_none());
    }

    #[test]
    fn a_listen_carries_only_the_list_changes_it_asked_for_under_its_id() {
        let filter = json!({"toolsListChanged": true, "resourceSubscriptions": ["file:///a"]});
        let ack = acknowledged(&json!(7), &filter, &[]);
        assert_eq!(
            ack["params"]["notifications"],
            json!({"toolsListChanged": true}),
            "no server accepted file:///a"
        );
        assert_eq!(ack["params"]["_meta"][SUBSCRIPTION_ID], 7);
        let methods = honoured(&filter, &[]);
        let updated = json!({"jsonrpc": "2.0", "method": "notifications/resources/updated"});
        assert!(on_listen(&json!(7), &methods, &updated).is_none());
        let tools = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
        let out = on_listen(&json!(7), &methods, &tools).unwrap();
        assert_eq!(out["params"]["_meta"][SUBSCRIPTION_ID], 7);
        let prompts = json!({"jsonrpc": "2.0", "method": "notifications/prompts/list_changed"});
        assert!(on_listen(&json!(7), &methods, &prompts).is_none());
        let notice = names::notice("warning", "a", "down");
        assert!(on_listen(&json!(7), &methods, &notice).is_none());
        for odd in [json!("text"), json!({"_meta": "text"}), json!(null)] {
            let note = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed", "params": odd});
            let out = on_listen(&json!(7), &methods, &note).unwrap();
            assert_eq!(out["params"]["_meta"][SUBSCRIPTION_ID], 7, "{odd}");
        }
    }

    #[test]
    fn a_listen_watching_resources_acknowledges_them_and_carries_their_updates() {
        let filter = json!({"resourceSubscriptions": ["x:/a", 3, "x:/b", "x:/a"],
            "promptsListChanged": true});
        assert_eq!(resource_uris(&filter), vec!["x:/a", "x:/b"]);
        assert!(resource_uris(&json!({"resourceSubscriptions": "x:/a"})).is_empty());
        let watched = vec!["x:/a".to_string()];
        let ack = acknowledged(&json!("s"), &filter, &watched);
        assert_eq!(
            ack["params"]["notifications"],
            json!({"promptsListChanged": true, "resourceSubscriptions": ["x:/a"]})
        );
        let methods = honoured(&filter, &watched);
        let updated = json!({"jsonrpc": "2.0", "method": "notifications/resources/updated",
            "params": {"uri": "x:/a"}});
        let out = on_listen(&json!("s"), &methods, &updated).unwrap();
        assert_eq!(out["params"]["_meta"][SUBSCRIPTION_ID], "s");
        assert_eq!(out["params"]["uri"], "x:/a");
    }

    #[test]
    fn merged_cache_fields_take_the_smallest_ttl_and_private_if_any_part_is() {
        let a = Cache::of(&json!({"ttlMs": 60000, "cacheScope": "public"}));
        let b = Cache::of(&json!({"ttlMs": 5000, "cacheScope": "public"}));
        let merged = a.merge(b);
        assert_eq!(
            merged,
            Cache {
                ttl_ms: 5000,
                private: false
            }
        );
        let legacy = Cache::of(&json!({"tools": []}));
        assert_eq!(
            legacy,
            Cache {
                ttl_ms: 0,
                private: true
            },
            "absent fields are the safest"
        );
        assert!(
            merged
                .merge(Cache::of(&json!({"ttlMs": 9, "cacheScope": "private"})))
                .private
        );
        assert_eq!(
            Cache::of(&json!({"ttlMs": -5, "cacheScope": "public"})).ttl_ms,
            0
        );
        let mut result = json!({"tools": []});
        Cache::OPEN.apply(&mut result);
        assert_eq!(
            result,
            json!({"tools": [], "resultType": "complete", "ttlMs": 0, "cacheScope": "public"})
        );
    }
}
