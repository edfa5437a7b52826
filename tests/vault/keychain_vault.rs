//! The vault against the real Secret Service (GNOME Keyring), as desktop users have it.
//! Run by `scripts/test.sh` inside a D-Bus session with an unlocked keyring.

use crate::support;

use std::sync::Arc;

use mcp_auth_broker::secret::Secret;
use mcp_auth_broker::vault::{KeyringStore, TokenStore, Vault};
use serde_json::json;
use support::*;

const NEEDS: &str = "needs Secret Service; run by scripts/test.sh";

fn unique(prefix: &str) -> String {
    format!("test/{prefix}/{}", random_token())
}

#[test]
#[ignore = "needs Secret Service; run by scripts/test.sh"]
fn keychain_round_trips_and_deletes_a_secret() {
    let _ = NEEDS;
    let _one = crate::KEYCHAIN.blocking_lock();
    let store = KeyringStore;
    let key = unique("roundtrip");
    assert!(store.get(&key).unwrap().is_none());
    store.set(&key, &Secret::new("s3cret")).unwrap();
    assert_eq!(store.get(&key).unwrap().unwrap().expose(), "s3cret");
    store.delete(&key).unwrap();
    assert!(store.get(&key).unwrap().is_none());
    store
        .delete(&key)
        .expect("deleting a missing entry is fine");
}

#[test]
#[ignore = "needs Secret Service; run by scripts/test.sh"]
fn a_long_jwt_is_chunked_under_the_windows_limit_and_cleaned_up() {
    let _one = crate::KEYCHAIN.blocking_lock();
    let store = KeyringStore;
    let key = unique("jwt");
    let jwt = format!("eyJhbGciOiJSUzI1NiJ9.{}.sig", "A".repeat(6000));
    store.set(&key, &Secret::new(jwt.clone())).unwrap();
    assert_eq!(store.get(&key).unwrap().unwrap().expose(), jwt);
    // Each real keychain entry is small enough for Windows Credential Manager.
    let main = keyring::Entry::new("mcp-auth-broker", &key)
        .unwrap()
        .get_password()
        .unwrap();
    assert!(main.len() < 100, "the entry holds a marker, not the token");
    let first = keyring::Entry::new("mcp-auth-broker", &format!("{key}#chunk1"))
        .unwrap()
        .get_password()
        .unwrap();
    assert!(first.encode_utf16().count() * 2 <= 2560);
    // Replacing with a short value removes the pieces.
    store.set(&key, &Secret::new("short")).unwrap();
    assert_eq!(store.get(&key).unwrap().unwrap().expose(), "short");
    assert!(matches!(
        keyring::Entry::new("mcp-auth-broker", &format!("{key}#chunk1"))
            .unwrap()
            .get_password(),
        Err(keyring::Error::NoEntry)
    ));
    store.set(&key, &Secret::new(jwt)).unwrap();
    store.delete(&key).unwrap();
    assert!(store.get(&key).unwrap().is_none());
    assert!(matches!(
        keyring::Entry::new("mcp-auth-broker", &format!("{key}#chunk2"))
            .unwrap()
            .get_password(),
        Err(keyring::Error::NoEntry)
    ));
}

#[tokio::test]
#[ignore = "needs Secret Service; run by scripts/test.sh"]
async fn an_upstream_sign_in_lands_in_the_real_keychain_and_survives_a_new_vault() {
    let _one = crate::KEYCHAIN.lock().await;
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let name = format!("kc{}", rand::random::<u32>());
    let broker = TestBroker::start_with(
        json!({"mcp_servers": { name.clone(): {"url": up.mcp_url} }}),
        BrokerOptions {
            store: Arc::new(KeyringStore),
            ..Default::default()
        },
    )
    .await;
    let server = broker.broker.server(&name).unwrap();
    let s = broker
        .broker
        .upstream()
        .sign_in(&server, &broker.browser.opener())
        .await
        .unwrap();
    assert_eq!(
        tokio::time::timeout(std::time::Duration::from_secs(20), s.done)
            .await
            .unwrap()
            .unwrap(),
        Ok(())
    );
    let cred = broker.broker.upstream().credential(&server).await.unwrap();
    // A fresh vault (no cache) reads the same token from the keychain.
    let fresh = Vault::new(Arc::new(KeyringStore));
    let stored = fresh
        .get(&format!("upstream/{name}/access_token"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&stored, cred.bearer.as_ref().unwrap());
    assert!(fresh
        .get(&format!("upstream/{name}/refresh_token"))
        .await
        .unwrap()
        .is_some());
    broker.broker.upstream().sign_out(&server).await.unwrap();
    let fresh = Vault::new(Arc::new(KeyringStore));
    assert!(fresh
        .get(&format!("upstream/{name}/access_token"))
        .await
        .unwrap()
        .is_none());
}
