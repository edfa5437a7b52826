//! Machine credentials without shared secrets, end to end over real sockets: `private_key_jwt`
//! against `oidc-provider` (the broker's generated key, shown by the admin API, registered at
//! the provider as an administrator would) and workload identity federation against the test
//! AS's jwt-bearer grant (the workload token re-read from its file after the platform rotates it).
//! A `private_key_jwt` server with no `client_id` registers itself at the test AS with its public
//! key, whose token endpoint checks each assertion's signature against the registered `jwks`.

use std::sync::Arc;

use mcp_auth_broker::vault::{MemoryStore, TokenStore};
use serde_json::{json, Value};

use super::gateway_common::{api_key, initialize, post, tool_call};
use super::support::*;

/// `initialize`, `notifications/initialized`, then `echo` with `text` through `/{server}/mcp`;
/// the answer's body.
async fn echo(broker: &TestBroker, server: &str, text: &str) -> String {
    let (url, key) = (broker.client_url(server), api_key(broker).await);
    let r = post(&url, &key, None, &initialize()).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let sid = r
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    let _ = r.text().await;
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(post(&url, &key, sid.as_deref(), &note).await.status(), 202);
    let call = tool_call(2, "echo", json!({"text": text}));
    let r = post(&url, &key, sid.as_deref(), &call).await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

async fn admin_get(b: &TestBroker, path: &str) -> (u16, Value) {
    let token = std::fs::read_to_string(b.dir.path().join("data/admin.token")).unwrap();
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", b.base_url))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_m2m_upstream_behind_oidc_provider_accepts_the_brokers_own_key_once_registered() {
    let op = JsServer::script("m2m_op.mjs", &[]).await;
    let issuer = op.url.clone();
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::default());
    let options = BrokerOptions {
        store: store.clone(),
        ..BrokerOptions::default()
    };
    let entry = json!({"url": format!("{issuer}/mcp"), "auth_type": "oauth2",
        "oauth_flow": "client_credentials", "client_id": "broker-m2m",
        "token_endpoint_auth_method": "private_key_jwt"});
    let b = TestBroker::start_with(json!({"mcp_servers": {"svc": entry}}), options).await;

    // What `mcp-auth-broker key svc` prints: generated now, public half only.
    let (status, shown) = admin_get(&b, "/api/admin/servers/svc/key").await;
    assert_eq!(status, 200, "{shown}");
    let jwks = shown["jwks"].clone();
    assert_eq!(jwks["keys"][0]["kid"], shown["kid"]);
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert!(
        !shown.to_string().contains("\"d\""),
        "no private part: {shown}"
    );
    let (_, again) = admin_get(&b, "/api/admin/servers/svc/key").await;
    assert_eq!(again["kid"], shown["kid"], "one key, kept");
    let printed = super::support::cli::Cli::of(&b).run(&["key", "svc"]).await;
    assert!(
        printed.status.success(),
        "{}",
        super::support::cli::text(&printed)
    );
    let printed: Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(
        printed, jwks,
        "`key svc` prints the JWK Set to paste into the provider"
    );
    let kept = store
        .get("upstream/svc/private_key")
        .unwrap()
        .expect("kept in the token store");
    assert!(kept.expose().contains("PRIVATE KEY"));

    // The administrator registers the client at the provider with that public key.
    let registration = json!({"token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256", "grant_types": ["client_credentials"],
        "response_types": [], "redirect_uris": [], "jwks": jwks});
    let reg = reqwest::Client::new()
        .post(format!("{issuer}/reg"))
        .json(&registration)
        .send()
        .await
        .unwrap();
    assert_eq!(reg.status(), 201, "{}", reg.text().await.unwrap());

    let answer = echo(&b, "svc", "hello").await;
    assert!(answer.contains("hello (client broker-m2m)"), "{answer}");
    let server = b.broker.server("svc").unwrap();
    let evidence = b
        .broker
        .upstream()
        .classify(&server)
        .await
        .unwrap()
        .evidence;
    let kid = shown["kid"].as_str().unwrap();
    assert!(
        evidence
            .iter()
            .any(|e| e.contains("private_key_jwt") && e.contains(kid)),
        "{evidence:?}"
    );
    // Nothing the broker wrote to disk holds the private key (only the token store does).
    for file in walk(&b.dir.path().join("data")) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(!text.contains("PRIVATE KEY"), "{}", file.display());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| match e.path() {
            p if p.is_dir() => walk(&p),
            p => vec![p],
        })
        .collect()
}

#[tokio::test]
async fn the_key_of_a_server_without_private_key_jwt_is_refused_with_what_to_set() {
    let b =
        TestBroker::start(json!({"mcp_servers": {"svc": {"url": "http://127.0.0.1:9/mcp"}}})).await;
    let (status, body) = admin_get(&b, "/api/admin/servers/svc/key").await;
    assert_eq!(status, 409, "{body}");
    let said = body["error_description"].as_str().unwrap();
    assert!(
        said.contains("token_endpoint_auth_method") && said.contains("private_key_jwt"),
        "{said}"
    );
    let (status, _) = admin_get(&b, "/api/admin/servers/nope/key").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_private_key_jwt_server_without_client_id_registers_its_public_key_and_signs_its_token_requests(
) {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let entry = json!({"url": up.mcp_url, "oauth_flow": "client_credentials",
        "token_endpoint_auth_method": "private_key_jwt"});
    let b = TestBroker::start(json!({"mcp_servers": {"svc": entry}})).await;

    let answer = echo(&b, "svc", "signed, not shared").await;
    assert!(answer.contains("signed, not shared"), "{answer}");
    let registrations = up.oauth().registrations.lock().unwrap().clone();
    assert_eq!(registrations.len(), 1, "{registrations:?}");
    let reg = &registrations[0];
    assert_eq!(reg["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(reg["grant_types"], json!(["client_credentials"]));
    let (status, shown) = admin_get(&b, "/api/admin/servers/svc/key").await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(reg["jwks"], shown["jwks"], "the broker's own public key");
    assert!(!reg.to_string().contains("\"d\""), "no private part: {reg}");
    let client_id = reg["client_id"].as_str().unwrap().to_string();
    assert_eq!(up.oauth().verified_assertions(), vec![client_id.clone()]);
    let server = b.broker.server("svc").unwrap();
    let token = b.broker.upstream().credential(&server).await.unwrap();
    let issued = up.oauth().validate(token.bearer.unwrap().expose()).unwrap();
    assert_eq!(issued.grant, "client_credentials");

    // The next token comes from the kept registration: no second one, a new signed assertion.
    up.oauth().revoke_all();
    let answer = echo(&b, "svc", "again").await;
    assert!(answer.contains("again"), "{answer}");
    assert_eq!(up.oauth().registrations.lock().unwrap().len(), 1);
    assert_eq!(
        up.oauth().verified_assertions(),
        vec![client_id.clone(), client_id]
    );
}

#[tokio::test]
async fn workload_identity_federation_reads_the_rotated_token_again_and_a_refusal_is_final() {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "h.first.s\n").unwrap();
    up.oauth().trust_workload("wif-workload", "h.first.s");
    let entry = json!({"url": up.mcp_url, "oauth_flow": "jwt_bearer", "client_id": "wif-workload",
        "assertion_file": file.to_string_lossy(), "token_url": up.auth_server.token_url()});
    let b = TestBroker::start(json!({"mcp_servers": {"wif": entry}})).await;

    let answer = echo(&b, "wif", "from ci").await;
    assert!(answer.contains("from ci"), "{answer}");
    assert_eq!(up.oauth().workload_assertions(), vec!["h.first.s"]);
    let server = b.broker.server("wif").unwrap();
    let upstream = b.broker.upstream();
    let token = upstream.credential(&server).await.unwrap().bearer.unwrap();
    assert_eq!(
        up.oauth().validate(token.expose()).unwrap().grant,
        "jwt_bearer"
    );

    // The platform rotates the token; the old one is refused once its access token is gone.
    std::fs::write(&file, "h.second.s").unwrap();
    up.oauth().trust_workload("wif-workload", "h.second.s");
    up.oauth().distrust_workload("h.first.s");
    up.oauth().revoke_all();
    let answer = echo(&b, "wif", "after rotation").await;
    assert!(answer.contains("after rotation"), "{answer}");
    assert_eq!(
        up.oauth().workload_assertions(),
        vec!["h.first.s", "h.second.s"]
    );

    // A refusal is the answer: named, the token not quoted, no other grant tried.
    up.oauth().distrust_workload("h.second.s");
    up.oauth().revoke_all();
    let held = upstream.credential(&server).await.unwrap();
    let before = count(&up.oauth().counters.token);
    let err = upstream
        .after_rejection(&server, &held)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid_grant") && !err.contains("h.second.s"),
        "{err}"
    );
    assert_eq!(
        count(&up.oauth().counters.token) - before,
        1,
        "one request, no retry"
    );
    assert_eq!(count(&up.oauth().counters.token_client_credentials), 0);
}

#[tokio::test]
async fn a_self_registered_key_client_the_authorization_server_lost_registers_again_once_with_the_same_key(
) {
    let up = TestUpstream::start(UpstreamOptions::oauth()).await;
    let entry = json!({"url": up.mcp_url, "oauth_flow": "client_credentials",
        "token_endpoint_auth_method": "private_key_jwt"});
    let b = TestBroker::start(json!({"mcp_servers": {"svc": entry}})).await;
    let answer = echo(&b, "svc", "registered").await;
    assert!(answer.contains("registered"), "{answer}");
    let first = up.oauth().registrations.lock().unwrap()[0].clone();
    let first_id = first["client_id"].as_str().unwrap().to_string();

    // The authorization server loses the registration: the broker's next token request is
    // refused `invalid_client`, so it registers again with the same key and retries once.
    up.oauth().forget_client(&first_id);
    up.oauth().revoke_all();
    let answer = echo(&b, "svc", "registered again").await;
    assert!(answer.contains("registered again"), "{answer}");
    let registrations = up.oauth().registrations.lock().unwrap().clone();
    assert_eq!(registrations.len(), 2, "{registrations:?}");
    assert_eq!(registrations[1]["jwks"], first["jwks"], "the key is kept");
    let second_id = registrations[1]["client_id"].as_str().unwrap().to_string();
    assert_ne!(second_id, first_id);
    assert_eq!(
        up.oauth().verified_assertions(),
        vec![first_id, second_id],
        "the retry was signed as the new client"
    );

    // An authorization server that refuses even the fresh registration: one more registration,
    // one retry, then the error says why registering again would not help.
    up.oauth().set_fault(TokenFault::Status(
        401,
        json!({"error": "invalid_client", "error_description": "client unknown"}),
    ));
    up.oauth().revoke_all();
    let server = b.broker.server("svc").unwrap();
    let upstream = b.broker.upstream();
    let held = upstream.credential(&server).await.unwrap();
    let tokens_before = count(&up.oauth().counters.token);
    let err = upstream.after_rejection(&server, &held).await.unwrap_err();
    let err = err.to_string();
    assert!(
        err.contains("invalid_client") && err.contains("would not help"),
        "{err}"
    );
    assert_eq!(up.oauth().registrations.lock().unwrap().len(), 3);
    assert_eq!(count(&up.oauth().counters.token) - tokens_before, 2);
}

#[tokio::test]
async fn client_assertions_name_the_configured_assertion_audience() {
    let aud = "https://login.example.test/oauth2/aud";
    let up = TestUpstream::start(UpstreamOptions {
        auth_server: AsOptions {
            assertion_audience: Some(aud.into()),
            ..AsOptions::default()
        },
        ..UpstreamOptions::oauth()
    })
    .await;
    let entry = json!({"url": up.mcp_url, "oauth_flow": "client_credentials",
        "token_endpoint_auth_method": "private_key_jwt", "assertion_audience": aud});
    let b = TestBroker::start(json!({"mcp_servers": {"svc": entry}})).await;
    let answer = echo(&b, "svc", "for that audience").await;
    assert!(answer.contains("for that audience"), "{answer}");
    assert_eq!(up.oauth().verified_assertions().len(), 1);

    // Without it the assertion names the issuer, which this server refuses.
    let entry = json!({"url": up.mcp_url, "oauth_flow": "client_credentials",
        "token_endpoint_auth_method": "private_key_jwt"});
    let b = TestBroker::start(json!({"mcp_servers": {"svc": entry}})).await;
    let server = b.broker.server("svc").unwrap();
    let err = b.broker.upstream().credential(&server).await.unwrap_err();
    assert!(err.to_string().contains("invalid_client"), "{err}");
    assert_eq!(up.oauth().verified_assertions().len(), 1);
}
