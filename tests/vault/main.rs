//! Token stores: the OS keychain (Secret Service; `#[ignore]`d, run by `scripts/test.sh` with
//! `--include-ignored` in a D-Bus session) and the encrypted file store. Tests that touch the
//! keychain hold [`KEYCHAIN`]: `keychain_locked` locks the session's one collection, which
//! would fail any other keychain test running beside it. (`keychain_unavailable` is a binary of
//! its own: it points the process's session bus at nowhere.)

#[path = "../gateway/gateway_common.rs"]
mod gateway_common;
#[path = "../support/mod.rs"]
mod support;

mod keychain_locked;
mod keychain_vault;
mod vault_file_store;

/// One test at a time on the session's one keychain.
static KEYCHAIN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
