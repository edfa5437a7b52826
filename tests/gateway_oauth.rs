//! The broker's authorization server over real sockets: discovery, registration, consent,
//! PKCE, codes, refresh rotation, revocation.

mod support;

use serde_json::{json, Value};
use support::*;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://127.0.0.1:43210/callback";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn broker_with(servers: Value) -> (TestUpstream, TestBroker) {
    let up = TestUpstream::start(UpstreamOptions::default()).await;
    let mut servers = servers;
    for (_, s) in servers.as_object_mut().unwrap() {
        s["url"] = json!(up.mcp_url);
    }
    let b = TestBroker::start(json!({ "mcp_servers": servers })).await;
    (up, b)
}

async fn register(b: &TestBroker, name: &str) -> String {
    let r = http().post(format!("{}/register", b.base_url)).json(&json!({"client_name": name, "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn authorize_url(b: &TestBroker, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&format!("{}/authorize", b.base_url)).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", "http://127.0.0.1:50001/callback")
        .append_pair("state", "st-1");
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.to_string()
}

fn pkce() -> [(&'static str, &'static str); 2] {
    [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

fn query(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Authorize, approve on the consent page, and return the redirect's query.
async fn approve(b: &TestBroker, url: &str) -> std::collections::HashMap<String, String> {
    let page = http().get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let html = page.text().await.unwrap();
    let form = [
        ("request", hidden(&html, "request")),
        ("csrf", hidden(&html, "csrf")),
        ("decision", "approve".to_string()),
    ];
    let r = http()
        .post(format!("{}/consent", b.base_url))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "a POSTed consent redirects with 303");
    query(r.headers()["location"].to_str().unwrap())
}

async fn token(b: &TestBroker, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http()
        .post(format!("{}/token", b.base_url))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn exchange(b: &TestBroker, client_id: &str, code: &str) -> (u16, Value) {
    token(
        b,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", client_id),
            ("redirect_uri", "http://127.0.0.1:50001/callback"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

async fn mcp_status(b: &TestBroker, server: &str, access: &str) -> u16 {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    http()
        .post(b.client_url(server))
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(access)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

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
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let (_up, b) = broker_with(json!({"demo": {}})).await;
    let client = register(&b, "c").await;
    let q = approve(&b, &authorize_url(&b, &client, &pkce())).await;
    let (status, tokens) = exchange(&b, &client, &q["code"]).await;
    assert_eq!(status, 200);
    let access = tokens["access_token"].as_str().unwrap().to_string();
    assert_eq!(mcp_status(&b, "demo", &access).await, 200);
    let (status, err) = exchange(&b, &client, &q["code"]).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"], "invalid_grant");
    assert_eq!(
        mcp_status(&b, "demo", &access).await,
        401,
        "the replay revoked the first tokens"
    );
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_whole_family() {
    let (_up, b) = broker_with(json!({"demo": {}})).await;
    let client = register(&b, "c").await;
    let q = approve(&b, &authorize_url(&b, &client, &pkce())).await;
    let (_, first) = exchange(&b, &client, &q["code"]).await;
    let rt1 = first["refresh_token"].as_str().unwrap();
    let (status, second) = token(
        &b,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt1),
            ("client_id", &client),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let rt2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(rt1, rt2, "refresh tokens rotate");
    let access2 = second["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(&b, "demo", access2).await, 200);
    let (status, err) = token(
        &b,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt1),
            ("client_id", &client),
        ],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str().unwrap()),
        (400, "invalid_grant")
    );
    assert_eq!(mcp_status(&b, "demo", access2).await, 401);
    let (status, _) = token(
        &b,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt2),
            ("client_id", &client),
        ],
    )
    .await;
    assert_eq!(status, 400, "the newest refresh token died with its family");
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
async fn a_wrong_verifier_or_redirect_at_the_token_endpoint_is_invalid_grant() {
    let (_up, b) = broker_with(json!({"demo": {}})).await;
    let client = register(&b, "c").await;
    let q = approve(&b, &authorize_url(&b, &client, &pkce())).await;
    let wrong = "A".repeat(43);
    let (status, err) = token(
        &b,
        &[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("client_id", &client),
            ("redirect_uri", "http://127.0.0.1:50001/callback"),
            ("code_verifier", &wrong),
        ],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str().unwrap()),
        (400, "invalid_grant")
    );
    let (status, err) = token(
        &b,
        &[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("client_id", &client),
            ("redirect_uri", "http://127.0.0.1:50002/callback"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str().unwrap()),
        (400, "invalid_grant")
    );
    let (status, err) = token(&b, &[("grant_type", "password"), ("client_id", &client)]).await;
    assert_eq!(
        (status, err["error"].as_str().unwrap()),
        (400, "unsupported_grant_type")
    );
    let (status, err) = token(
        &b,
        &[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("client_id", "nobody"),
        ],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str().unwrap()),
        (401, "invalid_client")
    );
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
    let form = [
        ("request", hidden(&html, "request")),
        ("csrf", hidden(&html, "csrf")),
        ("decision", "approve".into()),
        ("server", "two".into()),
    ];
    let r = http()
        .post(format!("{}/consent", b2.base_url))
        .form(&form)
        .send()
        .await
        .unwrap();
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
    let deny = [
        ("request", hidden(&html, "request")),
        ("csrf", hidden(&html, "csrf")),
        ("decision", "deny".to_string()),
    ];
    let r = http()
        .post(format!("{}/consent", b.base_url))
        .form(&deny)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        query(r.headers()["location"].to_str().unwrap())["error"],
        "access_denied"
    );
}

#[tokio::test]
async fn revoking_a_token_or_client_ends_its_access() {
    let (_up, b) = broker_with(json!({"demo": {}})).await;
    let client = register(&b, "c").await;
    let q = approve(&b, &authorize_url(&b, &client, &pkce())).await;
    let (_, tokens) = exchange(&b, &client, &q["code"]).await;
    let access = tokens["access_token"].as_str().unwrap();
    let r = http()
        .post(format!("{}/revoke", b.base_url))
        .form(&[
            ("token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &client),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        mcp_status(&b, "demo", access).await,
        401,
        "revoking the refresh token revokes its access tokens"
    );
    let unknown = http()
        .post(format!("{}/revoke", b.base_url))
        .form(&[("token", "whatever")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.status(),
        200,
        "RFC 7009: unknown tokens are not an error"
    );
    assert!(b.broker.issuer().revoke_client(&client).unwrap());
    assert!(b.broker.issuer().list_clients().is_empty());
}

#[tokio::test]
async fn registration_refuses_unsafe_redirect_uris() {
    let (_up, b) = broker_with(json!({"demo": {}})).await;
    for uri in [
        "http://evil.example/cb",
        "javascript:alert(1)",
        "http://127.0.0.1/cb#x",
    ] {
        let r = http()
            .post(format!("{}/register", b.base_url))
            .json(&json!({"redirect_uris": [uri]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{uri}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            "invalid_redirect_uri"
        );
    }
    let many: Vec<String> = (0..11).map(|i| format!("http://127.0.0.1/cb{i}")).collect();
    let r = http()
        .post(format!("{}/register", b.base_url))
        .json(&json!({"redirect_uris": many}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let custom = http()
        .post(format!("{}/register", b.base_url))
        .json(&json!({"redirect_uris": ["cursor://anysphere.cursor-mcp/oauth/callback"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(custom.status(), 201);
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
