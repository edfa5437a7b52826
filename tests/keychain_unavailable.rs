//! Without a reachable Secret Service the vault says so clearly and deletes nothing.
//! (Its own test binary: it points this process's session bus at nowhere.)

use std::sync::Arc;

use mcp_auth_broker::vault::{KeyringStore, Vault, VaultError};

#[tokio::test]
async fn no_secret_service_gives_a_clear_error_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var(
        "DBUS_SESSION_BUS_ADDRESS",
        format!("unix:path={}/no-bus", dir.path().display()),
    );
    let vault = Vault::new(Arc::new(KeyringStore));
    let err = vault.get("upstream/x/access_token").await.unwrap_err();
    assert!(
        matches!(err, VaultError::Unavailable(_) | VaultError::Locked),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("nothing was deleted"), "{text}");
    assert!(text.contains("keychain"), "{text}");
    assert!(
        vault.delete("upstream/x/access_token").await.is_err(),
        "a delete that cannot run is an error, not a silent success"
    );
}
