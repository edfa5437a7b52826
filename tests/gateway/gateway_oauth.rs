//! The broker's authorization server over real sockets: discovery, consent, redirect and PKCE
//! checks at `/authorize`, which server a client gets.

use crate::gateway_common;
use crate::support;

use gateway_common::*;
use mcp_auth_broker::vault::VaultError;
use serde_json::{json, Value};
use support::{BrokerOptions, TestBroker, TestUpstream, UpstreamOptions};

#[tokio::test]
async fn a_client_registers_consents_and_gets_tokens_for_the_named_server() {
    let (_up, b) = broker_with(json!({"alpha": {}, "beta": {}})).await;
    let client = register(&b, "<b>Cursor</b>").await;
    let resource = b.client_url("beta");
    let url = authorize_url(
        &b,
        &client,
        &[pkce()[0], pkce()[1], ("resource", &resource)],
    );
    let html = http().get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        html.contains("&lt;b&gt;Cursor&lt;/b&gt;") && !html.contains("<b>Cursor"),
        "client names are escaped"
    );
    assert!(html.contains("http://127.0.0.1:50001") && html.contains("beta"));
    let q = approve(&b, &url).await;
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], b.base_url);
    let (status, tokens) = exchange(&b, &client, &q["code"]).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(&b, "beta", access).await, 200);
    assert_eq!(
        mcp_status(&b, "alpha", access).await,
        401,
        "audience-bound to beta"
    );
    // Approved once: the next authorization for the same server skips the page.
    let again = http().get(&url).send().await.unwrap();
    assert_eq!(again.status(), 302);
    assert!(query(again.headers()["location"].to_str().unwrap()).contains_key("code"));
    let clients = b.broker.issuer().list_clients();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].approved_servers, vec!["beta".to_string()]);
    assert_eq!(b.broker.issuer().list_grants().len(), 1);
}

#[tokio::test]
async fn an_unregistered_redirect_uri_gets_an_error_page_never_a_redirect() {
    let (_up, b) = broker_with(json!({"demo": {}})).await;
    let client = register(&b, "c").await;
    let mut url = url::Url::parse(&authorize_url(&b, &client, &pkce())).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "redirect_uri" {
                (k, "http://127.0.0.1:50001/elsewhere".into())
            } else {
                (k, v)
            }
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let r = http().get(url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let https = url::Url::parse(&authorize_url(&b, &client, &pkce()))
        .unwrap()
        .as_str()
        .replace(
            "http%3A%2F%2F127.0.0.1%3A50001",
            "https%3A%2F%2Fevil.example",
        );
    assert_eq!(http().get(https).send().await.unwrap().status(), 400);
}

#[tokio::test]
async fn pkce_plain_or_missing_is_refused_with_the_state_and_issuer() {
    let (_up, b) = broker_with(json!({"demo": {}})).await;
    let client = register(&b, "c").await;
    for extra in [
        vec![
            ("code_challenge", VERIFIER),
            ("code_challenge_method", "plain"),
        ],
        vec![("code_challenge", VERIFIER)],
        vec![],
    ] {
        let r = http()
            .get(authorize_url(&b, &client, &extra))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        let q = query(r.headers()["location"].to_str().unwrap());
        assert_eq!(q["error"], "invalid_request");
        assert_eq!(q["state"], "st-1");
        assert_eq!(q["iss"], b.base_url);
        assert!(!q.contains_key("code"));
    }
}

#[tokio::test]
async fn metadata_names_the_issuer_the_client_used() {
    let (_up, b) = broker_with(json!({"demo": {}})).await;
    for host in ["127.0.0.1", "localhost"] {
        let base = format!("http://{host}:{}", b.port);
        for path in [
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ] {
            let m: Value = http()
                .get(format!("{base}{path}"))
                .header("host", format!("{host}:{}", b.port))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(m["issuer"], base);
            assert_eq!(m["token_endpoint"], format!("{base}/token"));
            assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
            assert_eq!(m["authorization_response_iss_parameter_supported"], true);
            assert_eq!(m["client_id_metadata_document_supported"], true);
        }
    }
}

#[tokio::test]
async fn without_resource_the_single_server_is_used_and_with_several_the_person_picks() {
    let (_up, b) = broker_with(json!({"only": {}})).await;
    let client = register(&b, "c").await;
    let q = approve(&b, &authorize_url(&b, &client, &pkce())).await;
    let (_, tokens) = exchange(&b, &client, &q["code"]).await;
    assert_eq!(
        mcp_status(&b, "only", tokens["access_token"].as_str().unwrap()).await,
        200
    );

    let (_up2, b2) = broker_with(json!({"one": {}, "two": {}})).await;
    let client = register(&b2, "c").await;
    let url = authorize_url(&b2, &client, &pkce());
    let html = http().get(&url).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<select name=\"server\""), "{html}");
    let r = submit_consent(&b2.base_url, &html, "approve", &[("server", "two")]).await;
    let q = query(r.headers()["location"].to_str().unwrap());
    let (_, tokens) = exchange(&b2, &client, &q["code"]).await;
    assert_eq!(
        mcp_status(&b2, "two", tokens["access_token"].as_str().unwrap()).await,
        200
    );
    // The LiteLLM-style alias names the server by path.
    let alias = authorize_url(&b2, &client, &pkce()).replace("/authorize?", "/one/authorize?");
    let html = http()
        .get(&alias)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<select") && html.contains("one"));
}

#[tokio::test]
async fn consent_needs_the_pages_csrf_token_and_deny_returns_access_denied() {
    let (_up, b) = broker_with(json!({"demo": {}})).await;
    let client = register(&b, "c").await;
    let html = http()
        .get(authorize_url(&b, &client, &pkce()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let forged = [
        ("request", hidden(&html, "request")),
        ("csrf", "guess".to_string()),
        ("decision", "approve".to_string()),
    ];
    let r = http()
        .post(format!("{}/consent", b.base_url))
        .form(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    assert_deny_returns_access_denied(&b.base_url, &html).await;
}

#[tokio::test]
async fn litellm_style_server_prefixed_endpoints_work_like_the_root_ones() {
    let (_up, b) = broker_with(json!({"one": {}, "two": {}})).await;
    let r = http()
        .post(format!("{}/two/register", b.base_url))
        .json(&json!({"client_name": "LiteLLM-configured", "redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let client = r.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = authorize_url(&b, &client, &pkce()).replace("/authorize?", "/two/authorize?");
    let q = approve(&b, &url).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", q["code"].as_str()),
        ("client_id", client.as_str()),
        ("redirect_uri", "http://127.0.0.1:50001/callback"),
        ("code_verifier", VERIFIER),
    ];
    let r = http()
        .post(format!("{}/two/token", b.base_url))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    assert_eq!(
        mcp_status(&b, "two", tokens["access_token"].as_str().unwrap()).await,
        200
    );
    assert_eq!(
        mcp_status(&b, "one", tokens["access_token"].as_str().unwrap()).await,
        401
    );
}

#[tokio::test]
async fn registration_records_and_echoes_application_type_and_refuses_an_unknown_one() {
    let (_up, b) = broker_with(json!({"alpha": {}})).await;
    let post = |body: Value| {
        http()
            .post(format!("{}/register", b.base_url))
            .json(&body)
            .send()
    };
    let native = post(json!({"redirect_uris": [REDIRECT], "application_type": "native"}))
        .await
        .unwrap();
    assert_eq!(native.status(), 201);
    assert_eq!(
        native.json::<Value>().await.unwrap()["application_type"],
        "native"
    );
    let unsaid = post(json!({"redirect_uris": [REDIRECT]})).await.unwrap();
    assert_eq!(
        unsaid.json::<Value>().await.unwrap()["application_type"],
        "native"
    );
    let web = post(json!({"redirect_uris": [REDIRECT], "application_type": "web"}))
        .await
        .unwrap();
    assert_eq!(
        web.json::<Value>().await.unwrap()["application_type"],
        "web"
    );
    let odd = post(json!({"redirect_uris": [REDIRECT], "application_type": "desktop"}))
        .await
        .unwrap();
    assert_eq!(odd.status(), 400);
    let error = odd.json::<Value>().await.unwrap();
    assert_eq!(error["error"], "invalid_client_metadata");
    assert!(
        error["error_description"]
            .as_str()
            .unwrap()
            .contains("\"desktop\""),
        "{error}"
    );
    assert_eq!(b.broker.issuer().list_clients().len(), 3);
}

/// A keychain no one can reach, as on a desktop without a Secret Service running.
struct NoKeychain;

impl mcp_auth_broker::vault::TokenStore for NoKeychain {
    fn get(&self, _: &str) -> Result<Option<mcp_auth_broker::secret::Secret>, VaultError> {
        Err(unavailable())
    }
    fn set(&self, _: &str, _: &mcp_auth_broker::secret::Secret) -> Result<(), VaultError> {
        Err(unavailable())
    }
    fn delete(&self, _: &str) -> Result<(), VaultError> {
        Err(unavailable())
    }
    fn info(&self) -> mcp_auth_broker::vault::StoreInfo {
        mcp_auth_broker::vault::MemoryStore::default().info()
    }
}

/// Deny on the consent page sends the client back with `access_denied`.
async fn assert_deny_returns_access_denied(base_url: &str, html: &str) {
    let r = submit_consent(base_url, html, "deny", &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        query(r.headers()["location"].to_str().unwrap())["error"],
        "access_denied"
    );
}

fn unavailable() -> VaultError {
    VaultError::Unavailable(
        "DBus error: Unable to autolaunch a dbus-daemon without a $DISPLAY for X11".into(),
    )
}

#[tokio::test]
async fn the_consent_page_of_a_server_that_cannot_be_signed_in_offers_the_fix_and_no_allow() {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let b = TestBroker::start_with(
        json!({"mcp_servers": {"github": {"url": up.mcp_url, "oauth_flow": "authorization_code"}}}),
        BrokerOptions {
            store: std::sync::Arc::new(NoKeychain),
            background: false,
        },
    )
    .await;
    let client = register(&b, "Cursor").await;
    let url = authorize_url(&b, &client, &pkce());
    let page = http().get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("img-src data:"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("value=\"approve\""),
        "no Allow that cannot lead anywhere: {html}"
    );
    assert!(
        html.contains("The system keychain cannot be reached"),
        "{html}"
    );
    assert!(
        html.contains("start and unlock GNOME Keyring"),
        "names the fix: {html}"
    );
    let details = html
        .split("<details>")
        .nth(1)
        .expect("the raw cause behind Details");
    assert!(
        details.contains("Unable to autolaunch a dbus-daemon"),
        "{details}"
    );
    assert!(
        html.contains("src=\"data:image/png;base64,"),
        "the app icon"
    );
    assert!(
        html.contains("prefers-color-scheme: dark"),
        "light and dark"
    );

    // A form sent anyway (the request and CSRF fields are still there for "no") gets the fix,
    // not a code, and no consent is recorded.
    let r = submit_consent(&b.base_url, &html, "approve", &[]).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("location").is_none());
    let text = r.text().await.unwrap();
    assert!(text.contains("start and unlock GNOME Keyring"), "{text}");
    assert!(b.broker.issuer().list_clients()[0]
        .approved_servers
        .is_empty());
    assert_deny_returns_access_denied(&b.base_url, &html).await;
}

#[tokio::test]
async fn the_consent_page_of_a_server_that_needs_sign_in_says_so_and_offers_allow() {
    let (_up, b) = broker_with(json!({"demo": {"oauth_flow": "authorization_code"}})).await;
    let client = register(&b, "Cursor").await;
    let html = http()
        .get(authorize_url(&b, &client, &pkce()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("value=\"approve\""), "{html}");
    assert!(
        html.contains("Not signed in yet: allowing opens the sign-in page"),
        "{html}"
    );
    assert!(!html.contains("class=\"problem\""), "{html}");
}

#[tokio::test]
async fn the_consent_page_of_a_server_that_refuses_connections_names_the_fix_instead_of_allow() {
    // A port nothing listens on: the server needs no credential, but its check found it down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let b = TestBroker::start_with(
        json!({"mcp_servers": {"down": {"url": format!("http://127.0.0.1:{closed}/mcp")}}}),
        BrokerOptions {
            background: true,
            ..BrokerOptions::default()
        },
    )
    .await;
    let mut status = b.broker.health().subscribe();
    let checked = support::health::wait_settled(&mut status, "down").await;
    assert_eq!(checked.state.label(), "unreachable", "{checked:?}");
    let client = register(&b, "Cursor").await;
    let html = http()
        .get(authorize_url(&b, &client, &pkce()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("value=\"approve\""), "{html}");
    assert!(
        html.contains("The server refused the connection — check that it is running"),
        "{html}"
    );
    let details = html.split("<details>").nth(1).expect("the raw cause");
    assert!(details.contains("Connection refused"), "{details}");
}
