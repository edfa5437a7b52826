//! Driving the app over WebDriver: tauri-driver (spawned per test, so the app inherits the
//! test's environment), session setup, DOM waits, and the README screenshots.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// Generous: a cold WebKit start under Xvfb on 2 busy cores takes seconds.
pub const UI_DEADLINE: Duration = Duration::from_secs(60);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// tauri-driver for this test only; killed on drop.
pub struct Driver {
    child: Child,
    url: String,
    /// Where tauri-driver's WebKitWebDriver listens (tauri-driver forwards to it).
    pub native: String,
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
pub fn browser_script(dir: &Path) -> PathBuf {
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

pub fn start_driver(dir: &Path) -> Driver {
    start_driver_with(dir, &[])
}

/// [`start_driver`] with more environment for the app (a fake `HOME`, for example).
pub fn start_driver_with(dir: &Path, env: &[(&str, &Path)]) -> Driver {
    let (port, native) = (free_port(), free_port());
    let home = dir.join("xdg");
    for sub in ["config", "data", "cache", "home"] {
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
        // Autostart entries, logs and WebKit caches go to the temp dir, not the person's home
        // (the autostart plugin writes under `$HOME/.config`, whatever XDG_CONFIG_HOME says).
        .env("HOME", home.join("home"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .envs(env.iter().copied())
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
pub async fn connect(driver: &Driver, args: &[String]) -> Client {
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
pub async fn wait_text(
    c: &Client,
    selector: &str,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> String {
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

pub async fn find(c: &Client, selector: &str) -> Element {
    c.wait()
        .at_most(UI_DEADLINE)
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector} not found: {e}"))
}

/// Clicks `selector`, finding it again if the dashboard re-rendered it in between (it redraws
/// on every state change, which makes a found element stale).
pub async fn click(c: &Client, selector: &str) {
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

pub async fn type_into(c: &Client, selector: &str, text: &str) {
    let el = find(c, selector).await;
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

pub async fn screenshot(c: &Client, dir: &Path, name: &str) {
    match tokio::time::timeout(SHOT_DEADLINE, c.screenshot()).await {
        Ok(Ok(png)) => {
            let _ = std::fs::write(dir.join(format!("{name}.png")), png);
        }
        Ok(Err(e)) => eprintln!("no {name} screenshot: {e}"),
        Err(_) => eprintln!("no {name} screenshot: {NO_SHOT}"),
    }
}

/// How much of the tray menu [`Shots::tray_menu`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayOpen {
    /// The menu with the first server's submenu expanded (its actions).
    FirstServer,
    /// The top-level menu only (the servers' states, the company entry).
    MenuOnly,
}

/// How long a WebDriver screenshot may take. WebKitWebDriver's screenshot reads the page back
/// through GL in the app process, which the app keeps GL out of (`desktop::webkit`): there it
/// never answers, so a failing test still reports instead of hanging.
const SHOT_DEADLINE: Duration = Duration::from_secs(10);
const NO_SHOT: &str = "WebKitWebDriver did not answer; screenshots need the app started with \
    WEBKIT_DISABLE_DMABUF_RENDERER=0 (WebKit's default rendering), as scripts/screenshots.sh does";

/// Pictures for the README, taken only when `scripts/screenshots.sh` asks (it sets
/// `MCP_AUTH_BROKER_SCREENSHOTS` to the output folder and runs a tray host).
pub struct Shots(pub Option<PathBuf>);

impl Shots {
    pub fn from_env() -> Shots {
        Shots(std::env::var_os("MCP_AUTH_BROKER_SCREENSHOTS").map(PathBuf::from))
    }

    pub async fn window(&self, c: &Client, name: &str) {
        if let Some(dir) = &self.0 {
            // Let WebKit paint the current DOM (two animation frames) before capturing it.
            let paint = "const done = arguments[arguments.length - 1]; \
                requestAnimationFrame(() => requestAnimationFrame(() => done(true)));";
            c.execute_async(paint, vec![])
                .await
                .expect("animation frames");
            let png = tokio::time::timeout(SHOT_DEADLINE, c.screenshot())
                .await
                .expect(NO_SHOT)
                .expect("window screenshot");
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }

    /// Opens the real tray menu (click on the icon at `MCP_AUTH_BROKER_TRAY_ICON`, "X Y"),
    /// expands the first server's submenu if `open` says so, and captures the screen.
    pub fn tray_menu(&self, name: &str, open: TrayOpen) {
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
        if open == TrayOpen::FirstServer {
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
        }
        let out = dir.join(format!("{name}.png"));
        run(&["import", "-window", "root", out.to_str().unwrap()]);
        run(&["xdotool", "key", "Escape", "key", "Escape"]);
    }
}
