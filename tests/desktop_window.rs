//! The real app window, driven over WebDriver: tauri-driver + WebKitWebDriver under Xvfb.
//!
//! Needs a display, a session bus with an unlocked Secret Service and `tauri-driver` on PATH
//! (`scripts/setup-desktop-test.sh`); `scripts/test.sh` runs it inside `dbus-run-session`.
//! The test starts its own tauri-driver so the app inherits this test's environment: `BROWSER`
//! points at a script that follows the sign-in redirects over HTTP, as a person's browser would.

#[allow(clippy::result_large_err, clippy::enum_variant_names)]
mod support;

#[path = "desktop_window/driver.rs"]
mod driver;

#[path = "desktop_window/traymenu.rs"]
mod traymenu;

#[path = "desktop_window/close_reopen.rs"]
mod close_reopen;
#[path = "desktop_window/enterprise.rs"]
mod enterprise;
#[path = "desktop_window/firstrun.rs"]
mod firstrun;
#[path = "desktop_window/words.rs"]
mod words;

use std::net::TcpListener;
use std::path::Path;

use std::panic::AssertUnwindSafe;

use fantoccini::{Client, Locator};
use futures_util::FutureExt as _;
use serde_json::json;

use driver::{
    click, connect, find, free_port, screenshot, start_driver, type_into, wait_text, Shots,
    TrayOpen,
};
use support::{count, TestUpstream, UpstreamOptions};

/// The app is single-instance: a second launch would hand over to the first and exit, so the
/// tests of this file take turns.
static ONE_APP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Xvfb + tauri-driver; run by scripts/test.sh"]
async fn window_adds_an_oauth_server_signs_in_copies_its_snippet_and_signs_out() {
    let _one_app = ONE_APP.lock().await;
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    // A second server that needs no auth, so the table and tray show more than one state.
    let open = TestUpstream::start(UpstreamOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config.json");
    let initial = json!({ "mcp_servers": { "docs": { "url": open.mcp_url } } });
    std::fs::write(&config, initial.to_string()).unwrap();
    let args = app_args(&config, dir.path(), port);
    let driver = start_driver(dir.path());
    let c = connect(&driver, &args).await;
    let result = AssertUnwindSafe(scenario(&c, &up, dir.path(), port))
        .catch_unwind()
        .await;
    if result.is_err() {
        screenshot(&c, dir.path(), "failure").await;
        let log = std::fs::read_to_string(dir.path().join("browser.log")).unwrap_or_default();
        eprintln!(
            "browser log:\n{log}\nscreenshot and config kept in {}",
            dir.keep().display()
        );
    }
    // Quit from the window: the app shuts the broker down and exits.
    let _ = c
        .execute("document.getElementById('quit').click()", vec![])
        .await;
    let _ = c.close().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

async fn scenario(c: &Client, up: &TestUpstream, dir: &Path, port: u16) {
    let shots = Shots::from_env();
    find(c, "body[data-ready='true']").await;
    if shots.0.is_some() {
        // Under the screenshot script's XEmbed tray the hint is shown; it is not the subject.
        let hint_shown = c
            .execute(
                "return !document.getElementById('tray-hint-box').hidden",
                vec![],
            )
            .await
            .unwrap();
        if hint_shown == json!(true) {
            click(c, "#tray-hint-dismiss").await;
        }
    }
    wait_text(c, "#gateway", "the gateway URL and the token store", |t| {
        t.contains(&format!("127.0.0.1:{port}")) && t.contains("tokens in the OS keychain")
    })
    .await;

    // Add the server: probe first, see the discovered flow and its evidence, then save.
    click(c, "#add-server").await;
    type_into(c, "#f-name", "acme").await;
    type_into(c, "#f-url", &up.mcp_url).await;
    click(c, "#probe").await;
    wait_text(c, "#probe-result .probe-flow", "the discovered flow", |t| {
        t == "Browser sign-in"
    })
    .await;
    wait_text(c, "#probe-result .probe-evidence", "the evidence", |t| {
        !t.trim().is_empty()
    })
    .await;
    assert_eq!(
        count(&up.oauth().counters.authorize),
        0,
        "a probe never starts a sign-in"
    );
    shots.window(c, "add-server").await;
    click(c, "#save").await;
    let row = "tr[data-server='acme']";
    wait_text(c, &format!("{row} .url"), "the upstream URL", |t| {
        t == up.mcp_url
    })
    .await;
    let on_disk = std::fs::read_to_string(dir.join("config.json")).unwrap();
    assert!(
        on_disk.contains(&up.mcp_url),
        "saved to the config file: {on_disk}"
    );

    // Its flow and evidence in the table, and the state that asks for the person.
    wait_text(c, &format!("{row} .flow-name"), "the flow", |t| {
        t == "Browser sign-in"
    })
    .await;
    click(c, &format!("{row} [data-action='evidence']")).await;
    wait_text(c, "#evidence-acme", "evidence", |t| {
        t.contains("Why Browser sign-in")
    })
    .await;
    let items = c.find_all(Locator::Css("#evidence-acme li")).await.unwrap();
    assert!(!items.is_empty(), "at least one piece of evidence is shown");
    wait_text(c, &format!("{row} .state"), "needs sign-in", |t| {
        t == "needs sign-in"
    })
    .await;

    // Sign in: the app opens BROWSER, which follows the AS's redirect to the broker's callback.
    click(c, &format!("{row} [data-action='signin']")).await;
    wait_text(c, &format!("{row} .state"), "healthy", |t| t == "healthy").await;
    wait_text(c, "tr[data-server='docs'] .state", "healthy", |t| {
        t == "healthy"
    })
    .await;
    wait_text(
        c,
        &format!("{row} .health .detail"),
        "latency and tools",
        |t| t.contains("ms") && t.contains("tool"),
    )
    .await;
    assert_eq!(
        count(&up.oauth().counters.token_authorization_code),
        1,
        "one code exchange"
    );
    // The evidence row, still open, shows the auth timeline up to the sign-in.
    wait_text(c, "#evidence-acme .timeline", "the auth timeline", |t| {
        t.contains("discovery") && t.contains("client registration") && t.contains("signed in")
    })
    .await;
    // The token's expiry is shown once signed in.
    wait_text(c, &format!("{row} .token"), "a token expiry", |t| {
        t.starts_with("expires") || t == "no expiry"
    })
    .await;

    // Copy its Claude Code snippet from the client setup view.
    if shots.0.is_some() {
        shots.window(c, "dashboard").await;
        shots.tray_menu("tray-menu", TrayOpen::FirstServer);
    }
    click(c, "#tab-setup").await;
    find(c, "#setup-server")
        .await
        .select_by_value("acme")
        .await
        .expect("acme is offered in the client setup view");
    wait_text(
        c,
        "#snippets [data-kind='url'] .snippet-text",
        "acme's URL",
        |t| t.ends_with("/acme/mcp"),
    )
    .await;
    click(c, "#snippets [data-kind='claude'] button").await;
    let want = format!("claude mcp add --transport http acme http://127.0.0.1:{port}/acme/mcp");
    wait_text(c, "#action-status", "the copied snippet", |t| {
        t == format!("Copied: {want}")
    })
    .await;
    wait_text(
        c,
        "#snippets [data-kind='claude'] .snippet-text",
        "the snippet",
        |t| t == want,
    )
    .await;
    shots.window(c, "client-setup").await;

    // Sign out: the server needs sign-in again.
    click(c, "#tab-servers").await;
    click(c, &format!("{row} [data-action='signout']")).await;
    wait_text(c, &format!("{row} .state"), "needs sign-in", |t| {
        t == "needs sign-in"
    })
    .await;
    wait_text(c, &format!("{row} .token"), "no token", |t| t == "none").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Xvfb + tauri-driver; run by scripts/test.sh"]
async fn window_explains_a_busy_port_and_offers_nothing_else() {
    let _one_app = ONE_APP.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let args = app_args(&dir.path().join("config.json"), dir.path(), port);
    let driver = start_driver(dir.path());
    let c = connect(&driver, &args).await;
    let shown = AssertUnwindSafe(async {
        find(&c, "body[data-ready='true']").await;
        let text = wait_text(&c, "#start-error-text", "the start error", |t| {
            !t.is_empty()
        })
        .await;
        assert!(
            text.contains(&format!("port {port}")) && text.contains("already in use"),
            "{text}"
        );
        let main_hidden = c
            .execute("return document.getElementById('main').hidden", vec![])
            .await
            .unwrap();
        assert_eq!(
            main_hidden,
            json!(true),
            "no server views without a running core"
        );
    })
    .catch_unwind()
    .await;
    let _ = c
        .execute("document.getElementById('quit').click()", vec![])
        .await;
    let _ = c.close().await;
    drop(busy);
    if let Err(panic) = shown {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Xvfb + tauri-driver; run by scripts/test.sh"]
async fn a_second_launch_hands_over_to_the_running_app_and_exits() {
    let _one_app = ONE_APP.lock().await;
    let open = TestUpstream::start(UpstreamOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        json!({ "mcp_servers": { "docs": { "url": open.mcp_url } } }).to_string(),
    )
    .unwrap();
    let args = app_args(&config, dir.path(), port);
    let driver = start_driver(dir.path());
    let c = connect(&driver, &args).await;
    find(&c, "body[data-ready='true']").await;
    // Launched again (same session bus): without single instance this second process would fail
    // on the busy port (exit 3); with it, it hands over to the first and exits cleanly.
    let second_args = args.clone();
    let second = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mcp-auth-broker"))
            .args(&second_args)
            .output()
            .unwrap()
    });
    let second = tokio::time::timeout(std::time::Duration::from_secs(30), second)
        .await
        .expect("the second launch exits instead of running a second app")
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("already in use"), "{stderr}");
    // The first app still runs its gateway and its window.
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    find(&c, "body[data-ready='true']").await;
    let _ = c
        .execute("document.getElementById('quit').click()", vec![])
        .await;
    let _ = c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Xvfb + tauri-driver; run by scripts/test.sh"]
async fn window_copies_a_private_key_jwt_servers_public_key_from_its_details() {
    let _one_app = ONE_APP.lock().await;
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config.json");
    let entry = json!({"url": up.mcp_url, "oauth_flow": "client_credentials",
        "token_endpoint_auth_method": "private_key_jwt"});
    let file = json!({ "mcp_servers": { "svc": entry } });
    std::fs::write(&config, file.to_string()).unwrap();
    let args = app_args(&config, dir.path(), port);
    let driver = start_driver(dir.path());
    let c = connect(&driver, &args).await;
    let shown = AssertUnwindSafe(async {
        find(&c, "body[data-ready='true']").await;
        let row = "tr[data-server='svc']";
        // The health probe's token request registered the client with the broker's public key.
        wait_text(&c, &format!("{row} .state"), "healthy", |t| t == "healthy").await;
        let registered = up.oauth().registrations.lock().unwrap()[0].clone();
        let kid = registered["jwks"]["keys"][0]["kid"]
            .as_str()
            .unwrap()
            .to_string();
        click(&c, &format!("{row} [data-action='evidence']")).await;
        click(&c, "#evidence-svc [data-action='copy-key']").await;
        wait_text(&c, "#action-status", "the copied key's thumbprint", |t| {
            t.contains("Copied the public key of svc") && t.contains(&kid)
        })
        .await;
    })
    .catch_unwind()
    .await;
    if shown.is_err() {
        screenshot(&c, dir.path(), "failure").await;
        eprintln!("screenshot kept in {}", dir.keep().display());
    }
    let _ = c
        .execute("document.getElementById('quit').click()", vec![])
        .await;
    let _ = c.close().await;
    if let Err(panic) = shown {
        std::panic::resume_unwind(panic);
    }
}

/// The app's command line: its config file, a data dir under `dir`, and the gateway port.
fn app_args(config: &Path, dir: &Path, port: u16) -> Vec<String> {
    vec![
        "--config".to_string(),
        config.display().to_string(),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
        "--port".into(),
        port.to_string(),
    ]
}
