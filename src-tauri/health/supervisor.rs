//! Keeps one monitor per enabled server: starts, restarts and stops them as the config and
//! sign-ins change, and routes wake-ups.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::monitor::{self, Deps};
use super::{schedule, HealthState, Inputs, ServerStatus, Shared, StatusMap};
use crate::config::{Config, OAuthFlow, ServerConfig, ServerName};
use crate::events::Event;
use crate::sync::lock;

struct Running {
    config: ServerConfig,
    cancel: CancellationToken,
    wake: Arc<Notify>,
}

pub(super) async fn run(shared: Arc<Shared>, inputs: Inputs) {
    let Inputs {
        upstream,
        mut config,
        mut events,
        stop,
    } = inputs;
    let deps = Deps {
        upstream,
        config: config.clone(),
    };
    let mut monitors: HashMap<ServerName, Running> = HashMap::new();
    let first = config.borrow_and_update().clone();
    let mut interval = first.health_interval;
    reconcile(&shared, &deps, &stop, &mut monitors, &first, true);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            changed = config.changed() => {
                if changed.is_err() {
                    break;
                }
                let next = config.borrow_and_update().clone();
                reconcile(&shared, &deps, &stop, &mut monitors, &next, false);
                // A new interval applies now, not after the old (maybe day-long) wait.
                if next.health_interval != interval {
                    interval = next.health_interval;
                    monitors.values().for_each(|m| m.wake.notify_one());
                }
            }
            event = events.recv() => match event {
                Ok(event) => on_event(&shared, &deps, &stop, &mut monitors, event),
                // Missed events might have been sign-ins: check everything.
                Err(RecvError::Lagged(_)) => monitors.values().for_each(|m| m.wake.notify_one()),
                Err(RecvError::Closed) => break,
            },
        }
    }
    for (_, m) in monitors.drain() {
        m.cancel.cancel();
    }
    lock(&shared.wakes).clear();
}

/// Brings the monitors in line with `config`: removed and disabled servers stop at once,
/// changed ones restart (probing right away), new ones start.
fn reconcile(
    shared: &Arc<Shared>,
    deps: &Deps,
    stop: &CancellationToken,
    monitors: &mut HashMap<ServerName, Running>,
    config: &Config,
    startup: bool,
) {
    let gone: Vec<ServerName> = monitors
        .iter()
        .filter(|(name, running)| {
            config
                .server(name.as_str())
                .is_none_or(|now| !now.enabled || *now != running.config)
        })
        .map(|(name, _)| name.clone())
        .collect();
    for name in gone {
        stop_monitor(shared, monitors, &name);
    }
    shared
        .status
        .send_if_modified(|map| statuses_for(map, config, monitors));
    let mut index = 0;
    for (name, server) in &config.servers {
        if !server.enabled || monitors.contains_key(name) {
            continue;
        }
        let delay = if startup {
            schedule::initial_delay(index)
        } else {
            Duration::ZERO
        };
        index += 1;
        start_monitor(shared, deps, stop, monitors, server.clone(), delay);
    }
}

/// The status map in line with `config`: removed servers dropped, new ones unknown, a server
/// out of service showing why (turned off, or the config's needs-setup reason) and one back in
/// service unknown until its monitor probes. True when anything changed.
fn statuses_for(
    map: &mut StatusMap,
    config: &Config,
    monitors: &HashMap<ServerName, Running>,
) -> bool {
    let before = map.len();
    map.retain(|name, _| config.servers.contains_key(name));
    let mut changed = map.len() != before;
    for (name, server) in &config.servers {
        let entry = map.entry(name.clone()).or_insert_with(|| {
            changed = true;
            ServerStatus::unknown()
        });
        let off = match &server.needs_setup {
            Some(detail) => HealthState::NeedsSetup {
                detail: detail.clone(),
            },
            None => HealthState::Disabled,
        };
        if !server.enabled && entry.state != off {
            *entry = ServerStatus {
                state: off,
                ..ServerStatus::unknown()
            };
            changed = true;
        } else if server.enabled
            && !monitors.contains_key(name)
            && matches!(
                entry.state,
                HealthState::Disabled | HealthState::NeedsSetup { .. }
            )
        {
            *entry = ServerStatus::unknown();
            changed = true;
        }
    }
    changed
}

fn start_monitor(
    shared: &Arc<Shared>,
    deps: &Deps,
    stop: &CancellationToken,
    monitors: &mut HashMap<ServerName, Running>,
    server: ServerConfig,
    delay: Duration,
) {
    let cancel = stop.child_token();
    let wake = Arc::new(Notify::new());
    lock(&shared.wakes).insert(server.name.clone(), wake.clone());
    let task = monitor::Monitor::new(
        shared.clone(),
        deps.clone(),
        server.clone(),
        cancel.clone(),
        wake.clone(),
    );
    tokio::spawn(task.run(delay));
    monitors.insert(
        server.name.clone(),
        Running {
            config: server,
            cancel,
            wake,
        },
    );
}

/// The servers whose sign-in `server`'s is: itself, or for the company sign-in every server
/// with `oauth_flow: "enterprise"`.
fn signed_in_by(monitors: &HashMap<ServerName, Running>, server: ServerName) -> Vec<ServerName> {
    if server.as_str() != crate::upstream::enterprise::SESSION {
        return vec![server];
    }
    let via_company = |r: &&Running| r.config.oauth_flow == Some(OAuthFlow::Enterprise);
    let names = monitors.values().filter(via_company);
    names.map(|r| r.config.name.clone()).collect()
}

fn stop_monitor(shared: &Shared, monitors: &mut HashMap<ServerName, Running>, name: &ServerName) {
    if let Some(running) = monitors.remove(name) {
        running.cancel.cancel();
    }
    lock(&shared.wakes).remove(name);
}

fn on_event(
    shared: &Arc<Shared>,
    deps: &Deps,
    stop: &CancellationToken,
    monitors: &mut HashMap<ServerName, Running>,
    event: Event,
) {
    match event {
        // A new or removed sign-in: start over (fresh classification, AS baseline, backoff);
        // the company sign-in is every enterprise server's.
        Event::SignInFinished { server } | Event::SignedOut { server } => {
            for server in signed_in_by(monitors, server) {
                if let Some(running) = monitors.get(&server) {
                    let config = running.config.clone();
                    stop_monitor(shared, monitors, &server);
                    start_monitor(shared, deps, stop, monitors, config, Duration::ZERO);
                }
            }
        }
        // News only while the server still looks healthy; a probe's own failure sends these
        // too, and must not wake the monitor again (that would loop).
        Event::NeedsSignIn { server } | Event::RefreshFailed { server, .. } => {
            for server in signed_in_by(monitors, server) {
                let healthy = matches!(
                    shared.status.borrow().get(&server).map(|s| &s.state),
                    Some(HealthState::Healthy { .. })
                );
                if let (true, Some(running)) = (healthy, monitors.get(&server)) {
                    running.wake.notify_one();
                }
            }
        }
        // A failed sign-in is the reason a server without tokens shows: check again to say so
        // (a check makes no sign-in, so this cannot loop).
        Event::SignInFailed { server, .. } => {
            let waiting = matches!(
                shared.status.borrow().get(&server).map(|s| &s.state),
                Some(HealthState::NeedsSignIn { .. })
            );
            if let (true, Some(running)) = (waiting, monitors.get(&server)) {
                running.wake.notify_one();
            }
        }
        Event::TokenRefreshed { server } => {
            if monitors.contains_key(&server) {
                let shared = shared.clone();
                let upstream = deps.upstream.clone();
                tokio::spawn(async move {
                    let facts = upstream.token_facts(&server).await;
                    shared.update(&server, |s| s.token = facts);
                });
            }
        }
        Event::ConfigReloaded
        | Event::ConfigRejected { .. }
        | Event::SignInStarted { .. }
        | Event::ClientAuthorized { .. } => {}
    }
}
