//! Closing the dashboard destroys its window and webview: the WebKit processes exit and the app
//! keeps running in the tray; opening it again builds a new window whose live feed works. The app
//! process never loads a GL driver (`desktop::webkit::keep_gl_out_of_the_app`), window or not.

use std::time::Duration;

use fantoccini::Client;
use serde_json::json;

use mcp_auth_broker::desktop::webkit::{children, wait_exit, NETWORK_PROCESS, WEB_PROCESS};

use super::driver::{connect, find, free_port, start_driver, wait_text};
use super::support::{TestUpstream, UpstreamOptions};
use super::{app_args, ONE_APP};

const TITLE: &str = "MCP Auth Broker";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Xvfb + tauri-driver; run by scripts/test.sh"]
async fn closing_the_window_ends_its_webkit_processes_and_a_second_launch_rebuilds_a_live_dashboard(
) {
    let _one_app = ONE_APP.lock().await;
    let docs = TestUpstream::start(UpstreamOptions::default()).await;
    let more = TestUpstream::start(UpstreamOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config.json");
    let servers = |list: &[(&str, &str)]| {
        let map: serde_json::Map<_, _> = list
            .iter()
            .map(|(name, url)| (name.to_string(), json!({ "url": url })))
            .collect();
        json!({ "mcp_servers": map }).to_string()
    };
    std::fs::write(&config, servers(&[("docs", &docs.mcp_url)])).unwrap();
    let args = app_args(&config, dir.path(), port);
    let driver = start_driver(dir.path());
    let c = connect(&driver, &args).await;
    find(&c, "body[data-ready='true']").await;
    wait_text(&c, "tr[data-server='docs'] .state", "healthy", |t| {
        t == "healthy"
    })
    .await;
    let app = app_pid(&dir.path().join("data"));
    assert!(
        !children(app, WEB_PROCESS).is_empty() && !children(app, NETWORK_PROCESS).is_empty(),
        "an open dashboard runs a WebKit web and network process"
    );
    assert_eq!(
        gl_driver_in(app),
        Vec::<String>::new(),
        "with the window open"
    );

    start_at_login_writes_and_removes_the_autostart_entry(&c, dir.path()).await;

    // Closed as a window manager closes it: the window goes, its WebKit processes exit.
    close_window();
    for pid in children(app, WEB_PROCESS)
        .into_iter()
        .chain(children(app, NETWORK_PROCESS))
    {
        let waited = tokio::task::spawn_blocking(move || wait_exit(pid, Duration::from_secs(30)));
        waited.await.unwrap();
    }
    assert_eq!(children(app, WEB_PROCESS), Vec::<i32>::new(), "web process");
    assert_eq!(
        children(app, NETWORK_PROCESS),
        Vec::<i32>::new(),
        "network process"
    );
    // The app keeps running (tray, gateway) with no window.
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        std::path::Path::new(&format!("/proc/{app}")).exists(),
        "the app still runs"
    );

    // A second launch hands over to the running app, which builds the window again (the tray's
    // "Open dashboard" does the same: `commands::show_dashboard`).
    second_launch(&args).await;
    let _ = c.close().await;
    let c = attach(&driver, app).await;
    switch_to_new_window(&c).await;
    find(&c, "body[data-ready='true']").await;
    wait_text(&c, "tr[data-server='docs'] .state", "healthy", |t| {
        t == "healthy"
    })
    .await;
    assert!(!children(app, WEB_PROCESS).is_empty(), "a new web process");
    assert_eq!(gl_driver_in(app), Vec::<String>::new(), "after the reopen");
    // Its live feed: a server added to the config file shows up without a reload.
    std::fs::write(
        &config,
        servers(&[("docs", &docs.mcp_url), ("more", &more.mcp_url)]),
    )
    .unwrap();
    wait_text(&c, "tr[data-server='more'] .state", "the new server", |t| {
        t == "healthy"
    })
    .await;
    let _ = c
        .execute("document.getElementById('quit').click()", vec![])
        .await;
    let _ = c.close().await;
}

/// A new WebDriver session on the running app. Ending the network process ends the WebDriver
/// session (WebKit's automation treats it as a crash); the app keeps running with its inspector
/// server, the address WebKitWebDriver gave it at launch (`WEBKIT_INSPECTOR_SERVER`).
async fn attach(driver: &super::driver::Driver, app: u32) -> Client {
    let environ = std::fs::read(format!("/proc/{app}/environ")).unwrap();
    let target = environ
        .split(|b| *b == 0)
        .find_map(|v| v.strip_prefix(b"WEBKIT_INSPECTOR_SERVER="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .expect("WebKitWebDriver starts the app with an inspector server");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "webkitgtk:browserOptions".into(),
        json!({ "targetAddress": target }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    fantoccini::ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://{}", driver.native))
        .await
        .unwrap_or_else(|e| panic!("cannot attach a WebDriver session to the app at {target}: {e}"))
}

/// The app WebKitWebDriver launched for this test: the process whose arguments name its data dir.
pub(crate) fn app_pid(data_dir: &std::path::Path) -> u32 {
    let want = data_dir.display().to_string();
    let found = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<_> = cmdline
                .split(|b| *b == 0)
                .map(String::from_utf8_lossy)
                .collect();
            args.first().is_some_and(|a| a.ends_with("mcp-auth-broker"))
                && args.iter().any(|a| *a == want)
        })
        .collect::<Vec<_>>();
    assert_eq!(found.len(), 1, "one app process with {want}: {found:?}");
    found[0]
}

/// The GL driver files `pid` maps (Mesa's GLX/EGL vendor libraries, a `*_dri.so`, LLVM): once
/// loaded they stay for the process's life, ~45 MiB under Xvfb.
fn gl_driver_in(pid: u32) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut found: Vec<String> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|path| {
            let file = path.rsplit('/').next().unwrap_or(path);
            file.starts_with("libGLX_mesa")
                || file.starts_with("libEGL_mesa")
                || file.ends_with("_dri.so")
                || file.starts_with("libLLVM")
        })
        .map(str::to_string)
        .collect();
    found.dedup();
    found
}

fn close_window() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/desktop_window/x11_window.py"
    );
    let status = std::process::Command::new("python3")
        .args([script, "close", TITLE])
        .status()
        .unwrap();
    assert!(status.success(), "no window titled {TITLE:?} to close");
}

async fn second_launch(args: &[String]) {
    let args = args.to_vec();
    let second = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_mcp-auth-broker"))
            .args(&args)
            .output()
            .unwrap()
    });
    let second = tokio::time::timeout(Duration::from_secs(30), second)
        .await
        .expect("the second launch hands over and exits")
        .unwrap();
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
}

/// The rebuilt window, once the app lists it.
async fn switch_to_new_window(c: &Client) {
    let deadline = tokio::time::Instant::now() + super::driver::UI_DEADLINE;
    loop {
        if let Some(handle) = c.windows().await.ok().and_then(|w| w.into_iter().next()) {
            c.switch_to_window(handle).await.unwrap();
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no dashboard window came back"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// "Start at login" writes the desktop autostart entry in the app's `$HOME/.config/autostart`
/// (the driver's temp home, never the person's) and unticking it removes the entry again.
async fn start_at_login_writes_and_removes_the_autostart_entry(c: &Client, dir: &std::path::Path) {
    let autostart = dir.join("xdg/home/.config/autostart");
    let entries = || -> Vec<String> {
        std::fs::read_dir(&autostart)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".desktop"))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        entries(),
        Vec::<String>::new(),
        "no entry before the box is ticked"
    );
    for (tick, want) in [(true, 1), (false, 0)] {
        c.execute("document.getElementById('autostart').click()", vec![])
            .await
            .unwrap();
        // The box shows the state the app reports back once the entry is written or removed.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let checked = c
                .execute(
                    "return document.getElementById('autostart').checked",
                    vec![],
                )
                .await
                .unwrap();
            if checked == json!(tick) && entries().len() == want {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Start at login {tick}: box {checked}, entries {:?}",
                entries()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
