//! The company sign-in in the real app: two servers marked `oauth_flow: enterprise` wait for the
//! company (Acme, `oidc-provider` issuing ID-JAGs: `support::company_idp`); the person clicks
//! "Sign in to Acme" in the tray menu, signs in on the provider's pages in the browser, and both
//! servers are ready "via Acme" while the tray's company entry says signed in. With README
//! screenshots asked for, it pictures that tray menu (`docs/screenshots/tray-company.png`).

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::Client;
use futures_util::FutureExt as _;
use serde_json::json;
use tokio::sync::mpsc;

use crate::close_reopen::app_pid;
use crate::driver::{
    connect, find, free_port, screenshot, start_driver_with, wait_text, Shots, TrayOpen,
};
use crate::support::company_idp::CompanyIdp;
use crate::support::oidc::sign_in_at;
use crate::support::TestUpstream;
use crate::traymenu::TrayMenu;
use crate::{app_args, ONE_APP};

const SERVERS: [&str; 2] = ["docs", "tickets"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Xvfb + tauri-driver; run by scripts/test.sh"]
async fn one_company_sign_in_from_the_tray_readies_both_servers_via_acme_and_the_tray_says_signed_in(
) {
    let _one_app = ONE_APP.lock().await;
    let idp = CompanyIdp::start().await;
    let (docs, tickets) = (idp.server(false).await, idp.server(false).await);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config.json");
    let server = |up: &TestUpstream| {
        json!({"url": up.mcp_url, "oauth_flow": "enterprise",
        "client_id": CompanyIdp::JAG_CLIENT_ID, "client_secret": "os.environ/ACME_MCP_SECRET"})
    };
    let file = json!({
        "enterprise": {"name": "Acme", "issuer": idp.issuer, "client_id": CompanyIdp::CLIENT_ID,
                       "client_secret": "os.environ/ACME_IDP_SECRET"},
        "mcp_servers": {"docs": server(&docs), "tickets": server(&tickets)},
    });
    std::fs::write(&config, file.to_string()).unwrap();
    let (browser, opened) = browser_hand_over(dir.path()).await;
    let env = [
        ("BROWSER", browser.as_path()),
        ("ACME_IDP_SECRET", Path::new(CompanyIdp::CLIENT_SECRET)),
        ("ACME_MCP_SECRET", Path::new("mcp-secret")),
    ];
    let driver = start_driver_with(dir.path(), &env);
    let c = connect(&driver, &app_args(&config, dir.path(), port)).await;
    let result = AssertUnwindSafe(scenario(&c, &dir.path().join("data"), opened))
        .catch_unwind()
        .await;
    if result.is_err() {
        screenshot(&c, dir.path(), "failure").await;
        eprintln!("screenshot and config kept in {}", dir.keep().display());
    }
    let _ = c
        .execute("document.getElementById('quit').click()", vec![])
        .await;
    let _ = c.close().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    let counts = idp.counts().await;
    assert_eq!(counts["sign_ins"], 1, "one sign-in: {counts}");
    assert!(
        counts["exchanges"].as_u64() >= Some(2),
        "an ID-JAG per server: {counts}"
    );
}

async fn scenario(c: &Client, data_dir: &Path, mut opened: mpsc::Receiver<String>) {
    find(c, "body[data-ready='true']").await;
    let shots = Shots::from_env();
    if shots.0.is_some() {
        // Under the screenshot script's XEmbed tray the hint is shown; it is not the subject.
        let hint = "return !document.getElementById('tray-hint-box').hidden";
        if c.execute(hint, vec![]).await.unwrap() == json!(true) {
            crate::driver::click(c, "#tray-hint-dismiss").await;
        }
    }
    for name in SERVERS {
        let row = format!("tr[data-server='{name}']");
        wait_text(c, &format!("{row} .via"), "via Acme", |t| t == "via Acme").await;
        wait_text(c, &format!("{row} .problem-sentence"), "the company", |t| {
            t.starts_with("Not signed in to your company")
        })
        .await;
    }
    let tray = TrayMenu::of(app_pid(data_dir));
    tray.click("Sign in to Acme").await;

    // The browser step: the person signs in on the company's own pages.
    let url = tokio::time::timeout(Duration::from_secs(30), opened.recv())
        .await
        .expect("the app opens the company's sign-in page in the browser")
        .unwrap();
    assert!(url.contains("/auth?"), "the provider's sign-in page: {url}");
    let page = sign_in_at(&url).await;
    for name in SERVERS {
        let row = format!("tr[data-server='{name}']");
        wait_text(c, &format!("{row} .state"), "healthy", |t| t == "healthy").await;
        wait_text(c, &format!("{row} .via"), "via Acme", |t| t == "via Acme").await;
        wait_text(c, &format!("{row} .flow-name"), "the flow", |t| {
            t == "Your company sign-in"
        })
        .await;
    }
    let entries = tray
        .wait("the company signed in", |e| {
            e.iter()
                .any(|e| e.label == "Signed in to Acme — sign in again")
        })
        .await;
    for name in SERVERS {
        let line = format!("{name} — healthy · Your company sign-in");
        assert!(
            entries.iter().any(|e| e.label == line),
            "{line} in the tray: {entries:?} (the browser's last page: {page})"
        );
    }
    shots.tray_menu("tray-company", TrayOpen::MenuOnly);
}

/// A `BROWSER` that hands each address it is given to this test (which plays the person on the
/// provider's pages, `sign_in_at`): it posts the address to a listener of the test.
async fn browser_hand_over(dir: &Path) -> (PathBuf, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel(4);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/open",
        axum::routing::post(move |url: String| async move {
            let _ = tx.send(url).await;
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let path = dir.join("hand-over-browser.sh");
    let script = format!(
        "#!/bin/sh\nexec curl -sS --max-time 10 --data-binary \"$1\" http://127.0.0.1:{port}/open\n"
    );
    std::fs::write(&path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (path, rx)
}
