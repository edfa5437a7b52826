//! Requests of a `/mcp` session routed by resource URI (`resources/read`, `resources/subscribe`,
//! `resources/unsubscribe`, a modern listen's `resourceSubscriptions`) or by reference
//! (`completion/complete`). Which server owns a URI is learned from list answers
//! ([`super::uris`]); an unknown URI makes the session list again once. Subscriptions are kept
//! per upstream link ([`super::subscriptions`]).

use std::sync::Arc;

use serde_json::{json, Value};

use super::calls::{Caller, CALL_TIMEOUT};
use super::link::Link;
use super::names::{self, Listing};
use super::session::{answer_of, lock, RpcError};
use super::subscriptions::{Sink, MAX_URIS};
use crate::config::{ServerConfig, ServerName};
use crate::protocol::{codes, Era};

/// JSON-RPC "resource not found": the 2025 revisions' code, and 2026-07-28's.
fn resource_not_found(era: Era) -> i64 {
    match era {
        Era::Legacy => codes::RESOURCE_NOT_FOUND,
        Era::Modern => codes::INVALID_PARAMS,
    }
}

impl Caller<'_> {
    /// The aggregated server that owns `uri`: as learned so far, else after listing resources
    /// and templates again.
    pub(super) async fn route(&self, uri: &str) -> Result<ServerConfig, RpcError> {
        if let Some(server) = self.scope {
            let config = self.hub.broker.config();
            let cfg = config.server(server.as_str()).cloned();
            return cfg.ok_or_else(|| {
                RpcError::internal(format!("server \"{server}\" left the broker's config"))
            });
        }
        let config = self.hub.broker.config();
        let usable = |s: &ServerName| config.server(s.as_str()).is_some_and(names::aggregated);
        let known = lock(&self.hub.owners)
            .owner(uri, usable)
            .map_err(RpcError::invalid_params)?;
        let server = match known {
            Some(s) => Some(s),
            None => {
                self.list(Listing::Resources).await;
                self.list(Listing::ResourceTemplates).await;
                lock(&self.hub.owners)
                    .owner(uri, usable)
                    .map_err(RpcError::invalid_params)?
            }
        };
        server
            .and_then(|s| config.server(s.as_str()))
            .cloned()
            .ok_or_else(|| RpcError {
                code: resource_not_found(self.era),
                message: format!("resource \"{uri}\" is not listed by any server of this endpoint, nor matched by any of their resource templates; list resources again"), data: None })
    }

    /// One routed request, its upstream error passed on as an internal error. A modern
    /// client's retry (of `resources/read`) goes back to the server its state names.
    async fn forward(
        &self,
        cfg: &ServerConfig,
        method: &str,
        params: &Value,
        client_id: &Value,
    ) -> Result<Value, RpcError> {
        let mut params = params.clone();
        let retry = self.retry(&mut params, cfg)?;
        match self
            .ask(
                cfg,
                method,
                params.into(),
                CALL_TIMEOUT,
                Some(client_id),
                retry,
            )
            .await
        {
            Ok(answer) => self.shaped(answer_of(answer.into_value())),
            Err(e) => Err(RpcError::upstream(cfg.name.as_str(), &e)),
        }
    }

    /// `resources/read`, sent to the URI's server; `resources/subscribe` or
    /// `resources/unsubscribe` (a legacy client's), carried to the URI's server in its own era
    /// ([`super::subscriptions`]): its `notifications/resources/updated` then reach the client's GET
    /// stream. Subscribing on a server that does not offer subscriptions is refused by name.
    pub async fn by_uri(
        &self,
        method: &str,
        params: &Value,
        client_id: &Value,
    ) -> Result<Value, RpcError> {
        let Some(uri) = params.get("uri").and_then(Value::as_str) else {
            return Err(RpcError::invalid_params(format!(
                "{method} needs params.uri (a string)"
            )));
        };
        let cfg = self.route(uri).await?;
        if method != "resources/read" {
            let link = self
                .link(&cfg)
                .await
                .map_err(|e| RpcError::upstream(cfg.name.as_str(), &e))?;
            if link.capabilities()["resources"]["subscribe"] != true {
                return Err(RpcError {
                    code: -32601,
                    message: format!(
                        "server \"{}\" does not offer resource subscriptions; read the resource again instead",
                        cfg.name
                    ), data: None });
            }
            return self.subscription(method, &link, uri).await;
        }
        self.forward(&cfg, method, params, client_id).await
    }

    /// `completion/complete`: a prompt reference (`SERVER__NAME`) goes to its server under its
    /// own name, a resource reference (a template or URI) to the server that listed it. A server
    /// that does not offer completions gets no request; the answer is an empty completion.
    pub async fn complete(&self, params: &Value, client_id: &Value) -> Result<Value, RpcError> {
        let reference = &params["ref"];
        let mut upstream_params = params.clone();
        let cfg = match reference["type"].as_str() {
            Some("ref/prompt") => {
                let prefixed = reference["name"].as_str().unwrap_or("");
                let Some((server, name)) = self.split(prefixed) else {
                    return Err(RpcError::invalid_params(format!("prompt \"{prefixed}\" is not a name of this endpoint: names are SERVER{}NAME; list prompts again", names::SEPARATOR)));
                };
                let config = self.hub.broker.config();
                let found = config.server(server);
                if let Some(why) = names::refusal(found, server, None) {
                    return Err(RpcError::invalid_params(why));
                }
                upstream_params["ref"]["name"] = Value::String(name.to_string());
                found.cloned().ok_or_else(|| RpcError::invalid_params(format!("no server named \"{server}\"")))?
            }
            Some("ref/resource") => {
                let uri = reference["uri"].as_str().unwrap_or("");
                self.route(uri).await?
            }
            other => {
                return Err(RpcError::invalid_params(format!(
                    "completion/complete needs params.ref of type \"ref/prompt\" or \"ref/resource\", not {other:?}"
                )))
            }
        };
        let link = self
            .link(&cfg)
            .await
            .map_err(|e| RpcError::upstream(cfg.name.as_str(), &e))?;
        if link.capabilities().get("completions").is_none() {
            let empty = json!({"completion": {"values": [], "total": 0, "hasMore": false}});
            return self.shaped(Ok(empty));
        }
        self.forward(&cfg, "completion/complete", &upstream_params, client_id)
            .await
    }
}

/// What one modern listen watches; dropping it (the client closed the stream) unwatches.
pub struct Watching {
    sink: Sink,
    links: Vec<(Arc<Link>, Vec<String>)>,
}

impl Watching {
    /// The URIs watched, for the listen's acknowledgment.
    pub fn uris(&self) -> Vec<String> {
        self.links
            .iter()
            .flat_map(|(_, uris)| uris.iter().cloned())
            .collect()
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let links = std::mem::take(&mut self.links);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if links.is_empty() {
            return;
        }
        let sink = self.sink.clone();
        runtime.spawn(async move {
            for (link, uris) in links {
                link.unwatch(&uris, &sink).await;
            }
        });
    }
}

impl Caller<'_> {
    /// A legacy client's `resources/subscribe` or `resources/unsubscribe` of `uri` on `link`:
    /// answered by the broker, the upstream told only of a URI's first and last watcher.
    pub(super) async fn subscription(
        &self,
        method: &str,
        link: &Arc<Link>,
        uri: &str,
    ) -> Result<Value, RpcError> {
        let Some(session) = self.session else {
            return Err(RpcError {
                code: crate::protocol::codes::METHOD_NOT_FOUND,
                message: format!("{method} is not a 2026-07-28 method: send resourceSubscriptions in subscriptions/listen"),
                data: None,
            });
        };
        let uris = [uri.to_string()];
        if method == "resources/subscribe" {
            if let Some((_, e)) = link.watch(&uris, session.notes()).await.pop() {
                return Err(e);
            }
            session.watching(link, uri, true);
        } else {
            link.unwatch(&uris, session.notes()).await;
            session.watching(link, uri, false);
        }
        Ok(json!({}))
    }

    /// The `resourceSubscriptions` of a modern client's listen: each URI watched on the link
    /// of the server that owns it, for `sink`. URIs no server owns, or whose server offers no
    /// subscriptions or refused, are left out (and so out of the acknowledgment).
    pub async fn watch_all(&self, uris: &[String], sink: Sink) -> Watching {
        let mut groups: Vec<(Arc<Link>, Vec<String>)> = Vec::new();
        for uri in uris.iter().take(MAX_URIS) {
            let Ok(cfg) = self.route(uri).await else {
                continue;
            };
            let Ok(link) = self.link(&cfg).await else {
                continue;
            };
            if link.capabilities()["resources"]["subscribe"] != true {
                continue;
            }
            match groups.iter_mut().find(|(l, _)| Arc::ptr_eq(l, &link)) {
                Some((_, list)) if !list.contains(uri) => list.push(uri.clone()),
                Some(_) => {}
                None => groups.push((link, vec![uri.clone()])),
            }
        }
        let mut watching = Watching {
            sink,
            links: Vec::new(),
        };
        for (link, mut list) in groups {
            let refused = link.watch(&list, &watching.sink).await;
            list.retain(|u| refused.iter().all(|(r, _)| r != u));
            watching.links.push((link, list));
        }
        watching
    }
}
