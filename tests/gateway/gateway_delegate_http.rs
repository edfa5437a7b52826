//! Delegate mode (`delegate_auth_to_upstream: true`) at the HTTP level: the upstream's 401/403
//! challenges reach the client pointing at the broker's metadata (which names the upstream's
//! authorization servers), only the client's `Authorization` is forwarded, and the broker
//! refuses to issue its own tokens for such a server. The SDK sign-in and the credential
//! isolation are in `gateway_delegate.rs`.

use crate::gateway_common;
use crate::support;

use std::sync::{Arc, Mutex};

use gateway_common::*;
use mcp_auth_broker::upstream::wwwauth;
use serde_json::{json, Value};
use support::*;

fn delegate(up: &TestUpstream) -> Value {
    json!({"url": up.mcp_url, "delegate_auth_to_upstream": true})
}

/// An upstream that answers every request with the status and `WWW-Authenticate` the test sets,
/// recording the request headers it got.
async fn challenging_upstream(
    answer: Arc<Mutex<(u16, String)>>,
    seen: Arc<Mutex<Vec<axum::http::HeaderMap>>>,
) -> String {
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let handler = move |headers: axum::http::HeaderMap| {
        let (answer, seen) = (answer.clone(), seen.clone());
        async move {
            seen.lock().unwrap().push(headers);
            let (status, challenge) = answer.lock().unwrap().clone();
            let status = axum::http::StatusCode::from_u16(status).unwrap();
            (
                status,
                [("www-authenticate", challenge)],
                "{\"error\":\"no\"}",
            )
                .into_response()
        }
    };
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::new().route("/mcp", axum::routing::any(handler)),
        )
        .await
        .unwrap()
    });
    url
}

#[tokio::test]
async fn upstream_401_and_403_challenges_reach_the_client_pointing_at_the_brokers_metadata() {
    let answer = Arc::new(Mutex::new((401, String::new())));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let url = challenging_upstream(answer.clone(), seen.clone()).await;
    let b = TestBroker::start(config(json!({"deleg": {
        "url": url, "delegate_auth_to_upstream": true, "headers": {"X-Tenant": "acme"}}})))
    .await;
    let prm = format!(
        "{}/.well-known/oauth-protected-resource/deleg/mcp",
        b.base_url
    );
    let cases = [
        (
            401,
            r#"Bearer resource_metadata="http://upstream.example/.well-known/oauth-protected-resource/mcp", scope="mcp:read""#,
            None,
            Some("mcp:read"),
            None,
        ),
        (
            403,
            r#"Basic realm="x", Bearer error="insufficient_scope", scope="mcp:read mcp:write", resource_metadata="http://upstream.example/prm", error_description="needs \"write\"""#,
            Some("insufficient_scope"),
            Some("mcp:read mcp:write"),
            Some(r#"needs "write""#),
        ),
    ];
    for (status, challenge, error, scope, description) in cases {
        *answer.lock().unwrap() = (status, challenge.to_string());
        let r = http()
            .post(b.client_url("deleg"))
            .bearer_auth("client-own-token")
            .header("x-api-key", "not-forwarded")
            .header("cookie", "c=1")
            .json(&initialize())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
        let values: Vec<&str> = r
            .headers()
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(values.len(), 1, "{values:?}");
        let info = wwwauth::bearer_info(&wwwauth::parse(values.iter().copied())).unwrap();
        assert_eq!(
            info.resource_metadata.as_deref(),
            Some(prm.as_str()),
            "{values:?}"
        );
        assert_eq!(info.error.as_deref(), error);
        assert_eq!(info.scope.as_deref(), scope);
        assert_eq!(info.error_description.as_deref(), description);
        assert!(
            !values[0].contains("upstream.example") && !values[0].contains("Basic"),
            "{values:?}"
        );
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for h in seen.iter() {
        assert_eq!(
            h["authorization"], "Bearer client-own-token",
            "the client's own credential is forwarded"
        );
        assert_eq!(
            h["x-tenant"], "acme",
            "configured literal headers still apply"
        );
        assert!(
            h.get("x-api-key").is_none() && h.get("cookie").is_none(),
            "only Authorization is forwarded"
        );
    }
}

#[tokio::test]
async fn a_delegate_servers_metadata_lists_the_upstreams_authorization_server_not_the_broker() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let down = TestUpstream::start(UpstreamOptions::oauth()).await;
    let down_url = down.mcp_url.clone();
    down.stop();
    let b = TestBroker::start(config(json!({
        "deleg": delegate(&up),
        "gone": {"url": down_url, "delegate_auth_to_upstream": true},
        "normal": {"url": up.mcp_url, "auth_type": "oauth2"},
    })))
    .await;
    let get = |server: &str| {
        http()
            .get(format!(
                "{}/.well-known/oauth-protected-resource/{server}/mcp",
                b.base_url
            ))
            .send()
    };
    let r = get("deleg").await.unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(
        doc["resource"],
        b.client_url("deleg"),
        "the SDK's resource check passes"
    );
    assert_eq!(doc["authorization_servers"], json!([up.auth_server.issuer]));
    assert_eq!(doc["scopes_supported"], json!(["mcp:read"]));
    assert!(
        !doc["authorization_servers"]
            .to_string()
            .contains(&b.base_url),
        "never the broker's issuer"
    );
    let fetched = up
        .recorder()
        .count("GET", "/.well-known/oauth-protected-resource/mcp");
    assert_eq!(
        get("deleg").await.unwrap().json::<Value>().await.unwrap(),
        doc
    );
    assert_eq!(
        up.recorder()
            .count("GET", "/.well-known/oauth-protected-resource/mcp"),
        fetched,
        "cached"
    );

    let normal: Value = get("normal").await.unwrap().json().await.unwrap();
    assert_eq!(
        normal["authorization_servers"],
        json!([b.base_url]),
        "other servers keep the broker as AS"
    );

    let r = get("gone").await.unwrap();
    assert_eq!(
        r.status(),
        502,
        "an unreachable upstream is the upstream's fault"
    );
    let body: Value = r.json().await.unwrap();
    let text = body["error_description"].as_str().unwrap();
    assert!(
        text.contains("\"gone\"") && text.contains("could not be reached"),
        "{text}"
    );
}

#[tokio::test]
async fn the_broker_refuses_to_issue_its_own_tokens_for_a_delegate_server() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let b = TestBroker::start(config(json!({"deleg": delegate(&up)}))).await;
    let client = register(&b, "confused client").await;
    let resource = b.client_url("deleg");
    let mut extra = pkce().to_vec();
    extra.push(("resource", resource.as_str()));
    for url in [
        authorize_url(&b, &client, &extra),
        authorize_url(&b, &client, &pkce()).replace("/authorize", "/deleg/authorize"),
    ] {
        let r = http().get(&url).send().await.unwrap();
        assert_eq!(r.status(), 400, "{url}");
        let page = r.text().await.unwrap();
        assert!(page.contains("delegates sign-in to its upstream"), "{page}");
    }
    let r = http()
        .post(format!("{}/token", b.base_url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", &client),
            ("resource", &resource),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_target", "{body}");

    // Broker credentials presented for a delegate server are refused and never forwarded.
    let key = api_key(&b).await;
    let r = http()
        .post(&resource)
        .bearer_auth(&key)
        .json(&initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains("/.well-known/oauth-protected-resource/deleg/mcp"),
        "{challenge}"
    );
    assert!(
        up.recorder().to_path("/mcp").is_empty(),
        "nothing reached the upstream"
    );
}

/// Every spelling of a broker credential a delegate upstream could read one from: the refusal
/// decides from what the header contains, not from how it is spelled.
fn spellings(credential: &str) -> Vec<Vec<Vec<u8>>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    let one = |v: String| vec![v.into_bytes()];
    let random_part = credential.splitn(3, '_').nth(2).unwrap().to_string();
    let mut trailing = format!("Bearer {credential}").into_bytes();
    trailing.push(0xff);
    vec![
        one(credential.to_string()),
        one(format!("Bearer\t{credential}")),
        one(format!("bEaReR {credential}")),
        one(format!("Bearer {}", credential.to_uppercase())),
        one(format!(
            "Basic {}",
            STANDARD.encode(format!("user:{credential}"))
        )),
        one(format!(
            "Basic {}",
            STANDARD.encode(format!("{credential}:"))
        )),
        one(format!("Bearer {}", URL_SAFE_NO_PAD.encode(credential))),
        one(format!("Token token=\"{credential}\"")),
        one(format!("Bearer other,{credential}")),
        one(format!("Bearer%20{}", credential.replace('_', "%5F"))),
        one(format!("Bearer {random_part}")),
        vec![trailing],
        vec![
            b"Bearer client-own-token".to_vec(),
            format!("Bearer {credential}").into_bytes(),
        ],
    ]
}

#[tokio::test]
async fn broker_credentials_never_reach_a_delegate_upstream_however_the_header_is_spelled() {
    let answer = Arc::new(Mutex::new((401, String::new())));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let url = challenging_upstream(answer.clone(), seen.clone()).await;
    let b = TestBroker::start(config(json!({
        "deleg": {"url": url, "delegate_auth_to_upstream": true},
        "normal": {"url": url},
    })))
    .await;
    let credentials = [api_key(&b).await, oauth_token(&b, "normal")];
    for credential in &credentials {
        for values in spellings(credential) {
            let mut request = http().post(b.client_url("deleg")).json(&initialize());
            for v in &values {
                let value = reqwest::header::HeaderValue::from_bytes(v).unwrap();
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            let r = request.send().await.unwrap();
            let shown: Vec<String> = values
                .iter()
                .map(|v| String::from_utf8_lossy(v).into())
                .collect();
            assert!(
                r.status() == 400 || r.status() == 401,
                "{shown:?}: HTTP {}",
                r.status()
            );
            assert!(seen.lock().unwrap().is_empty(), "{shown:?} was forwarded");
        }
    }
    // The client's own credential, however spelled, still goes through.
    for own in [
        "Bearer client-own-token",
        "Basic dXNlcjpwYXNz",
        "DPoP eyJhbGciOi.x.y",
    ] {
        let r = http()
            .post(b.client_url("deleg"))
            .header("authorization", own)
            .json(&initialize())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{own}: the upstream's own challenge");
        assert_eq!(seen.lock().unwrap().pop().unwrap()["authorization"], own);
    }
}
