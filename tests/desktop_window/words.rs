//! Errors in a person's words in the real window: a server whose upstream refuses connections
//! shows one sentence saying what happened and what to do, and its "details" toggle reveals the
//! raw cause. With README screenshots asked for, it also pictures the consent page a client
//! opens in the browser (one server ready to sign in, one that cannot be signed in).

use std::panic::AssertUnwindSafe;

use fantoccini::{Client, Locator};
use futures_util::FutureExt as _;
use serde_json::json;

use crate::driver::{click, connect, find, free_port, screenshot, start_driver, wait_text, Shots};
use crate::support::{TestUpstream, UpstreamOptions};
use crate::{app_args, ONE_APP};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Xvfb + tauri-driver; run by scripts/test.sh"]
async fn window_says_a_refused_connection_in_one_sentence_and_details_show_the_raw_cause() {
    let _one_app = ONE_APP.lock().await;
    // A port nothing listens on: the upstream refuses every connection.
    let closed = free_port();
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config.json");
    let servers = json!({ "mcp_servers": {
        "down": { "url": format!("http://127.0.0.1:{closed}/mcp") },
        "github": { "url": up.mcp_url, "oauth_flow": "authorization_code" },
    }});
    std::fs::write(&config, servers.to_string()).unwrap();
    let driver = start_driver(dir.path());
    let c = connect(&driver, &app_args(&config, dir.path(), port)).await;
    let result = AssertUnwindSafe(scenario(&c, port, closed))
        .catch_unwind()
        .await;
    if result.is_err() {
        screenshot(&c, dir.path(), "failure").await;
        eprintln!("screenshot kept in {}", dir.keep().display());
    }
    let _ = c
        .execute("document.getElementById('quit').click()", vec![])
        .await;
    let _ = c.close().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

async fn scenario(c: &Client, port: u16, closed: u16) {
    find(c, "body[data-ready='true']").await;
    let row = "tr[data-server='down']";
    let sentence = wait_text(
        c,
        &format!("{row} .problem-sentence"),
        "one sentence",
        |t| t.starts_with("The server refused the connection — check that it is running"),
    )
    .await;
    assert!(
        !sentence.contains("os error") && !sentence.contains("tcp connect"),
        "the raw cause stays behind the toggle: {sentence}"
    );
    // Folded away until asked for: the toggle starts closed and opens on a click.
    let open = format!("return document.querySelector(\"{row} .problem-more\").open");
    assert_eq!(c.execute(&open, vec![]).await.unwrap(), json!(false));
    click(c, &format!("{row} .problem-more summary")).await;
    assert_eq!(c.execute(&open, vec![]).await.unwrap(), json!(true));
    let shown = wait_text(
        c,
        &format!("{row} .problem-details"),
        "the raw cause",
        |t| t.contains("Connection refused"),
    )
    .await;
    assert!(shown.contains(&format!("127.0.0.1:{closed}")), "{shown}");
    // The flow reads as people say it, with the protocol term as its detail.
    let gh = "tr[data-server='github']";
    wait_text(c, &format!("{gh} .flow-name"), "the flow", |t| {
        t == "Browser sign-in"
    })
    .await;
    wait_text(c, &format!("{gh} .flow-term"), "the protocol term", |t| {
        t.contains("authorization_code")
    })
    .await;
    consent_pictures(c, port).await;
}

/// The consent page in the app's own WebKit, for the README: a server to sign in to, and one
/// that cannot be signed in (the fix instead of Allow). Only when screenshots are asked for.
async fn consent_pictures(c: &Client, port: u16) {
    let shots = Shots::from_env();
    if shots.0.is_none() {
        return;
    }
    let base = format!("http://127.0.0.1:{port}");
    for (server, name) in [("github", "consent"), ("down", "consent-problem")] {
        let url = authorize_url(&base, server).await;
        c.goto(&url).await.expect("the consent page opens");
        let h1 = c
            .find(Locator::Css("h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!h1.is_empty());
        if name == "consent-problem" {
            click(c, ".problem details summary").await;
        }
        shots.window(c, name).await;
    }
    c.back().await.unwrap();
    c.back().await.unwrap();
    find(c, "body[data-ready='true']").await;
}

/// A registered client's authorization request for `server`, as Claude Code would send it.
async fn authorize_url(base: &str, server: &str) -> String {
    let redirect = "http://127.0.0.1:43210/callback";
    let reg: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/register"))
        .json(&json!({"client_name": "Claude Code", "redirect_uris": [redirect], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut url = url::Url::parse(&format!("{base}/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", reg["client_id"].as_str().unwrap())
        .append_pair("redirect_uri", redirect)
        .append_pair("state", "s")
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", &format!("{base}/{server}/mcp"));
    url.to_string()
}
