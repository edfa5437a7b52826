//! The real OS keychain locked and unlocked under the broker: GNOME Keyring's default collection
//! is locked over D-Bus (as `secret-tool lock`, a KWallet idle timeout or a session lock does)
//! and unlocked again with its password. Run by `scripts/test.sh` inside its D-Bus session.
#![cfg(target_os = "linux")]

use crate::gateway_common;
use crate::support;

use std::sync::Arc;
use std::time::Duration;

use dbus::arg::{RefArg, Variant};
use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
use dbus::blocking::Connection;
use dbus::Path;
use gateway_common::{api_key, initialize, open_session, post, tool_call};
use mcp_auth_broker::health::HealthState;
use mcp_auth_broker::vault::KeyringStore;
use serde_json::{json, Value};
use support::health::wait_settled;
use support::*;

const SECRETS: &str = "org.freedesktop.secrets";
const SERVICE: &str = "org.freedesktop.Secret.Service";
const DBUS_WAIT: Duration = Duration::from_secs(10);

/// The session's default Secret Service collection, locked until dropped (so a failing test
/// does not leave the keychain locked for the tests that run after it).
struct Locked {
    conn: Connection,
    collection: Path<'static>,
}

impl Locked {
    fn default_collection() -> Locked {
        let conn = Connection::new_session().expect("the test session's D-Bus");
        let service = conn.with_proxy(SECRETS, "/org/freedesktop/secrets", DBUS_WAIT);
        let (collection,): (Path<'static>,) = service
            .method_call(SERVICE, "ReadAlias", ("default",))
            .expect("the Secret Service names its default collection");
        let (_, prompt): (Vec<Path<'static>>, Path<'static>) = service
            .method_call(SERVICE, "Lock", (vec![collection.clone()],))
            .expect("locking needs no prompt");
        assert_eq!(&*prompt, "/", "locked without a prompt");
        let locked = Locked { conn, collection };
        assert!(locked.is_locked());
        locked
    }

    fn is_locked(&self) -> bool {
        self.conn
            .with_proxy(SECRETS, &self.collection, DBUS_WAIT)
            .get("org.freedesktop.Secret.Collection", "Locked")
            .expect("the collection's Locked property")
    }

    /// Unlocks with the login password `scripts/in-session.sh` created the keyring with, over
    /// GNOME Keyring's prompt-free interface (the one its own test tools use).
    fn unlock(&self) {
        let password = std::env::var("TEST_KEYRING_PASSWORD")
            .expect("TEST_KEYRING_PASSWORD (set by scripts/in-session.sh)");
        let service = self
            .conn
            .with_proxy(SECRETS, "/org/freedesktop/secrets", DBUS_WAIT);
        let (_, session): (Variant<Box<dyn RefArg>>, Path<'static>) = service
            .method_call(SERVICE, "OpenSession", ("plain", Variant("")))
            .expect("a plain Secret Service session");
        let secret = (
            session,
            Vec::<u8>::new(),
            password.into_bytes(),
            "text/plain",
        );
        let () = service
            .method_call(
                "org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface",
                "UnlockWithMasterPassword",
                (self.collection.clone(), secret),
            )
            .expect("the keyring unlocks with its password");
        assert!(!self.is_locked());
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        if self.is_locked() {
            self.unlock();
        }
    }
}

/// Initializes a session of `server` and calls its `echo` tool: the status and body of the call,
/// or of the `initialize` when that did not open a session.
async fn call(b: &TestBroker, key: &str, server: &str) -> (u16, String) {
    call_url(b.client_url(server), key.to_string()).await
}

async fn call_url(url: String, key: String) -> (u16, String) {
    let key = key.as_str();
    let r = post(&url, key, None, &initialize()).await;
    if r.status() != 200 || r.headers().get("mcp-session-id").is_none() {
        return (r.status().as_u16(), r.text().await.unwrap());
    }
    let sid = open_session(&url, key).await;
    let text = tool_call(2, "echo", json!({"text": "still here"}));
    let r = post(&url, key, Some(&sid), &text).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

fn keychain() -> BrokerOptions {
    BrokerOptions {
        store: Arc::new(KeyringStore),
        ..Default::default()
    }
}

/// A broker on the real keychain signed in to a fresh OAuth upstream named `prefix…`, with an
/// API key for its client and the authorization server's record cleared.
struct SignedIn {
    up: TestUpstream,
    name: String,
    config: Value,
    running: TestBroker,
    key: String,
}

async fn signed_in(prefix: &str) -> SignedIn {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let name = format!("{prefix}{}", rand::random::<u32>());
    let config: Value = json!({"mcp_servers": { name.clone(): {"url": up.mcp_url} }});
    let running = TestBroker::start_with(config.clone(), keychain()).await;
    running.sign_in(&name).await;
    let key = api_key(&running).await;
    up.oauth().recorder.clear();
    SignedIn {
        up,
        name,
        config,
        running,
        key,
    }
}

/// Leaves no sign-in behind in the session's keychain.
async fn sign_out(b: &TestBroker, name: &str) {
    let server = b.broker.server(name).unwrap();
    b.broker.upstream().sign_out(&server).await.unwrap();
}

#[tokio::test]
#[ignore = "needs Secret Service; run by scripts/test.sh"]
async fn a_locked_keychain_is_named_with_the_fix_other_servers_keep_serving_and_nothing_is_lost() {
    let _one = crate::KEYCHAIN.lock().await;
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let open = TestUpstream::start(UpstreamOptions::default()).await;
    let name = format!("lk{}", rand::random::<u32>());
    let config: Value = json!({"mcp_servers": {
        name.clone(): {"url": up.mcp_url},
        "open": {"url": open.mcp_url},
    }});
    let running = TestBroker::start_with(config.clone(), keychain()).await;
    running.sign_in(&name).await;
    let running_key = api_key(&running).await;

    let locked = Locked::default_collection();

    // A broker that has read its sign-in keeps serving it.
    let (status, body) = call(&running, &running_key, &name).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("still here"), "{body}");

    // A broker started while the keychain is locked cannot read the sign-in: it says so, with
    // the fix, as a client error; its other servers answer as usual.
    let started = TestBroker::start_with(
        config,
        BrokerOptions {
            background: true,
            ..keychain()
        },
    )
    .await;
    let key = api_key(&started).await;
    let (status, body) = call(&started, &key, "open").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("still here"), "{body}");
    let (status, body) = call(&started, &key, &name).await;
    assert!(status != 500, "{status} {body}");
    assert!(body.contains("keychain is locked"), "{status} {body}");
    assert!(body.contains("unlock"), "names the fix: {body}");
    assert!(body.contains("nothing was deleted"), "{body}");
    let mut status = started.broker.status();
    let s = wait_settled(&mut status, &name).await;
    assert!(
        matches!(
            s.state,
            HealthState::KeychainUnavailable { locked: true, .. }
        ),
        "{:?}",
        s.state
    );
    assert_eq!(s.state.label(), "keychain locked");
    let s = wait_settled(&mut status, "open").await;
    assert!(
        matches!(s.state, HealthState::Healthy { .. }),
        "{:?}",
        s.state
    );

    // Unlocked, the same broker finds the sign-in where it was.
    locked.unlock();
    let (status, body) = call(&started, &key, &name).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("still here"), "{body}");

    sign_out(&started, &name).await;
}

#[tokio::test]
#[ignore = "needs Secret Service; run by scripts/test.sh"]
async fn a_refresh_due_while_the_keychain_is_locked_waits_for_it_and_spends_no_refresh_token() {
    let _one = crate::KEYCHAIN.lock().await;
    let SignedIn {
        up,
        name,
        config,
        running,
        key,
    } = signed_in("lr").await;

    let locked = Locked::default_collection();
    up.oauth().expire_access_tokens();
    let (status, body) = call(&running, &key, &name).await;
    assert!(status != 500, "{status} {body}");
    assert!(body.contains("keychain is locked"), "{status} {body}");
    assert_eq!(
        up.oauth().recorder.count("POST", "/token"),
        0,
        "the refresh token is not spent while the new one could not be stored"
    );

    locked.unlock();
    let (status, body) = call(&running, &key, &name).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(up.oauth().recorder.count("POST", "/token"), 1);

    // A broker started afresh reads the rotated tokens from the keychain.
    let restarted = TestBroker::start_with(config, keychain()).await;
    let key = api_key(&restarted).await;
    let (status, body) = call(&restarted, &key, &name).await;
    assert_eq!(status, 200, "{body}");
    sign_out(&restarted, &name).await;
}

#[tokio::test]
#[ignore = "needs Secret Service; run by scripts/test.sh"]
async fn tokens_refreshed_as_the_keychain_locks_are_used_from_memory_and_saved_once_it_unlocks() {
    let _one = crate::KEYCHAIN.lock().await;
    let SignedIn {
        up,
        name,
        config,
        running,
        key,
    } = signed_in("lm").await;

    // The refresh request reaches the authorization server, and the keychain locks before the
    // rotated tokens come back.
    up.oauth().expire_access_tokens();
    up.oauth().set_fault(TokenFault::Hold);
    let pending = {
        let (url, key) = (running.client_url(&name), key.clone());
        tokio::spawn(call_url(url, key))
    };
    let refreshing = |seen: &[Recorded]| seen.iter().any(|r| r.path == "/token");
    tokio::time::timeout(SIGN_IN_WAIT, up.oauth().recorder.wait_until(refreshing))
        .await
        .expect("the broker refreshes");
    let locked = Locked::default_collection();
    up.oauth().set_fault(TokenFault::None);
    up.oauth().release_token();
    let (status, body) = pending.await.unwrap();
    assert_eq!(status, 200, "served with the refreshed token: {body}");
    assert!(body.contains("still here"), "{body}");
    let (status, body) = call(&running, &key, &name).await;
    assert_eq!(status, 200, "still served while locked: {body}");

    // Unlocked: the next request writes the kept tokens, and a fresh broker finds them.
    locked.unlock();
    let (status, body) = call(&running, &key, &name).await;
    assert_eq!(status, 200, "{body}");
    let restarted = TestBroker::start_with(config, keychain()).await;
    let key = api_key(&restarted).await;
    let (status, body) = call(&restarted, &key, &name).await;
    assert_eq!(
        status, 200,
        "the rotated tokens reached the keychain: {body}"
    );
    assert_eq!(
        up.oauth().recorder.count("POST", "/token"),
        1,
        "one refresh in all"
    );
    sign_out(&restarted, &name).await;
}
