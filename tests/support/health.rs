//! Waiting on the broker's status channel (no sleeps): for health tests.

use std::time::Duration;

use mcp_auth_broker::health::{HealthState, ServerStatus, StatusMap};
use tokio::sync::watch;

/// How long a test waits for a status before failing.
pub const STATUS_WAIT: Duration = Duration::from_secs(20);

/// Waits until `server`'s status satisfies `done`; panics with the last status seen after
/// [`STATUS_WAIT`].
pub async fn wait_status(
    rx: &mut watch::Receiver<StatusMap>,
    server: &str,
    done: impl Fn(&ServerStatus) -> bool,
) -> ServerStatus {
    let wait = async {
        loop {
            if let Some(s) = rx.borrow_and_update().get(server) {
                if done(s) {
                    return s.clone();
                }
            }
            rx.changed().await.expect("status channel open");
        }
    };
    match tokio::time::timeout(STATUS_WAIT, wait).await {
        Ok(s) => s,
        Err(_) => panic!(
            "{server} never reached the expected status; last: {:?}",
            rx.borrow().get(server)
        ),
    }
}

/// Waits until `server` has a finished probe (neither unknown nor checking).
pub async fn wait_settled(rx: &mut watch::Receiver<StatusMap>, server: &str) -> ServerStatus {
    wait_status(rx, server, |s| {
        !matches!(s.state, HealthState::Unknown | HealthState::Checking)
    })
    .await
}

/// Waits until `server` is gone from the map.
pub async fn wait_removed(rx: &mut watch::Receiver<StatusMap>, server: &str) {
    let wait = async {
        while rx.borrow_and_update().contains_key(server) {
            rx.changed().await.expect("status channel open");
        }
    };
    tokio::time::timeout(STATUS_WAIT, wait)
        .await
        .expect("the server left the status map");
}
