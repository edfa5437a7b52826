//! Device sign-in (RFC 8628) end to end: `login` through a running broker shows the code, its
//! address and a QR code, polls with the server's interval, and keeps the tokens as the browser
//! sign-in does (refresh works after); `slow_down`, a refusal and an expired code end it the
//! way RFC 8628 says. Against the test AS (deterministic scripts) and `oidc-provider` (a
//! certified OpenID provider, its verification pages driven over HTTP).

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_auth_broker::config::ServerName;
use mcp_auth_broker::upstream::classify::DEVICE_FLOW;
use mcp_auth_broker::upstream::device::{self, CodeRequest};
use mcp_auth_broker::upstream::oauth::{PollSleep, TokenCall};
use mcp_auth_broker::upstream::registration::{ClientAuth, ClientInfo};
use serde_json::json;
use support::cli::text;
use support::*;

/// An upstream whose authorization server offers device sign-in, polled every second.
async fn device_upstream() -> TestUpstream {
    TestUpstream::start(UpstreamOptions {
        auth_server: AsOptions {
            device_interval: Some(1),
            ..AsOptions::default()
        },
        ..UpstreamOptions::oauth()
    })
    .await
}

/// `login demo` (with `args`) as the person at the terminal: the address and code it shows.
async fn device_login(cli: &Cli, args: &[&str]) -> (Interactive, String, String) {
    let mut run = Interactive::spawn(cli.command(&[&["login", "demo"], args].concat()));
    let address = run.line(|l| l.trim().starts_with("http")).await;
    let code = run.line(|l| l.contains("confirm the code:")).await;
    let code = code.rsplit(' ').next().unwrap().to_string();
    (run, address.trim().to_string(), code)
}

#[tokio::test]
async fn login_shows_the_device_code_and_keeps_tokens_that_refresh_when_the_server_offers_device_flow(
) {
    let up = device_upstream().await;
    let b = TestBroker::start(json!({"mcp_servers": {"demo": {"url": up.mcp_url}}})).await;
    let name = ServerName::parse("demo").unwrap();
    let server = b.broker.server("demo").unwrap();
    let upstream = b.broker.upstream().clone();
    let evidence = upstream.classify(&server).await.unwrap().evidence;
    assert!(evidence.iter().any(|e| e == DEVICE_FLOW), "{evidence:?}");

    let (mut run, address, code) = device_login(&Cli::of(&b), &[]).await;
    assert_eq!(up.oauth().user_codes(), vec![code.clone()]);
    assert_eq!(
        address,
        format!("{}/device?user_code={code}", up.auth_server.issuer)
    );
    // A QR code (half blocks) follows, and the broker shows the running sign-in too.
    run.line(|l| l.contains('█') || l.contains('▀')).await;
    let running = upstream.device_code(&name).expect("a device sign-in runs");
    assert_eq!(
        (running.user_code.as_str(), running.open_uri()),
        (code.as_str(), address.as_str())
    );

    // The person opens the address on a phone and approves.
    let page = reqwest::get(&address).await.unwrap();
    assert!(page.status().is_success());
    let (status, out) = run.exit().await;
    assert_eq!(status, Some(0), "{out}");
    assert!(out.contains("Signed in to \"demo\""), "{out}");
    assert!(upstream.device_code(&name).is_none(), "it ended");
    assert_eq!(count(&up.oauth().counters.token_authorization_code), 0);
    let registered = up.oauth().registrations.lock().unwrap().last().cloned();
    let grants = registered.expect("registered")["grant_types"].clone();
    assert!(grants.to_string().contains(device::GRANT_TYPE), "{grants}");

    // The same token record as a browser sign-in: used, then refreshed once refused.
    let facts = upstream.token_facts(&name).await;
    assert!(facts.has_token && facts.has_refresh_token, "{facts:?}");
    let first = upstream.credential(&server).await.unwrap();
    up.oauth().expire_access_tokens();
    let refreshed = upstream.after_rejection(&server, &first).await.unwrap();
    assert_ne!(refreshed.bearer, first.bearer);
    assert_eq!(count(&up.oauth().counters.token_refresh), 1);
    let steps = upstream.timeline(&name);
    assert!(
        steps
            .iter()
            .any(|s| s.ok && s.detail.contains("device code confirmed")),
        "{steps:?}"
    );
}

#[tokio::test]
async fn a_device_code_that_expires_or_is_refused_ends_the_login_with_what_happened() {
    let up = device_upstream().await;
    let b = TestBroker::start(json!({"mcp_servers": {"demo": {"url": up.mcp_url}}})).await;
    let cli = Cli::of(&b);
    let (run, _, code) = device_login(&cli, &["--device"]).await;
    up.oauth().expire_device(&code);
    let (status, out) = run.exit().await;
    assert_eq!(status, Some(1), "{out}");
    assert!(
        out.contains(&format!("the code {code} expired before it was confirmed"))
            && out.contains("run `mcp-auth-broker login demo` again"),
        "{out}"
    );

    let (run, _, code) = device_login(&cli, &[]).await;
    up.oauth().deny_device(&code);
    let (status, out) = run.exit().await;
    assert_eq!(status, Some(1), "{out}");
    assert!(
        out.contains("refused on the verification page (access_denied)"),
        "{out}"
    );
    let name = ServerName::parse("demo").unwrap();
    assert!(!b.broker.upstream().token_facts(&name).await.has_token);
}

#[tokio::test]
async fn login_device_on_a_server_without_device_flow_says_to_paste_back_instead() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(json!({"mcp_servers": {"demo": {"url": up.mcp_url}}})).await;
    let out = Cli::of(&b).run(&["login", "demo", "--device"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("does not offer device sign-in")
            && text(&out).contains("login demo --no-browser"),
        "{}",
        text(&out)
    );
    assert_eq!(count(&up.oauth().counters.device_authorization), 0);
}

#[tokio::test]
async fn polling_keeps_the_servers_interval_and_adds_five_seconds_per_slow_down() {
    let up = device_upstream().await;
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let client = ClientInfo::new(
        "public-app".into(),
        None,
        mcp_auth_broker::upstream::clientauth::Plan {
            first: ClientAuth::None,
            fallback: None,
        },
    );
    let token = up.auth_server.token_url();
    let request = CodeRequest {
        http: &http,
        data_dir: dir.path(),
        server: "demo",
        url: url::Url::parse(&format!("{}/device_authorization", up.auth_server.issuer)).unwrap(),
        token_endpoint: &token,
        scope: Some("mcp:read"),
        params: vec![],
    };
    let details = device::request_code(request, client.clone()).await.unwrap();
    assert_eq!(details.interval(), Duration::from_secs(1));
    up.oauth().slow_down_polls(2);
    // The poll clock: records each wait and returns at once; the person approves during the
    // fourth wait.
    let waits = Arc::new(Mutex::new(Vec::new()));
    let (w, state, code) = (
        waits.clone(),
        up.oauth().clone(),
        details.user_code().secret().clone(),
    );
    let sleep: PollSleep = Arc::new(move |d| {
        let mut waits = w.lock().unwrap();
        waits.push(d.as_secs());
        if waits.len() == 4 {
            state.approve_device(&code);
        }
        Box::pin(async {})
    });
    let call = TokenCall {
        http: &http,
        data_dir: dir.path(),
        server: "demo",
        url: oauth2::TokenUrl::new(token.clone()).unwrap(),
        params: vec![],
        dpop: None,
    };
    let (resp, _) = device::poll(call, client, details, sleep).await.unwrap();
    use oauth2::TokenResponse;
    assert!(up.oauth().validate(resp.access_token().secret()).is_some());
    // Before the first poll, after slow_down (+5), after slow_down (+5), after pending.
    assert_eq!(*waits.lock().unwrap(), vec![1, 6, 11, 11]);
    assert_eq!(count(&up.oauth().counters.token_device_code), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_sign_in_with_oidc_provider_is_confirmed_on_its_own_pages_and_refreshes() {
    let op = oidc::OidcProvider::start(600).await;
    let mcp = oidc::protected_upstream(&op.issuer).await;
    let b = TestBroker::start(json!({"mcp_servers": {"demo": {"url": mcp}}})).await;
    let (run, address, code) = device_login(&Cli::of(&b), &[]).await;
    assert!(
        address.starts_with(&format!("{}/device?user_code=", op.issuer)),
        "{address}"
    );
    // The person: the code's page, the confirmation, the provider's sign-in and consent.
    let last = oidc::confirm_device(&address).await;
    assert!(last.contains("Sign-in Success"), "{last}");
    let (status, out) = run.exit().await;
    assert_eq!(status, Some(0), "{out}");
    assert!(out.contains(&code), "{out}");

    let (name, server) = (
        ServerName::parse("demo").unwrap(),
        b.broker.server("demo").unwrap(),
    );
    let upstream = b.broker.upstream().clone();
    let facts = upstream.token_facts(&name).await;
    assert!(facts.has_token && facts.has_refresh_token, "{facts:?}");
    let first = upstream.credential(&server).await.unwrap();
    let refreshed = upstream.after_rejection(&server, &first).await.unwrap();
    assert!(refreshed.bearer.is_some() && refreshed.bearer != first.bearer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oidc_provider_device_code_nobody_confirms_expires_and_ends_the_login() {
    let op = oidc::OidcProvider::start(2).await;
    let mcp = oidc::protected_upstream(&op.issuer).await;
    let b = TestBroker::start(json!({"mcp_servers": {"demo": {"url": mcp}}})).await;
    let (run, _, code) = device_login(&Cli::of(&b), &["--device"]).await;
    let (status, out) = run.exit().await;
    assert_eq!(status, Some(1), "{out}");
    assert!(
        out.contains(&format!("the code {code} expired before it was confirmed")),
        "{out}"
    );
    let name = ServerName::parse("demo").unwrap();
    assert!(!b.broker.upstream().token_facts(&name).await.has_token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_broker_running_login_runs_the_core_and_finishes_by_device_code_or_by_paste() {
    let device_up = device_upstream().await;
    let plain_up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("config.json");
    let servers = json!({"mcp_servers": {
        "demo": {"url": device_up.mcp_url},
        "plain": {"url": plain_up.mcp_url}}});
    std::fs::write(&config, servers.to_string()).unwrap();
    let cli = Cli {
        config,
        data: dir.path().join("data"),
        port,
        home: dir.path().to_path_buf(),
    };
    // The encrypted file store: no keychain, no D-Bus needed.
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let command = |args: &[&str]| {
        let mut cmd = cli.command(&[args, &["--store", "file"]].concat());
        cmd.env(mcp_auth_broker::vault::filekey::KEY_ENV, key);
        cmd
    };

    let mut run = Interactive::spawn(command(&["login", "demo"]));
    let address = run.line(|l| l.trim().starts_with("http")).await;
    reqwest::get(address.trim()).await.unwrap();
    let (status, out) = run.exit().await;
    assert_eq!(status, Some(0), "{out}");

    let mut run = Interactive::spawn(command(&["login", "plain", "--no-browser"]));
    let url = run.line(|l| l.trim().starts_with("http")).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client.get(url.trim()).send().await.unwrap();
    run.type_line(resp.headers()["location"].to_str().unwrap());
    let (status, out) = run.exit().await;
    assert_eq!(status, Some(0), "{out}");

    // Both sign-ins kept their tokens: each logout finds one to revoke.
    for (name, up) in [("demo", &device_up), ("plain", &plain_up)] {
        let mut logout = command(&["logout", name]);
        let out = tokio::task::spawn_blocking(move || logout.output().unwrap())
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(count(&up.oauth().counters.revoke) >= 1, "{name}");
    }
}

/// DPoP (RFC 9449) beyond the suite's mocks: oidc-provider requires DPoP-bound tokens (and its
/// nonces) from the broker's client; the upstream checks every proof, its own nonce and the
/// token's binding to the proof key. The person signs in by device code; then the official
/// TypeScript SDK, a local client, gets tool results through the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_client_reaches_an_upstream_requiring_dpop_bound_tokens_from_oidc_provider() {
    let up = oidc::DpopUpstream::start().await;
    let entry = json!({"url": up.url, "client_id": "broker-dpop"});
    let b = TestBroker::start(json!({"mcp_servers": {"demo": entry}})).await;
    let (run, address, _) = device_login(&Cli::of(&b), &[]).await;
    let last = oidc::confirm_device(&address).await;
    assert!(last.contains("Sign-in Success"), "{last}");
    let (status, out) = run.exit().await;
    assert_eq!(status, Some(0), "{out}");

    let (name, server) = (
        ServerName::parse("demo").unwrap(),
        b.broker.server("demo").unwrap(),
    );
    let upstream = b.broker.upstream().clone();
    let facts = upstream.token_facts(&name).await;
    let jkt = facts.dpop_jkt.clone().expect("the token is DPoP-bound");
    assert!(facts.has_refresh_token, "{facts:?}");

    let report = node::sdk_client(&b.client_url("demo")).await;
    assert_eq!(
        report["echo"]["content"][0]["text"],
        format!("hello through the broker (DPoP-bound to {jkt})"),
        "{report}"
    );
    let stats = up.stats().await;
    assert_eq!(stats["refused"], json!([]), "{stats}");
    assert!(stats["nonceChallenges"].as_u64().unwrap() >= 1, "{stats}");
    let jkts = stats["jkts"].as_array().unwrap();
    assert!(
        !jkts.is_empty() && jkts.iter().all(|k| *k == jkt),
        "{stats}"
    );
    let steps = upstream.timeline(&name);
    let bound = format!("DPoP-bound token (key thumbprint {jkt})");
    assert!(steps.iter().any(|s| s.ok && s.detail == bound), "{steps:?}");

    // A refresh carries a proof of the same key (the refresh token is bound to it too).
    let first = upstream.credential(&server).await.unwrap();
    let refreshed = upstream.after_rejection(&server, &first).await.unwrap();
    assert!(refreshed.bearer.is_some() && refreshed.bearer != first.bearer);
    assert_eq!(upstream.token_facts(&name).await.dpop_jkt, Some(jkt));
}

/// The nonce dance over real sockets: a new nonce at the upstream costs one refused request
/// and one retry with it — no refresh, no sign-in — each time it changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_resource_nonce_is_learnt_from_the_refusal_and_the_request_retried_once() {
    use mcp_auth_broker::protocol::client::Client;
    use mcp_auth_broker::upstream::exchange::Endpoint;
    let up = oidc::DpopUpstream::start().await;
    let entry = json!({"url": up.url, "client_id": "broker-dpop"});
    let b = TestBroker::start(json!({"mcp_servers": {"demo": entry}})).await;
    let (run, address, _) = device_login(&Cli::of(&b), &[]).await;
    oidc::confirm_device(&address).await;
    assert_eq!(run.exit().await.0, Some(0));
    let server = b.broker.server("demo").unwrap();
    let upstream = b.broker.upstream().clone();
    let token = upstream.credential(&server).await.unwrap().bearer;
    let endpoint = Endpoint::new(upstream.clone(), server.clone());
    let client = Client::connect(endpoint, json!({}), Duration::from_secs(20))
        .await
        .unwrap();
    for _ in 0..2 {
        let before = up.stats().await;
        up.rotate_nonce().await;
        let answer = client
            .request(
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "again"}}),
                &mut |_| {},
            )
            .await
            .unwrap();
        let text = answer["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.starts_with("again (DPoP-bound to "), "{answer}");
        let after = up.stats().await;
        let challenges = |s: &serde_json::Value| s["nonceChallenges"].as_u64().unwrap();
        assert!(challenges(&after) > challenges(&before), "{after}");
        assert_eq!(after["refused"], json!([]), "{after}");
    }
    let now = upstream.credential(&server).await.unwrap().bearer;
    assert_eq!(now, token, "a nonce refusal is no reason to refresh");
}
