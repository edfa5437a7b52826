//! Without a reachable Secret Service the vault says so clearly and deletes nothing, and the
//! broker keeps serving what needs no keychain. (Its own test binary: it points this process's
//! session bus at nowhere.)

#[path = "gateway/gateway_common.rs"]
mod gateway_common;
mod support;

use std::sync::Arc;

use gateway_common::{api_key, initialize, open_session, post, tool_call};
use mcp_auth_broker::health::HealthState;
use mcp_auth_broker::vault::{KeyringStore, Vault, VaultError};
use serde_json::json;
use support::health::wait_settled;
use support::*;

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

#[tokio::test]
async fn without_a_keychain_a_signed_in_server_names_the_fix_and_the_others_keep_serving() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var(
        "DBUS_SESSION_BUS_ADDRESS",
        format!("unix:path={}/no-bus", dir.path().display()),
    );
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let open = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start_with(
        json!({"mcp_servers": {"signed": {"url": up.mcp_url}, "open": {"url": open.mcp_url}}}),
        BrokerOptions {
            store: Arc::new(KeyringStore),
            background: true,
        },
    )
    .await;
    let key = api_key(&b).await;

    let url = b.client_url("open");
    let sid = open_session(&url, &key).await;
    let r = post(
        &url,
        &key,
        Some(&sid),
        &tool_call(2, "echo", json!({"text": "still here"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("still here"), "{body}");

    let r = post(&b.client_url("signed"), &key, None, &initialize()).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(status != 500, "{status} {body}");
    assert!(
        body.contains("keychain is not available"),
        "{status} {body}"
    );
    assert!(
        body.contains("start a Secret Service"),
        "names the fix: {body}"
    );
    let s = wait_settled(&mut b.broker.status(), "signed").await;
    assert!(
        matches!(
            s.state,
            HealthState::KeychainUnavailable { locked: false, .. }
        ),
        "{:?}",
        s.state
    );
    assert_eq!(s.state.label(), "keychain unavailable");
}
