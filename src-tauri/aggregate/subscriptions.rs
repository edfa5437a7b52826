//! Resource subscriptions through `/mcp`, in both eras on both sides. A legacy client's
//! `resources/subscribe` and the `resourceSubscriptions` of a modern client's
//! `subscriptions/listen` both make the client a watcher of the URI on the link to the server
//! that owns it ([`Watchers`], one set per link). The upstream hears of a URI when its first
//! watcher comes and again when its last one leaves: a legacy upstream by the broker's own
//! `resources/subscribe` / `resources/unsubscribe`, a modern one (where those methods do not
//! exist) by the link's `subscriptions/listen` reopened with the new `resourceSubscriptions`.
//! The upstream's `notifications/resources/updated` then reach that URI's watchers only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{broadcast, oneshot};

use super::answers::{InFlight, Step};
use super::link::{Link, LinkError};
use super::session::{answer_of, lock, RpcError};
use crate::protocol::Era;

/// Where a watcher's `notifications/resources/updated` go: a legacy session's event stream, or
/// one modern listen stream.
pub type Sink = broadcast::Sender<Value>;

/// How long a modern upstream may take to acknowledge a reopened listen.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a legacy upstream may take to answer a (un)subscribe.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(20);
/// Resource URIs one modern listen may watch at most.
pub const MAX_URIS: usize = 64;

/// Which sinks watch which URI of one server. Sinks are held weakly: a client that went away
/// without unsubscribing stops counting at once.
#[derive(Default)]
pub struct Watchers {
    by_uri: BTreeMap<String, Vec<broadcast::WeakSender<Value>>>,
}

fn same(weak: &broadcast::WeakSender<Value>, sink: &Sink) -> bool {
    weak.upgrade().is_some_and(|s| s.same_channel(sink))
}

impl Watchers {
    /// `sink` watches `uri`; `true` when nobody watched it before (the upstream must be told).
    pub fn add(&mut self, uri: &str, sink: &Sink) -> bool {
        let list = self.by_uri.entry(uri.to_string()).or_default();
        list.retain(|w| w.strong_count() > 0);
        if list.iter().any(|w| same(w, sink)) {
            return false;
        }
        list.push(sink.downgrade());
        list.len() == 1
    }

    /// `sink` stops watching `uri`; `true` when nobody watches it any more (the upstream must
    /// be told).
    pub fn remove(&mut self, uri: &str, sink: &Sink) -> bool {
        let Some(list) = self.by_uri.get_mut(uri) else {
            return false;
        };
        list.retain(|w| w.strong_count() > 0 && !same(w, sink));
        if !list.is_empty() {
            return false;
        }
        self.by_uri.remove(uri);
        true
    }

    /// The URIs someone watches.
    pub fn uris(&self) -> Vec<String> {
        self.by_uri
            .iter()
            .filter(|(_, list)| list.iter().any(|w| w.strong_count() > 0))
            .map(|(uri, _)| uri.clone())
            .collect()
    }

    /// The sinks watching `uri`.
    pub fn sinks(&self, uri: &str) -> Vec<Sink> {
        let list = self.by_uri.get(uri).map(Vec::as_slice).unwrap_or_default();
        list.iter().filter_map(|w| w.upgrade()).collect()
    }
}

/// The URIs of `new` a modern server's listen acknowledgment (`acked`: its filter, or why
/// there is none) did not take on, with why.
fn not_acknowledged(
    server: &str,
    new: &[String],
    acked: &Result<Value, String>,
) -> Vec<(String, RpcError)> {
    let taken = match acked {
        Ok(filter) => filter["resourceSubscriptions"].as_array(),
        Err(_) => None,
    };
    let why = |uri: &String| match acked {
        Ok(_) => format!("server \"{server}\" did not accept a subscription to \"{uri}\""),
        Err(e) => format!("server \"{server}\": {e}"),
    };
    new.iter()
        .filter(|u| !taken.is_some_and(|t| t.iter().any(|v| v == *u)))
        .map(|u| (u.clone(), RpcError::internal(why(u))))
        .collect()
}

impl Link {
    /// The URIs a modern link's listen asks updates of.
    pub(super) fn watched_uris(&self) -> Vec<String> {
        lock(&self.watchers).uris()
    }

    /// An upstream's `notifications/resources/updated`, for the URI's watchers only.
    pub(super) fn updated(&self, note: &Value) {
        let Some(uri) = note["params"]["uri"].as_str() else {
            return;
        };
        for sink in lock(&self.watchers).sinks(uri) {
            let _ = sink.send(note.clone());
        }
    }

    /// `sink` watches `uris` of this link's server; the upstream is told of those nobody
    /// watched yet. Returns the URIs the upstream refused, with why (they stay unwatched).
    pub(super) async fn watch(
        self: &Arc<Self>,
        uris: &[String],
        sink: &Sink,
    ) -> Vec<(String, RpcError)> {
        let _one = self.subscribing.lock().await;
        let new: Vec<String> = {
            let mut watchers = lock(&self.watchers);
            uris.iter()
                .filter(|u| watchers.add(u, sink))
                .cloned()
                .collect()
        };
        if new.is_empty() {
            return Vec::new();
        }
        let refused = match self.era() {
            Era::Modern => {
                let acked = self.listen_again().await;
                not_acknowledged(self.cfg().name.as_str(), &new, &acked)
            }
            Era::Legacy => {
                let mut refused = Vec::new();
                for uri in &new {
                    if let Err(e) = self.request("resources/subscribe", uri).await {
                        refused.push((uri.clone(), e));
                    }
                }
                refused
            }
        };
        if !refused.is_empty() {
            let mut watchers = lock(&self.watchers);
            for (uri, _) in &refused {
                watchers.remove(uri, sink);
            }
        }
        if !refused.is_empty() && self.era() == Era::Modern {
            let _ = self.listen_again().await;
        }
        refused
    }

    /// `sink` stops watching `uris`; the upstream is told of those nobody watches any more.
    pub(super) async fn unwatch(self: &Arc<Self>, uris: &[String], sink: &Sink) {
        let _one = self.subscribing.lock().await;
        let gone: Vec<String> = {
            let mut watchers = lock(&self.watchers);
            uris.iter()
                .filter(|u| watchers.remove(u, sink))
                .cloned()
                .collect()
        };
        if gone.is_empty() {
            return;
        }
        match self.era() {
            Era::Modern => {
                let _ = self.listen_again().await;
            }
            Era::Legacy => {
                for uri in &gone {
                    if let Err(e) = self.request("resources/unsubscribe", uri).await {
                        tracing::debug!(server = %self.cfg().name, "unsubscribing upstream failed: {}", e.message);
                    }
                }
            }
        }
    }

    /// Reopens a modern link's `subscriptions/listen` with what is watched now. The new stream
    /// replaces the old one once acknowledged (or given up on), so no change falls between the
    /// two. Returns the acknowledged filter.
    async fn listen_again(self: &Arc<Self>) -> Result<Value, String> {
        let (tx, rx) = oneshot::channel();
        let listen = super::answers::listen(Arc::downgrade(self), self.changes.clone(), Some(tx));
        let task = tokio::spawn(listen);
        let acked = tokio::time::timeout(ACK_TIMEOUT, rx).await;
        {
            let mut listener = lock(&self.listener);
            match listener.as_ref() {
                // Closed meanwhile: nothing listens any more.
                None => task.abort(),
                Some(old) => {
                    old.abort();
                    *listener = Some(task.abort_handle());
                }
            }
        }
        match acked {
            Ok(Ok(filter)) => Ok(filter),
            Ok(Err(_)) => Err("its subscriptions/listen ended without an acknowledgment".into()),
            Err(_) => Err(format!(
                "its subscriptions/listen was not acknowledged within {} s",
                ACK_TIMEOUT.as_secs()
            )),
        }
    }

    /// One `resources/subscribe` or `resources/unsubscribe` of the broker's to a legacy
    /// upstream; updates sent on its stream go to the watchers.
    async fn request(self: &Arc<Self>, method: &str, uri: &str) -> Result<(), RpcError> {
        let params = json!({"uri": uri});
        let mut flight = InFlight::start(
            self,
            method,
            params.into(),
            &self.offered,
            SUBSCRIBE_TIMEOUT,
        );
        let answer = tokio::time::timeout(SUBSCRIBE_TIMEOUT, async {
            loop {
                match flight.next().await {
                    Step::Done(answer) => return answer,
                    Step::Message(m) if m["method"] == "notifications/resources/updated" => {
                        self.updated(&m)
                    }
                    Step::Message(_) => {}
                }
            }
        });
        match answer.await {
            Ok(Ok(answer)) => answer_of(answer.into_value()).map(drop),
            Ok(Err(LinkError::Upstream(e))) => {
                Err(RpcError::upstream(self.cfg().name.as_str(), &e))
            }
            Ok(Err(LinkError::Gone)) => Err(RpcError::internal(format!(
                "server \"{}\" forgot the broker's session; try again",
                self.cfg().name
            ))),
            Err(_) => Err(RpcError::internal(format!(
                "{method}: server \"{}\" did not answer within {} s",
                self.cfg().name,
                SUBSCRIBE_TIMEOUT.as_secs()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_hears_of_a_uri_with_its_first_watcher_and_after_its_last() {
        let mut w = Watchers::default();
        let (a, _ra) = broadcast::channel(4);
        let (b, _rb) = broadcast::channel(4);
        assert!(w.add("x:/1", &a), "the first watcher");
        assert!(!w.add("x:/1", &a), "the same one again");
        assert!(!w.add("x:/1", &b), "a second watcher");
        assert_eq!(w.uris(), vec!["x:/1".to_string()]);
        assert_eq!(w.sinks("x:/1").len(), 2);
        assert!(!w.remove("x:/1", &a), "b still watches");
        assert!(!w.remove("x:/1", &a), "a no longer watched");
        assert!(w.remove("x:/1", &b), "the last watcher left");
        assert!(w.uris().is_empty());
        assert!(!w.remove("x:/2", &a), "never watched");
    }

    #[test]
    fn a_uri_the_modern_servers_acknowledgment_leaves_out_is_refused_with_why() {
        let new = vec!["x:/1".to_string(), "x:/2".to_string()];
        let acked = Ok(json!({"toolsListChanged": true, "resourceSubscriptions": ["x:/1"]}));
        let refused = not_acknowledged("m", &new, &acked);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, "x:/2");
        assert!(refused[0].1.message.contains("server \"m\" did not accept"));
        let none = not_acknowledged("m", &new, &Ok(json!({})));
        assert_eq!(none.len(), 2);
        let silent = not_acknowledged("m", &new, &Err("no acknowledgment".into()));
        assert!(silent[0].1.message.contains("no acknowledgment"));
    }

    #[test]
    fn a_watcher_that_went_away_no_longer_counts() {
        let mut w = Watchers::default();
        let (a, _ra) = broadcast::channel::<Value>(4);
        assert!(w.add("x:/1", &a));
        drop(a);
        assert!(w.uris().is_empty());
        assert!(w.sinks("x:/1").is_empty());
        let (b, _rb) = broadcast::channel(4);
        assert!(
            w.add("x:/1", &b),
            "b is the first live watcher: tell the upstream again"
        );
        assert!(w.remove("x:/1", &b));
    }
}
