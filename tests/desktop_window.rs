//! The real app window, driven over WebDriver: tauri-driver + WebKitWebDriver under Xvfb.
//!
//! Needs a display, a session bus with an unlocked Secret Service and `tauri-driver` on PATH
//! (`scripts/setup-desktop-test.sh`); `scripts/test.sh` runs it inside `dbus-run-session`.
//! The test starts its own tauri-driver so the app inherits this test's environment: `BROWSER`
//! points at a script that follows the sign-in redirects over HTTP, as a person's browser would.

#[allow(clippy::result_large_err, clippy::enum_variant_names)]
mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use std::panic::AssertUnwindSafe;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt as _;
use serde_json::json;

use support::{count, TestUpstream, UpstreamOptions};

/// The app is single-instance: a second launch would hand over to the first and exit, so the
/// tests of this file take turns.
static ONE_APP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Generous: a cold WebKit start under Xvfb on 2 busy cores takes seconds.
const UI_DEADLINE: Duration = Duration::from_secs(60);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// tauri-driver for this test only; killed on drop.
struct Driver {
    child: Child,
    url: String,
    /// Where tauri-driver's WebKitWebDriver listens (tauri-driver forwards to it).
    native: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // tauri-driver's WebKitWebDriver child would outlive it: end the whole process group
        // this test created for them.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// A `BROWSER` program: logs the URL it was given, then follows the redirect chain with curl
/// (authorization server → broker callback) and logs the final status.
fn browser_script(dir: &Path) -> PathBuf {
    let path = dir.join("browser.sh");
    let log = dir.join("browser.log");
    let script = format!(
        "#!/bin/sh\necho \"open $1\" >> '{log}'\ncode=$(curl -sS -L --max-redirs 10 -o /dev/null -w '%{{http_code}}' \"$1\")\necho \"done $code\" >> '{log}'\n",
        log = log.display()
    );
    std::fs::write(&path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

fn start_driver(dir: &Path) -> Driver {
    let (port, native) = (free_port(), free_port());
    let home = dir.join("xdg");
    for sub in ["config", "data", "cache"] {
        std::fs::create_dir_all(home.join(sub)).unwrap();
    }
    let mut command = Command::new("tauri-driver");
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command
        .args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env("BROWSER", browser_script(dir))
        // Autostart entries, logs and WebKit caches go to the temp dir, not the person's home.
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tauri-driver must be on PATH: run scripts/setup-desktop-test.sh");
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        native: format!("127.0.0.1:{native}"),
    }
}

/// Opens a WebDriver session, which launches the app with `args`.
async fn connect(driver: &Driver, args: &[String]) -> Client {
    // Neither driver signals readiness: wait (with a deadline) until both ports accept.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for addr in [
        driver.url.trim_start_matches("http://"),
        driver.native.as_str(),
    ] {
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the WebDriver at {addr} did not start listening"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("wry"));
    caps.insert(
        "tauri:options".into(),
        json!({ "application": env!("CARGO_BIN_EXE_mcp-auth-broker"), "args": args }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("cannot open a WebDriver session at {}: {e}", driver.url))
}

/// Polls the DOM until `selector`'s text satisfies `ok` (no event crosses WebDriver).
async fn wait_text(c: &Client, selector: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + UI_DEADLINE;
    let mut last = String::new();
    loop {
        if let Ok(el) = c.find(Locator::Css(selector)).await {
            if let Ok(text) = el.text().await {
                if ok(&text) {
                    return text;
                }
                last = text;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {selector} to show {what}; last text: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn find(c: &Client, selector: &str) -> Element {
    c.wait()
        .at_most(UI_DEADLINE)
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector} not found: {e}"))
}

/// Clicks `selector`, finding it again if the dashboard re-rendered it in between (it redraws
/// on every state change, which makes a found element stale).
async fn click(c: &Client, selector: &str) {
    let deadline = tokio::time::Instant::now() + UI_DEADLINE;
    loop {
        let result = match find(c, selector).await.click().await {
            Ok(()) => return,
            Err(e) => e,
        };
        assert!(
            tokio::time::Instant::now() < deadline,
            "cannot click {selector}: {result}"
        );
    }
}

async fn type_into(c: &Client, selector: &str, text: &str) {
    let el = find(c, selector).await;
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

async fn screenshot(c: &Client, dir: &Path, name: &str) {
    if let Ok(png) = c.screenshot().await {
        let _ = std::fs::write(dir.join(format!("{name}.png")), png);
    }
}

/// Pictures for the README, taken only when `scripts/screenshots.sh` asks (it sets
/// `MCP_AUTH_BROKER_SCREENSHOTS` to the output folder and runs a tray host).
struct Shots(Option<PathBuf>);

impl Shots {
    fn from_env() -> Shots {
        Shots(std::env::var_os("MCP_AUTH_BROKER_SCREENSHOTS").map(PathBuf::from))
    }

    async fn window(&self, c: &Client, name: &str) {
        if let Some(dir) = &self.0 {
            // Let WebKit paint the current DOM (two animation frames) before capturing it.
            let paint = "const done = arguments[arguments.length - 1]; \
                requestAnimationFrame(() => requestAnimationFrame(() => done(true)));";
            c.execute_async(paint, vec![])
                .await
                .expect("animation frames");
            let png = c.screenshot().await.expect("window screenshot");
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }

    /// Opens the real tray menu (click on the icon at `MCP_AUTH_BROKER_TRAY_ICON`, "X Y"),
    /// expands the first server's submenu and captures the screen.
    fn tray_menu(&self, name: &str) {
        let Some(dir) = &self.0 else { return };
        let at =
            std::env::var("MCP_AUTH_BROKER_TRAY_ICON").expect("MCP_AUTH_BROKER_TRAY_ICON=\"X Y\"");
        let (x, y) = at.split_once(' ').expect("\"X Y\"");
        let run = |args: &[&str]| {
            let ok = Command::new(args[0])
                .args(&args[1..])
                .status()
                .map(|s| s.success());
            assert!(matches!(ok, Ok(true)), "{args:?} failed");
        };
        run(&["xdotool", "mousemove", x, y, "click", "1", "sleep", "1"]);
        // The first entry is the first server's submenu: hover it open.
        let (mx, my) = (
            x.parse::<i32>().unwrap() - 200,
            y.parse::<i32>().unwrap() + 30,
        );
        run(&[
            "xdotool",
            "mousemove",
            &mx.to_string(),
            &my.to_string(),
            "sleep",
            "1",
        ]);
        let out = dir.join(format!("{name}.png"));
        run(&["import", "-window", "root", out.to_str().unwrap()]);
        run(&["xdotool", "key", "Escape", "key", "Escape"]);
    }
}

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
    let args = vec![
        "--config".to_string(),
        config.display().to_string(),
        "--data-dir".into(),
        dir.path().join("data").display().to_string(),
        "--port".into(),
        port.to_string(),
    ];
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
    wait_text(c, "#gateway", "the gateway URL", |t| {
        t.contains(&format!("127.0.0.1:{port}"))
    })
    .await;

    // Add the server: probe first, see the discovered flow and its evidence, then save.
    click(c, "#add-server").await;
    type_into(c, "#f-name", "acme").await;
    type_into(c, "#f-url", &up.mcp_url).await;
    click(c, "#probe").await;
    wait_text(c, "#probe-result .probe-flow", "the discovered flow", |t| {
        t == "authorization_code"
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
        t == "authorization_code"
    })
    .await;
    click(c, &format!("{row} [data-action='evidence']")).await;
    wait_text(c, "#evidence-acme", "evidence", |t| {
        t.contains("Why authorization_code")
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
    // The token's expiry is shown once signed in.
    wait_text(c, &format!("{row} .token"), "a token expiry", |t| {
        t.starts_with("expires") || t == "no expiry"
    })
    .await;

    // Copy its Claude Code snippet from the client setup view.
    if shots.0.is_some() {
        shots.window(c, "dashboard").await;
        shots.tray_menu("tray-menu");
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
    let args = vec![
        "--config".to_string(),
        dir.path().join("config.json").display().to_string(),
        "--data-dir".into(),
        dir.path().join("data").display().to_string(),
        "--port".into(),
        port.to_string(),
    ];
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
