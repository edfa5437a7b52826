//! `login`, `logout`, `check` as the real binary: through a running broker's admin API (the CLI
//! opens the browser on its side), and with no broker running (the CLI runs the same core and
//! keeps the tokens in the real OS keychain). The browser is `BROWSER`, honoured by
//! `webbrowser`: a script that follows the sign-in redirects like a person clicking "approve".
//! `login --enterprise` signs in to a company identity provider (`oidc-provider`, its pages
//! walked over HTTP) and `status` then says which servers it serves.

use crate::support;

use std::sync::Arc;

use mcp_auth_broker::broker::{Broker, Settings};
use mcp_auth_broker::config::ServerName;
use mcp_auth_broker::opener::Opener;
use mcp_auth_broker::vault::KeyringStore;
use serde_json::json;
use support::cli::text;
use support::*;

#[tokio::test]
async fn login_through_the_running_broker_signs_in_and_logout_signs_out() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"demo": {"url": up.mcp_url}}})).await;
    let name = mcp_auth_broker::config::ServerName::parse("demo").unwrap();
    let cli = Cli::of(&b);

    let out = cli.run(&["login", "demo"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("Signed in to \"demo\""),
        "{}",
        text(&out)
    );
    assert!(
        b.broker.upstream().token_facts(&name).await.has_token,
        "the running broker holds the token"
    );
    assert_eq!(
        b.browser.opened().len(),
        0,
        "the CLI opened the browser, not the broker"
    );

    let out = cli.run(&["check", "demo"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = cli.run(&["logout", "demo"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !b.broker.upstream().token_facts(&name).await.has_token,
        "logout deleted the token"
    );

    // `status NAME` tells the story: discovery, registration, sign-in, sign-out.
    let out = cli.run(&["status", "demo"]).await;
    let story = text(&out);
    for step in [
        "auth timeline",
        "ok    discovery: authorization server",
        "ok    client registration: dynamically registered client",
        "ok    sign-in: signed in",
        "ok    sign-out: signed out",
    ] {
        assert!(story.contains(step), "{step}: {story}");
    }
    let out = cli.run(&["status", "nope"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no server named \"nope\" in the running broker"));

    let out = cli.run(&["login", "nope"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("no server named \"nope\""),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn login_no_browser_prints_the_address_and_waits_for_the_person() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"demo": {"url": up.mcp_url}}})).await;
    let cli = Cli::of(&b);
    // The person opens the printed address in a browser that reaches the callback (the
    // terminal keeps waiting for a paste it never gets).
    let (run, url) = no_browser_login(&cli).await;
    assert!(url.starts_with(&up.auth_server.issuer), "{url}");
    let followed = reqwest::get(&url).await.unwrap();
    assert!(followed.status().is_success(), "{}", followed.status());
    let (code, out) = run.exit().await;
    assert_eq!(code, Some(0), "{out}");
    let name = mcp_auth_broker::config::ServerName::parse("demo").unwrap();
    assert!(b.broker.upstream().token_facts(&name).await.has_token);
}

#[test]
#[ignore = "needs the OS keychain (Secret Service); run by scripts/test.sh"]
fn login_with_no_broker_running_runs_the_core_and_keeps_the_token_in_the_os_keychain() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = rt.block_on(TestUpstream::start(UpstreamOptions::oauth()));
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("config.json");
    // A server name unique to this run, so keychain entries of other runs never interfere.
    let server = format!("kc{}", std::process::id());
    std::fs::write(
        &config,
        json!({"mcp_servers": {server.clone(): {"url": up.mcp_url}}}).to_string(),
    )
    .unwrap();
    let cli = Cli {
        config,
        data: dir.path().join("data"),
        port,
        home: dir.path().to_path_buf(),
    };
    let out = cli.command(&["login", &server]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Signed in"), "{}", text(&out));
    // A fresh broker over the same data dir finds the token in the OS keychain: no new sign-in.
    let has_token = |cli: &Cli| {
        let settings = Settings {
            port: cli.port,
            config_path: cli.config.clone(),
            data_dir: cli.data.clone(),
            opener: Opener::Print,
        };
        let broker = Broker::new(settings, Arc::new(KeyringStore)).unwrap();
        let name = ServerName::parse(&server).unwrap();
        rt.block_on(broker.upstream().token_facts(&name)).has_token
    };
    assert!(
        has_token(&cli),
        "the token survives the CLI process, in the keychain"
    );
    let out = cli.command(&["logout", &server]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        count(&up.oauth().counters.revoke) >= 1,
        "logout revoked the stored token upstream"
    );
}

#[tokio::test]
async fn login_asks_to_choose_oauth_flow_before_any_browser_opens() {
    std::env::set_var("GH_STYLE_SECRET", "gh-secret");
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    // GitHub's shape: no metadata, so both endpoints and a client secret are configured.
    let b = TestBroker::start(json!({"mcp_servers": {"gh": {
        "url": up.mcp_url, "client_id": "Iv1.abc", "client_secret": "os.environ/GH_STYLE_SECRET",
        "authorization_url": format!("{}/authorize", up.as_url), "token_url": up.auth_server.token_url()}}}))
    .await;
    let out = Cli::of(&b).run(&["login", "gh"]).await;
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("set \"oauth_flow\": \"authorization_code\""),
        "{}",
        text(&out)
    );
    assert_eq!(
        count(&up.oauth().counters.authorize),
        0,
        "no browser was sent to the authorization server"
    );
    let name = mcp_auth_broker::config::ServerName::parse("gh").unwrap();
    let steps = b.broker.upstream().timeline(&name);
    assert!(
        steps
            .iter()
            .any(|s| !s.ok && s.detail.contains("oauth_flow")),
        "{steps:?}"
    );
}

/// A 2025-03-26 server without any metadata: its guessed `/authorize` refuses the person
/// (`access_denied`) so the sign-in ends at once.
async fn server_without_metadata() -> String {
    use axum::extract::Query;
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::{get, post};
    use std::collections::HashMap;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let app = axum::Router::new()
        .route(
            "/mcp",
            post(|| async { axum::http::StatusCode::UNAUTHORIZED }),
        )
        .route(
            "/register",
            post(|| async {
                let body = json!({"client_id": "guessed-client", "redirect_uris": []});
                (axum::http::StatusCode::CREATED, axum::Json(body))
            }),
        )
        .route(
            "/authorize",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let (Some(back), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
                    return axum::http::StatusCode::BAD_REQUEST.into_response();
                };
                Redirect::to(&format!("{back}?error=access_denied&state={state}")).into_response()
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test]
async fn login_warns_that_the_endpoints_were_guessed_before_the_browser_opens() {
    let base = server_without_metadata().await;
    let b =
        TestBroker::start(json!({"mcp_servers": {"old": {"url": format!("{base}/mcp")}}})).await;
    let cli = Cli::of(&b);
    // The browser notes when it opens in the file the CLI's stderr goes to (both append).
    let script = cli.home.join("follow-browser.sh");
    let log = cli.home.join("login.log");
    let mut cmd = cli.command(&["login", "old"]);
    let stderr_file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    cmd.stderr(stderr_file);
    let browser = format!(
        "#!/bin/sh\necho BROWSER-OPENED >> '{}'\nexec curl -sS -L --max-redirs 10 -o /dev/null \"$1\"\n",
        log.display()
    );
    tokio::task::spawn_blocking(move || {
        std::fs::write(&script, browser).unwrap();
        cmd.output().unwrap()
    })
    .await
    .unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    let warned = stderr
        .find("endpoints were guessed")
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    let opened = stderr
        .find("BROWSER-OPENED")
        .unwrap_or_else(|| panic!("no browser: {stderr}"));
    assert!(warned < opened, "the warning comes first: {stderr}");
    assert!(stderr.contains(&format!("{base}/authorize")), "{stderr}");
    assert!(
        stderr.contains("set \"authorization_url\" and \"token_url\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("access_denied"),
        "the sign-in ended: {stderr}"
    );
}

/// The person's browser on another computer: it follows the authorization address to the
/// redirect, which never arrives (the callback is on the SSH host); the address it ended on.
async fn browser_elsewhere(authorize_url: &str) -> url::Url {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client.get(authorize_url).send().await.unwrap();
    assert_eq!(resp.status(), 302, "the authorization server redirects");
    url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap()
}

/// `login --no-browser` on a running broker: the printed address, then the person pastes.
async fn no_browser_login(cli: &Cli) -> (Interactive, String) {
    let mut run = Interactive::spawn(cli.command(&["login", "demo", "--no-browser"]));
    let url = run.line(|l| l.trim().starts_with("http")).await;
    let ssh = run.line(|l| l.contains("ssh -L")).await;
    let port = cli.port;
    assert!(
        ssh.contains(&format!("ssh -L {port}:127.0.0.1:{port}")),
        "{ssh}"
    );
    (run, url.trim().to_string())
}

#[tokio::test]
async fn login_no_browser_finishes_with_the_pasted_address_and_refuses_another_sign_ins_state() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"demo": {"url": up.mcp_url}}})).await;
    let (mut run, url) = no_browser_login(&Cli::of(&b)).await;
    let ended_on = browser_elsewhere(&url).await;
    assert!(ended_on.as_str().contains("/oauth/callback?"), "{ended_on}");

    // An address from some other sign-in: refused by name, and nothing is spent.
    let mut other = ended_on.clone();
    let pairs: Vec<(String, String)> = ended_on
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    other.query_pairs_mut().clear().extend_pairs(
        pairs
            .iter()
            .map(|(k, v)| (k.as_str(), if k == "state" { "someone-elses" } else { v })),
    );
    run.type_line(other.as_str());
    let refused = run.line(|l| l.contains("did not finish")).await;
    assert!(refused.contains("belongs to another sign-in"), "{refused}");

    run.type_line(ended_on.as_str());
    let (code, out) = run.exit().await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Signed in to \"demo\""), "{out}");
    let name = ServerName::parse("demo").unwrap();
    let facts = b.broker.upstream().token_facts(&name).await;
    assert!(facts.has_token && facts.has_refresh_token, "{facts:?}");
    assert_eq!(count(&up.oauth().counters.token_authorization_code), 1);
}

#[tokio::test]
async fn login_no_browser_finishes_with_a_pasted_bare_code() {
    let up = TestUpstream::start(UpstreamOptions {
        auth_server: AsOptions {
            iss: false,
            ..AsOptions::default()
        },
        ..UpstreamOptions::oauth()
    })
    .await;
    let b = TestBroker::start(json!({"mcp_servers": {"demo": {"url": up.mcp_url}}})).await;
    let (mut run, url) = no_browser_login(&Cli::of(&b)).await;
    let ended_on = browser_elsewhere(&url).await;
    let code = ended_on
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    run.type_line(&format!("  {code}  "));
    let (status, out) = run.exit().await;
    assert_eq!(status, Some(0), "{out}");
    let name = ServerName::parse("demo").unwrap();
    assert!(b.broker.upstream().token_facts(&name).await.has_token);
}

#[tokio::test]
async fn a_bare_code_is_refused_when_the_server_promises_iss_and_the_whole_address_still_works() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"demo": {"url": up.mcp_url}}})).await;
    let (mut run, url) = no_browser_login(&Cli::of(&b)).await;
    let ended_on = browser_elsewhere(&url).await;
    let code = ended_on
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    run.type_line(&code);
    let refused = run.line(|l| l.contains("did not finish")).await;
    assert!(
        refused.contains("iss") && refused.contains("paste the whole address"),
        "{refused}"
    );
    run.type_line(ended_on.as_str());
    let (status, out) = run.exit().await;
    assert_eq!(status, Some(0), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_enterprise_signs_in_to_the_company_and_status_shows_the_servers_via_it() {
    let idp = support::company_idp::CompanyIdp::start().await;
    std::env::set_var(
        "CLI_IDP_SECRET",
        support::company_idp::CompanyIdp::CLIENT_SECRET,
    );
    let config = json!({
        "enterprise": {"name": "Acme", "issuer": idp.issuer,
                       "client_id": support::company_idp::CompanyIdp::CLIENT_ID,
                       "client_secret": "os.environ/CLI_IDP_SECRET"},
        "mcp_servers": {"docs": {"url": "http://127.0.0.1:9/mcp", "oauth_flow": "enterprise",
                                 "client_id": "broker-at-docs"}},
    });
    let b = TestBroker::start(config).await;
    let cli = Cli::of(&b);
    let before = cli.run(&["status"]).await;
    assert!(
        text(&before).contains(
            "Company sign-in (Acme): not signed in; run `mcp-auth-broker login --enterprise`"
        ),
        "{}",
        text(&before)
    );

    let mut run = Interactive::spawn(cli.command(&["login", "--enterprise", "--no-browser"]));
    let url = run.line(|l| l.trim().starts_with("http")).await;
    assert!(url.trim().starts_with(&idp.issuer), "{url}");
    let page = support::oidc::sign_in_at(url.trim()).await;
    let (code, out) = run.exit().await;
    assert_eq!(code, Some(0), "{out}\n{page}");
    assert!(out.contains("Signed in to \"Acme\""), "{out}");

    let after = text(&cli.run(&["status"]).await);
    assert!(after.contains("Your company sign-in via Acme"), "{after}");
    assert!(
        after.contains("Company sign-in (Acme): signed in, renewed without you"),
        "{after}"
    );
    assert!(
        b.browser.opened().is_empty(),
        "the CLI opened the browser, not the broker"
    );
}

#[tokio::test]
async fn login_enterprise_without_an_enterprise_block_says_what_to_add() {
    let b = TestBroker::start(json!({"mcp_servers": {}})).await;
    let out = Cli::of(&b).run(&["login", "--enterprise"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no \"enterprise\" block"),
        "{}",
        text(&out)
    );
}
