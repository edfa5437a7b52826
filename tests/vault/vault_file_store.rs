//! The encrypted file token store (`--store file`) for hosts without a keychain: a real sign-in
//! against the test authorization server, a restart, a refresh after expiry and a sign-out, all
//! on the real file system; a wrong or missing key refused with every file left as it was; and
//! the real binary serving `/{server}/mcp` with no D-Bus session at all.

use crate::gateway_common;
use crate::support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use gateway_common::{api_key, initialize, post};
use mcp_auth_broker::vault::filekey::KEY_ENV;
use mcp_auth_broker::vault::{choice, StoreChoice, StoreKind, TokenStore, VaultError};
use serde_json::json;
use support::*;

/// Two different keys (base64 of 32 bytes).
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const OTHER_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn open(data: &Path, key: Option<&str>) -> Result<Arc<dyn TokenStore>, VaultError> {
    let choice = StoreChoice {
        kind: StoreKind::File,
        key_file: None,
    };
    let key = key.map(str::to_string);
    choice::open_store_in(&choice, data, &move |var| {
        (var == KEY_ENV).then(|| key.clone()).flatten()
    })
}

/// Every file of the store with its bytes and permission bits.
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            let name = e.file_name().to_string_lossy().into_owned();
            (name, (std::fs::read(e.path()).unwrap(), mode))
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

const TOKEN_FILES: [&str; 3] = [
    "upstream%2Fdemo%2Faccess_token.sealed",
    "upstream%2Fdemo%2Frefresh_token.sealed",
    "upstream%2Fdemo%2Fmeta.sealed",
];

/// Asserts the store is a 0700 directory of 0600 files holding none of `secrets` in the clear.
fn assert_sealed(dir: &Path, secrets: &[String]) -> BTreeMap<String, (Vec<u8>, u32)> {
    assert_eq!(mode(dir), 0o700, "the store directory is owner-only");
    let files = snapshot(dir);
    for (name, (bytes, mode)) in &files {
        assert_eq!(*mode, 0o600, "{name} is owner-only");
        for s in secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{name} holds a token in the clear"
            );
        }
    }
    files
}

async fn call(b: &TestBroker) -> u16 {
    let key = api_key(b).await;
    let resp = post(&b.client_url("demo"), &key, None, &initialize()).await;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert!(
        status != 200 || text.contains("protocolVersion"),
        "{status} {text}"
    );
    status
}

#[tokio::test]
async fn the_file_store_keeps_a_sign_in_across_a_restart_refreshes_after_expiry_and_sign_out_deletes_it(
) {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let data_dir = tempfile::tempdir().unwrap();
    let data = data_dir.path().join("data");
    let tokens = data.join("tokens");
    let config = json!({"mcp_servers": {"demo": {"url": up.mcp_url}}});
    let options = |store| BrokerOptions {
        store,
        background: false,
    };

    let first = TestBroker::start_in(
        config.clone(),
        options(open(&data, Some(KEY)).unwrap()),
        Some(data.clone()),
    )
    .await;
    first.sign_in("demo").await;
    assert_eq!(call(&first).await, 200);
    let issued: Vec<String> = up.oauth().access.lock().unwrap().keys().cloned().collect();
    let refresh: Vec<String> = up.oauth().refresh.lock().unwrap().keys().cloned().collect();
    let files = assert_sealed(&tokens, &[issued.clone(), refresh.clone()].concat());
    for name in TOKEN_FILES {
        assert!(files.contains_key(name), "{name}: {:?}", files.keys());
    }
    drop(first);

    // A new process in all but name: a fresh store over the same files, no browser.
    let second = TestBroker::start_in(
        config.clone(),
        options(open(&data, Some(KEY)).unwrap()),
        Some(data.clone()),
    )
    .await;
    assert_eq!(call(&second).await, 200, "the sign-in survived the restart");
    assert!(second.browser.opened().is_empty());
    assert_eq!(count(&up.oauth().counters.token_refresh), 0);

    up.oauth().expire_access_tokens();
    assert_eq!(call(&second).await, 200, "refreshed and retried");
    assert_eq!(count(&up.oauth().counters.token_refresh), 1);
    let after = snapshot(&tokens);
    for name in &TOKEN_FILES[..2] {
        assert_ne!(
            after[*name], files[*name],
            "{name} rewritten after the refresh"
        );
    }
    let stored = open(&data, Some(KEY))
        .unwrap()
        .get("upstream/demo/refresh_token")
        .unwrap()
        .unwrap();
    let unused = |t: &str| {
        up.oauth()
            .refresh
            .lock()
            .unwrap()
            .get(t)
            .is_some_and(|r| !r.used)
    };
    assert!(
        unused(stored.expose()),
        "the store holds the rotated, unused refresh token"
    );

    let server = second.broker.server("demo").unwrap();
    second.broker.upstream().sign_out(&server).await.unwrap();
    let left = snapshot(&tokens);
    for name in TOKEN_FILES {
        assert!(!left.contains_key(name), "sign-out deleted {name}");
    }
    assert!(left.contains_key("key-check"));
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_a_clear_error_and_leaves_every_file_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let store = open(&data, Some(KEY)).unwrap();
    store
        .set(
            "upstream/demo/access_token",
            &mcp_auth_broker::secret::Secret::new("at-1"),
        )
        .unwrap();
    store
        .set(
            "config/demo/client_secret",
            &mcp_auth_broker::secret::Secret::new("cs"),
        )
        .unwrap();
    let before = snapshot(&data.join("tokens"));

    let wrong = open(&data, Some(OTHER_KEY))
        .err()
        .expect("a wrong key is refused");
    assert!(matches!(wrong, VaultError::StoreKey(_)), "{wrong:?}");
    let text = wrong.to_string();
    for part in [
        "does not open the token store",
        KEY_ENV,
        "nothing was deleted",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    assert!(!text.contains(OTHER_KEY) && !text.contains(KEY), "{text}");

    let missing = open(&data, None)
        .err()
        .expect("no key is refused")
        .to_string();
    assert!(
        missing.contains(KEY_ENV) && missing.contains("--store-key-file"),
        "{missing}"
    );
    let malformed = open(&data, Some("short")).err().unwrap().to_string();
    assert!(malformed.contains("base64"), "{malformed}");

    assert_eq!(snapshot(&data.join("tokens")), before, "nothing touched");
    let again = open(&data, Some(KEY)).unwrap();
    let at = again.get("upstream/demo/access_token").unwrap().unwrap();
    assert_eq!(at.expose(), "at-1");
}

/// The real binary on a host with no D-Bus session at all: no bus address, an empty runtime
/// directory, no display.
struct Headless {
    dir: PathBuf,
    config: PathBuf,
    data: PathBuf,
    port: u16,
}

impl Headless {
    fn command(&self, key: &str, args: &[&str]) -> Command {
        let runtime = self.dir.join("runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-auth-broker"));
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--port")
            .arg(self.port.to_string())
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("DBUS_SYSTEM_BUS_ADDRESS")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("HOME", self.dir.join("home"))
            .env("XDG_STATE_HOME", self.dir.join("state"))
            .env("BROWSER", self.browser())
            .env("RUST_LOG", "info")
            .env(KEY_ENV, key)
            .stdin(Stdio::null());
        cmd
    }

    /// A `BROWSER` that follows the sign-in redirects like a person clicking "approve".
    fn browser(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join("browser.sh");
        let script = "#!/bin/sh\nexec curl -sS -L --max-redirs 10 -o /dev/null \"$1\"\n";
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    async fn run(&self, key: &str, args: &[&str]) -> Output {
        let mut cmd = self.command(key, args);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }

    /// Starts `serve --store file` and waits for its "listening" line (returned).
    fn serve(&self, key: &str) -> (Serve, String) {
        let mut child = self
            .command(key, &["serve", "--store", "file"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen = vec![];
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.contains("gateway listening on") => {
                    return (Serve(child), line);
                }
                Ok(line) => seen.push(line),
                Err(e) => panic!("serve did not start ({e}): {seen:?}"),
            }
        }
    }
}

/// A running `serve`; stopped with SIGTERM (as a service manager does) and reaped.
struct Serve(Child);

impl Serve {
    fn stop(mut self) {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_headless_serve_with_no_dbus_session_signs_in_serves_and_restarts_on_the_file_store() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let tmp = tempfile::tempdir().unwrap();
    let h = Headless {
        dir: tmp.path().to_path_buf(),
        config: tmp.path().join("config.json"),
        data: tmp.path().join("data"),
        port: free_port(),
    };
    let config = json!({"mcp_servers": {"demo": {"url": up.mcp_url}}});
    std::fs::write(&h.config, config.to_string()).unwrap();

    // The keychain is not silently replaced: writing a secret to it fails and names the way out.
    let mut add = h.command(
        KEY,
        &[
            "add",
            "other",
            "--url",
            "https://example.com/mcp",
            "--client-secret",
            "-",
        ],
    );
    add.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = add.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("keychain is not available"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("--store file"), "{}", text(&out));

    let (serve, listening) = h.serve(KEY);
    assert!(
        listening.contains("tokens in an encrypted file store"),
        "{listening}"
    );
    let out = h.run(KEY, &["login", "demo"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = h
        .run(KEY, &["api-key", "create", "script", "--server", "demo"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let url = format!("http://127.0.0.1:{}/demo/mcp", h.port);
    assert_eq!(post(&url, &key, None, &initialize()).await.status(), 200);
    let out = h.run(KEY, &["status"]).await;
    let tokens = h.data.join("tokens");
    let said = format!(
        "Tokens are kept in an encrypted file store in {} (key from the environment variable {KEY_ENV}).",
        tokens.display()
    );
    assert!(text(&out).contains(&said), "{}", text(&out));
    serve.stop();

    let issued: Vec<String> = up.oauth().access.lock().unwrap().keys().cloned().collect();
    let before = assert_sealed(&tokens, &issued);
    assert!(before.contains_key(TOKEN_FILES[0]), "{:?}", before.keys());
    let out = h.run(OTHER_KEY, &["serve", "--store", "file"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("does not open the token store"),
        "{}",
        text(&out)
    );
    assert_eq!(snapshot(&tokens), before, "a wrong key changes no file");

    let (serve, _) = h.serve(KEY);
    let resp = post(&url, &key, None, &initialize()).await;
    assert_eq!(
        resp.status(),
        200,
        "signed in after the restart, no browser"
    );
    let out = h.run(KEY, &["logout", "demo"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serve.stop();
    let left = snapshot(&tokens);
    assert!(!left.contains_key(TOKEN_FILES[0]), "{:?}", left.keys());
    for log in std::fs::read_dir(h.dir.join("state/mcp-auth-broker/logs")).unwrap() {
        let log = std::fs::read_to_string(log.unwrap().path()).unwrap();
        for token in &issued {
            assert!(!log.contains(token.as_str()), "a token in the log");
        }
    }
}
