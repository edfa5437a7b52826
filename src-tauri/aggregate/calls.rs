//! The requests of `/mcp` in either era: the fan-out of list requests (with a per-server
//! timeout, and for modern clients the cache fields merged safely) and the routing of calls by
//! prefixed name. A [`Caller`] is one client request's view: who asks, in which era, what its
//! client can answer, and where notifications go.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::hub::Hub;
use super::link::{protocol, Link};
use super::modern::Cache;
use super::names::{self, Listing};
use super::session::{answer_of, lock, Outbox, RpcError, Session};
use crate::config::{ServerConfig, ServerName};
use crate::issuer::Principal;
use crate::protocol::raw::{Answer, Reply};
use crate::protocol::shallow::Params;
use crate::protocol::{mrtr, Era};
use crate::upstream::{FailureKind, UpstreamError};

/// How long one server may take to answer a list request before the aggregate answers without
/// it (and says so).
const LIST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a call may take to get response headers (answers may then stream without limit).
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(300);
/// Pages read from one server for one list.
const MAX_PAGES: usize = 50;

/// One client request's view of the aggregate.
pub struct Caller<'a> {
    pub hub: &'a Hub,
    pub principal: &'a Principal,
    /// The era the client speaks.
    pub era: Era,
    /// The client capabilities passed on upstream ([`super::relay::passed_on`]).
    pub offered: Cow<'a, Value>,
    /// The client's session (legacy clients only).
    pub session: Option<&'a Session>,
    /// Notifications for the client while the request is answered.
    pub out: &'a Outbox,
    /// The gateway's URL, when the client supports URL-mode elicitation (sign-in links).
    pub sign_in_base: Option<&'a str>,
    /// The one server a translating `/{server}/mcp` serves ([`Scope`]); `None` for `/mcp`.
    pub scope: Option<&'a ServerName>,
}

/// The one server a client of `/{server}/mcp` reaches through the aggregate when it and that
/// server share no era: only that server, its names as the server gives them (no
/// `SERVER__NAME` prefix, which only `/mcp` needs).
pub type Scope = Option<ServerName>;

/// A modern client's retry (MRTR): its answers, and the upstream's part of the broker's state.
#[derive(Debug, Default)]
pub struct Retry {
    pub responses: Option<Value>,
    pub inner: Option<String>,
}

impl Caller<'_> {
    /// One request of either era, answered by the aggregate.
    pub async fn dispatch(
        &self,
        method: &str,
        params: Value,
        id: &Value,
    ) -> Result<Reply, RpcError> {
        if let Some(listing) = Listing::from_method(method) {
            if params.get("cursor").is_some_and(|c| !c.is_null()) {
                return Err(RpcError::invalid_params(
                    "this endpoint answers lists in one page; it gave no cursor".into(),
                ));
            }
            return Ok(Reply::Value(Box::pin(self.list(listing)).await));
        }
        match method {
            "ping" | "logging/setLevel" => Ok(Reply::Value(json!({}))),
            "tools/call" | "prompts/get" => self.call(method, params.into(), id).await,
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                Box::pin(self.by_uri(method, &params, id))
                    .await
                    .map(Reply::Value)
            }
            "completion/complete" => Box::pin(self.complete(&params, id)).await.map(Reply::Value),
            other => Err(RpcError {
                code: crate::protocol::codes::METHOD_NOT_FOUND,
                message: format!("method \"{other}\" is not supported by /mcp"),
                data: None,
            }),
        }
    }

    /// The link to `cfg`'s server this client may use.
    pub(super) async fn link(&self, cfg: &ServerConfig) -> Result<Arc<Link>, UpstreamError> {
        let (key, link) = self.hub.pool.link(cfg, &self.offered).await?;
        if let Some(session) = self.session {
            session.uses(&key, &link);
        }
        Ok(link)
    }

    /// The union of every aggregated server's list. A server that cannot answer is left out
    /// and named in a warning notice on `out`; a modern client's answer carries merged cache
    /// fields (a list missing a server is stale at once).
    pub async fn list(&self, listing: Listing) -> Value {
        let config = self.hub.broker.config();
        let servers: Vec<&ServerConfig> = config
            .servers
            .values()
            .filter(|c| names::aggregated(c))
            .filter(|c| self.scope.is_none_or(|s| s == &c.name))
            .collect();
        let answers = futures_util::future::join_all(servers.iter().map(|cfg| async move {
            match tokio::time::timeout(LIST_TIMEOUT, self.list_one(cfg, listing)).await {
                Ok(r) => r,
                Err(_) => Err(protocol(
                    cfg,
                    format!(
                        "{} got no answer within {} s",
                        listing.method(),
                        LIST_TIMEOUT.as_secs()
                    ),
                )),
            }
        }))
        .await;
        let others = config.servers.values().filter(|_| self.scope.is_none());
        for cfg in others.filter(|c| c.enabled) {
            if let Some(why) = names::left_out(cfg) {
                let note = names::notice("info", cfg.name.as_str(), &why);
                let _ = self.out.send(note).await;
            }
        }
        let mut items = Vec::new();
        let mut cache = Cache::OPEN;
        for (cfg, answer) in servers.iter().zip(answers) {
            match answer {
                Ok((mut list, part)) => {
                    self.learn_owners(cfg, listing, &list);
                    items.append(&mut list);
                    cache = cache.merge(part);
                }
                Err(e) => {
                    cache.ttl_ms = 0;
                    let text = format!("{} are missing: {e}", listing.key());
                    let note = names::notice("warning", cfg.name.as_str(), &text);
                    let _ = self.out.send(note).await;
                }
            }
        }
        let mut result = json!({ listing.key(): items });
        if self.era == Era::Modern {
            cache.apply(&mut result);
        }
        result
    }

    fn learn_owners(&self, cfg: &ServerConfig, listing: Listing, list: &[Value]) {
        let mut owners = lock(&self.hub.owners);
        let field = |key: &'static str| list.iter().filter_map(move |item| item[key].as_str());
        match listing {
            Listing::Resources => owners.resources(&cfg.name, field("uri")),
            Listing::ResourceTemplates => owners.templates(&cfg.name, field("uriTemplate")),
            Listing::Tools | Listing::Prompts => {}
        }
    }

    pub(super) async fn list_one(
        &self,
        cfg: &ServerConfig,
        listing: Listing,
    ) -> Result<(Vec<Value>, Cache), UpstreamError> {
        let link = self.link(cfg).await?;
        if link.capabilities().get(listing.capability()).is_none() {
            return Ok((Vec::new(), Cache::OPEN));
        }
        let mut items = Vec::new();
        let mut cache = Cache::OPEN;
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = cursor.as_ref().map_or(json!({}), |c| json!({"cursor": c}));
            let answer = self
                .ask(
                    cfg,
                    listing.method(),
                    params.into(),
                    LIST_TIMEOUT,
                    None,
                    None,
                )
                .await?
                .into_value();
            let Some(result) = answer.get("result") else {
                let why = format!("{} failed: {}", listing.method(), answer["error"]);
                return Err(protocol(cfg, why));
            };
            cache = cache.merge(Cache::of(result));
            let page = result[listing.key()]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if listing == Listing::Tools {
                link.client.learn_tools(&page);
            }
            items.extend(names::present(cfg, listing, page, self.scope.is_none()));
            cursor = result["nextCursor"]
                .as_str()
                .filter(|c| !c.is_empty())
                .map(str::to_string);
            if cursor.is_none() {
                return Ok((items, cache));
            }
        }
        let why = format!("{} did not end after {MAX_PAGES} pages", listing.method());
        Err(protocol(cfg, why))
    }

    /// `tools/call` or `prompts/get` of a prefixed name, sent to its server under its own name.
    /// A name the endpoint does not offer (unknown server, filtered tool, delegated or disabled
    /// server) is an invalid-params error, never forwarded. A server that cannot be used right
    /// now answers a tool call with an `isError` result naming the server and why, plus an error
    /// notice; a prompt with a JSON-RPC error. A plain result goes back as the upstream wrote it.
    /// A call may come as its text ([`Params::Text`]: then it has no retry fields).
    pub async fn call(
        &self,
        method: &str,
        mut params: Params,
        client_id: &Value,
    ) -> Result<Reply, RpcError> {
        let is_tool = method == "tools/call";
        // Taken out and put back as the upstream's name, in the same allocation.
        let mut prefixed = match &mut params {
            Params::Value(v) => match v["name"].take() {
                Value::String(s) => s,
                _ => String::new(),
            },
            Params::Text(call) => call.take_name(),
        };
        let Some((server, name)) = self.split(&prefixed) else {
            return Err(RpcError::invalid_params(format!("\"{prefixed}\" is not a name of this endpoint: names are SERVER{}NAME; list them again", names::SEPARATOR)));
        };
        let config = self.hub.broker.config();
        let found = config.server(server);
        let tool = is_tool.then_some(name);
        let cfg = match (found, names::refusal(found, server, tool)) {
            (Some(cfg), None) => cfg,
            (_, why) => return Err(RpcError::invalid_params(why.unwrap_or_default())),
        };
        let prefix = prefixed.len() - name.len(); // the name is the end of what the client sent
        prefixed.drain(..prefix);
        let retry = match &mut params {
            Params::Value(v) => {
                v["name"] = Value::String(prefixed);
                self.retry(v, cfg)?
            }
            Params::Text(call) => {
                call.set_name(prefixed);
                None
            }
        };
        let asked = self.ask(cfg, method, params, CALL_TIMEOUT, Some(client_id), retry);
        self.replied(cfg, asked.await, is_tool).await
    }

    /// A call's answer as this client gets it: a plain result as the upstream wrote it, a
    /// failure to reach `cfg`'s server as [`Caller::failed`] words it.
    pub(super) async fn replied(
        &self,
        cfg: &ServerConfig,
        asked: Result<Answer, UpstreamError>,
        is_tool: bool,
    ) -> Result<Reply, RpcError> {
        match asked {
            Ok(Answer::Raw(mut raw)) => {
                // Modern results name their `resultType` (what `shaped` does to a value).
                raw.name_type = self.era == Era::Modern;
                Ok(Reply::Raw(raw))
            }
            Ok(answer) => self
                .shaped(answer_of(answer.into_value()))
                .map(Reply::Value),
            Err(e) => Box::pin(self.failed(cfg, e, is_tool))
                .await
                .map(Reply::Value),
        }
    }

    /// The server and the upstream's own name of a name this client uses: the scope's server
    /// and the name itself when scoped, else the parts of `SERVER__NAME`.
    pub(super) fn split<'n>(&'n self, name: &'n str) -> Option<(&'n str, &'n str)> {
        match self.scope {
            Some(server) => (!name.is_empty()).then_some((server.as_str(), name)),
            None => names::split(name),
        }
    }

    /// A modern client's retry fields, taken out of `params` and checked: its `requestState`
    /// must be the broker's, for this principal and this server.
    pub(super) fn retry(
        &self,
        params: &mut Value,
        cfg: &ServerConfig,
    ) -> Result<Option<Retry>, RpcError> {
        if self.era != Era::Modern {
            return Ok(None);
        }
        let (responses, state) = mrtr::take_retry(params);
        let Some(state) = state else {
            return Ok(responses.map(|r| Retry {
                responses: Some(r),
                inner: None,
            }));
        };
        let wrapped = self
            .hub
            .unwrap(self.principal, &state)
            .map_err(|e| RpcError::invalid_params(e.to_string()))?;
        if wrapped.server != cfg.name.as_str() {
            return Err(RpcError::invalid_params(format!(
                "the requestState belongs to a request to server \"{}\", not \"{}\"; send the retry with the same name as the first request",
                wrapped.server, cfg.name
            )));
        }
        Ok(Some(Retry {
            responses,
            inner: wrapped.inner,
        }))
    }

    /// A result as this client's era has it (modern results name their `resultType`).
    pub(super) fn shaped(&self, answer: Result<Value, RpcError>) -> Result<Value, RpcError> {
        let mut result = answer?;
        if self.era == Era::Modern && result.get("resultType").is_none() {
            if let Some(map) = result.as_object_mut() {
                map.insert("resultType".into(), json!("complete"));
            }
        }
        Ok(result)
    }

    /// What the client gets when its call could not reach the upstream.
    async fn failed(
        &self,
        cfg: &ServerConfig,
        e: UpstreamError,
        is_tool: bool,
    ) -> Result<Value, RpcError> {
        let text = e.to_string();
        if e.kind() == FailureKind::NeedsSignIn {
            if let Some(answer) = self.sign_in_link(&cfg.name, &text) {
                return answer;
            }
        }
        let server = cfg.name.as_str();
        let _ = self.out.send(names::notice("error", server, &text)).await;
        if is_tool {
            self.shaped(Ok(names::error_result(&text)))
        } else {
            Err(RpcError::upstream(server, &e))
        }
    }
}

/// A request's params, taken out of `message`: an empty object when they are not one (a
/// request without params).
pub fn params_object(message: &mut Value) -> Value {
    match message.get_mut("params").map(Value::take) {
        Some(Value::Object(map)) => Value::Object(map),
        _ => Value::Object(Map::new()),
    }
}
