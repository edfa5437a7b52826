//! The configured `audience` (Auth0-style authorization servers) against a real AS on
//! 127.0.0.1: sent on the authorization request and with client_credentials, kept through a
//! refresh, and a changed audience never reuses a token made for the old one.

use crate::support;

use mcp_auth_broker::upstream::FailureKind;
use serde_json::json;
use support::*;

fn query(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn client_credentials_ask_for_the_audience_and_a_changed_audience_gets_a_new_token() {
    std::env::set_var("UPSTREAM_AUDIENCE_M2M", "m2m-secret");
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let entry = |audience: &str| {
        json!({"mcp_servers": {"svc": {
            "url": up.mcp_url, "auth_type": "oauth2", "oauth_flow": "client_credentials",
            "client_id": "m2m-client", "client_secret": "os.environ/UPSTREAM_AUDIENCE_M2M",
            "token_url": up.auth_server.token_url(), "audience": audience
        }}})
    };
    let broker = TestBroker::start(entry("https://api.one.test")).await;
    let upstream = broker.broker.upstream().clone();
    let server = broker.broker.server("svc").unwrap();
    let token = upstream.credential(&server).await.unwrap().bearer.unwrap();
    let issued = up.oauth().validate(token.expose()).unwrap();
    assert_eq!(issued.audience.as_deref(), Some("https://api.one.test"));
    assert_eq!(
        issued.resource.as_deref(),
        Some(up.mcp_url.as_str()),
        "resource is still sent"
    );
    upstream.credential(&server).await.unwrap();
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 1);

    broker.write_config(entry("https://api.two.test")).await;
    let server = broker.broker.server("svc").unwrap();
    let token = upstream.credential(&server).await.unwrap().bearer.unwrap();
    assert_eq!(
        count(&up.oauth().counters.token_client_credentials),
        2,
        "the cached token was made for the old audience"
    );
    let issued = up.oauth().validate(token.expose()).unwrap();
    assert_eq!(issued.audience.as_deref(), Some("https://api.two.test"));
}

#[tokio::test]
async fn sign_in_asks_for_the_audience_and_a_changed_audience_needs_a_new_sign_in() {
    let (up, broker, server) = demo_server(
        UpstreamOptions::oauth(),
        json!({"audience": "https://api.one.test"}),
    )
    .await;
    broker.sign_in("demo").await;
    let opened = broker.browser.opened();
    assert_eq!(
        query(&opened[0], "audience").as_deref(),
        Some("https://api.one.test")
    );
    assert_eq!(query(&opened[0], "resource"), Some(up.mcp_url.clone()));
    let upstream = broker.broker.upstream().clone();
    let token = upstream.credential(&server).await.unwrap().bearer.unwrap();
    let issued = up.oauth().validate(token.expose()).unwrap();
    assert_eq!(issued.audience.as_deref(), Some("https://api.one.test"));

    // A refresh keeps the token for the same API.
    up.oauth().expire_access_tokens();
    let old = upstream.credential(&server).await.unwrap();
    let refreshed = upstream.after_rejection(&server, &old).await.unwrap();
    assert_eq!(count(&up.oauth().counters.token_refresh), 1);
    let issued = up
        .oauth()
        .validate(refreshed.bearer.unwrap().expose())
        .unwrap();
    assert_eq!(issued.audience.as_deref(), Some("https://api.one.test"));

    broker
        .write_config(json!({"mcp_servers": {"demo": {
            "url": up.mcp_url, "audience": "https://api.two.test"
        }}}))
        .await;
    let changed = broker.broker.server("demo").unwrap();
    let err = upstream.credential(&changed).await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::NeedsSignIn);
    assert!(
        err.to_string().contains("audience changed")
            && err.to_string().contains("https://api.one.test"),
        "{err}"
    );
    assert_eq!(
        count(&up.oauth().counters.token_refresh),
        1,
        "the old API's refresh token is not used for the new one"
    );
    broker.sign_in("demo").await;
    let last = broker.browser.opened().last().unwrap().clone();
    assert_eq!(
        query(&last, "audience").as_deref(),
        Some("https://api.two.test")
    );
    let token = upstream.credential(&changed).await.unwrap().bearer.unwrap();
    let issued = up.oauth().validate(token.expose()).unwrap();
    assert_eq!(issued.audience.as_deref(), Some("https://api.two.test"));
}
