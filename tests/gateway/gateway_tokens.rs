//! The broker's `/token`, `/revoke` and `/register` over real sockets: single-use codes,
//! refresh rotation with family revocation, verifier and redirect checks, registration rules.

use crate::gateway_common;
use crate::support;

use gateway_common::*;
use serde_json::{json, Value};

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
        .form(&[("token", "whatever"), ("client_id", &client)])
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

async fn revoke(b: &support::TestBroker, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http()
        .post(format!("{}/revoke", b.base_url))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn only_the_client_a_token_was_issued_to_can_revoke_it() {
    let (_up, b) = broker_with(json!({"demo": {}})).await;
    let owner = register(&b, "owner").await;
    let other = register(&b, "other").await;
    let q = approve(&b, &authorize_url(&b, &owner, &pkce())).await;
    let (_, tokens) = exchange(&b, &owner, &q["code"]).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    for token in [access, refresh] {
        let (status, body) = revoke(&b, &[("token", token)]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "no client_id"
        );
        let (status, body) = revoke(&b, &[("token", token), ("client_id", "nobody")]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "unknown client"
        );
        let (status, body) = revoke(&b, &[("token", token), ("client_id", &other)]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "RFC 7009 §2.1: a token of another client is refused: {body}"
        );
    }
    assert_eq!(
        mcp_status(&b, "demo", access).await,
        200,
        "nothing was revoked"
    );
    let (status, _) = revoke(&b, &[("token", access), ("client_id", &owner)]).await;
    assert_eq!(status, 200);
    assert_eq!(
        mcp_status(&b, "demo", access).await,
        401,
        "its own client revoked it"
    );
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
async fn a_resource_outside_the_broker_is_invalid_target_at_the_token_endpoint() {
    let (_up, b) = broker_with(json!({"demo": {}})).await;
    let client = register(&b, "c").await;
    let q = approve(&b, &authorize_url(&b, &client, &pkce())).await;
    for resource in [
        "https://evil.example/demo/mcp",
        &format!("{}/other/mcp", b.base_url),
    ] {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("client_id", client.as_str()),
            ("redirect_uri", "http://127.0.0.1:50001/callback"),
            ("code_verifier", VERIFIER),
            ("resource", resource),
        ];
        let (status, err) = token(&b, &form).await;
        assert_eq!(
            (status, err["error"].as_str().unwrap()),
            (400, "invalid_target"),
            "{resource}"
        );
    }
    let good = b.client_url("demo");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", q["code"].as_str()),
        ("client_id", client.as_str()),
        ("redirect_uri", "http://127.0.0.1:50001/callback"),
        ("code_verifier", VERIFIER),
        ("resource", good.as_str()),
    ];
    assert_eq!(
        token(&b, &form).await.0,
        200,
        "the refused attempts did not use up the code"
    );
}

#[tokio::test]
async fn any_refused_redemption_of_a_code_spends_it() {
    let (_up, b) = broker_with(json!({"demo": {}})).await;
    let client = register(&b, "c").await;
    let other = register(&b, "other").await;
    let right_redirect = "http://127.0.0.1:50001/callback";
    let wrong_verifier = "A".repeat(43);
    // (what the attempt gets wrong, its form fields beyond grant_type and code)
    let attempts: [(&str, Vec<(&str, &str)>); 5] = [
        (
            "a wrong verifier",
            vec![
                ("client_id", &client),
                ("redirect_uri", right_redirect),
                ("code_verifier", &wrong_verifier),
            ],
        ),
        (
            "no verifier",
            vec![("client_id", &client), ("redirect_uri", right_redirect)],
        ),
        (
            "another redirect_uri",
            vec![
                ("client_id", &client),
                ("redirect_uri", "http://127.0.0.1:50002/callback"),
                ("code_verifier", VERIFIER),
            ],
        ),
        (
            "no redirect_uri",
            vec![("client_id", &client), ("code_verifier", VERIFIER)],
        ),
        (
            "another client",
            vec![
                ("client_id", &other),
                ("redirect_uri", right_redirect),
                ("code_verifier", VERIFIER),
            ],
        ),
    ];
    let mut q = approve(&b, &authorize_url(&b, &client, &pkce())).await;
    for (what, fields) in attempts {
        let mut form = vec![("grant_type", "authorization_code"), ("code", &q["code"])];
        form.extend(fields);
        let (status, refused) = token(&b, &form).await;
        assert_eq!(status, 400, "{what}: {refused}");
        let (status, err) = exchange(&b, &client, &q["code"]).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (400, Some("invalid_grant")),
            "after {what}, the right exchange must fail: {err}"
        );
        assert!(
            err["error_description"]
                .as_str()
                .unwrap()
                .contains("authorize again"),
            "{err}"
        );
        // The next code: consent is remembered, so /authorize redirects at once.
        let r = http()
            .get(authorize_url(&b, &client, &pkce()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        q = query(r.headers()["location"].to_str().unwrap());
    }
}

#[tokio::test]
async fn failed_token_requests_write_nothing_and_a_client_that_keeps_failing_is_told_to_wait() {
    let (_up, b) = broker_with(json!({"demo": {}})).await;
    let client = register(&b, "guesser").await;
    let q = approve(&b, &authorize_url(&b, &client, &pkce())).await;
    let (status, _) = exchange(&b, &client, &q["code"]).await;
    assert_eq!(status, 200);
    let state = b.dir.path().join("data/issuer.json");
    // A mark no rewrite keeps: a new file gets the current time.
    let mark = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    std::fs::File::options()
        .append(true)
        .open(&state)
        .unwrap()
        .set_modified(mark)
        .unwrap();
    let guess = |n: usize| {
        let (b, client) = (&b, client.clone());
        async move {
            let r = http()
                .post(format!("{}/token", b.base_url))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &format!("mab_rt_guess{n}")),
                    ("client_id", &client),
                ])
                .send()
                .await
                .unwrap();
            let wait = r.headers().get("retry-after").cloned();
            (r.status().as_u16(), wait, r.json::<Value>().await.unwrap())
        }
    };
    // The first 20 failures of a client can never be cut off (a window holds at most them).
    for n in 0..20 {
        let (status, _, err) = guess(n).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }
    assert_eq!(
        std::fs::metadata(&state).unwrap().modified().unwrap(),
        mark,
        "refused token requests rewrote the issuer state"
    );
    // Within 20 more (a minute may have turned meanwhile), the client is told to wait.
    let mut refused = None;
    for n in 20..40 {
        let (status, wait, err) = guess(n).await;
        if status == 429 {
            refused = Some((wait, err));
            break;
        }
    }
    let (wait, err) = refused.expect("a client failing 40 times is cut off");
    let wait: u64 = wait.unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let description = err["error_description"].as_str().unwrap();
    assert!(description.contains(&format!("wait {wait} s")), "{err}");
    // Another client is not affected.
    let other = register(&b, "other").await;
    let q = approve(&b, &authorize_url(&b, &other, &pkce())).await;
    assert_eq!(exchange(&b, &other, &q["code"]).await.0, 200);
}
