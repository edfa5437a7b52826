use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::*;
use crate::config::validate::validate;
use crate::config::RawConfig;

fn part(jws: &str, i: usize) -> Value {
    let p = jws.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

fn server(extra: Value) -> ServerConfig {
    let mut e = json!({"url": "https://mcp.example.com/mcp", "oauth_flow": "client_credentials", "client_id": "c", "token_endpoint_auth_method": "private_key_jwt"});
    e.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let raw: RawConfig = serde_json::from_value(json!({"mcp_servers": {"m": e}})).unwrap();
    validate(&raw)
        .unwrap()
        .config
        .servers
        .into_values()
        .next()
        .unwrap()
}

#[test]
fn a_client_assertion_names_the_client_twice_and_lives_one_minute() {
    let c = claims("client-1", "https://as.example", 1000, "j1");
    assert_eq!(c["iss"], "client-1");
    assert_eq!(c["sub"], "client-1");
    assert_eq!(c["aud"], "https://as.example");
    assert_eq!(
        (c["iat"].as_u64(), c["exp"].as_u64()),
        (Some(1000), Some(1060))
    );
    assert_eq!(c["jti"], "j1");
}

#[test]
fn assertions_are_for_the_issuer_when_known_else_the_token_endpoint() {
    let mut key = ClientKey::new(EsKey::generate());
    key.endpoint = Some("https://as.example/oauth/token".into());
    let params = key.params("client-1", 1000);
    assert_eq!(
        params[0],
        ("client_assertion_type".into(), CLIENT_ASSERTION_TYPE.into())
    );
    let jws = &params[1].1;
    assert_eq!(part(jws, 1)["aud"], "https://as.example/oauth/token");
    assert_eq!(part(jws, 0)["kid"], key.key().thumbprint());
    key.issuer = Some("https://as.example".into());
    let again = key.params("client-1", 1000);
    assert_eq!(part(&again[1].1, 1)["aud"], "https://as.example");
    assert_ne!(
        part(jws, 1)["jti"],
        part(&again[1].1, 1)["jti"],
        "a fresh jti each time"
    );
}

#[test]
fn a_configured_assertion_audience_wins_over_the_issuer_and_the_token_endpoint() {
    let mut key = ClientKey::new(EsKey::generate());
    key.endpoint = Some("https://as.example/oauth/token".into());
    key.issuer = Some("https://as.example".into());
    key.configured = Some("https://login.example/aud".into());
    let params = key.params("client-1", 1000);
    assert_eq!(part(&params[1].1, 1)["aud"], "https://login.example/aud");
}

#[tokio::test]
async fn the_server_key_carries_the_configured_assertion_audience() {
    let vault = Vault::in_memory();
    let mut s = server(json!({}));
    s.assertion_audience = Some("https://login.example/aud".into());
    let key = server_key(&vault, &s).await.unwrap();
    assert_eq!(key.audience(), "https://login.example/aud");
}

#[tokio::test]
async fn the_generated_key_is_made_once_and_kept_in_the_token_store() {
    let vault = Vault::in_memory();
    let s = server(json!({}));
    let first = client_key(&vault, &s).await.unwrap();
    let second = client_key(&vault, &s).await.unwrap();
    assert_eq!(first.thumbprint(), second.thumbprint());
    let stored = vault.get(&key_entry("m")).await.unwrap().unwrap();
    assert_eq!(
        EsKey::from_pem(stored.expose()).unwrap().thumbprint(),
        first.thumbprint()
    );
}

#[tokio::test]
async fn a_damaged_stored_key_is_an_error_and_is_never_replaced() {
    let vault = Vault::in_memory();
    vault
        .set(&key_entry("m"), Secret::new("garbage"))
        .await
        .unwrap();
    let err = client_key(&vault, &server(json!({})))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("damaged") && err.contains(&key_entry("m")),
        "{err}"
    );
    let kept = vault.get(&key_entry("m")).await.unwrap().unwrap();
    assert_eq!(kept.expose(), "garbage");
}

#[tokio::test]
async fn a_configured_key_file_is_used_and_nothing_is_generated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.pem");
    let key = EsKey::generate();
    std::fs::write(&path, key.to_pem().expose()).unwrap();
    let vault = Vault::in_memory();
    let s = server(json!({"private_key": path.to_string_lossy()}));
    assert_eq!(
        client_key(&vault, &s).await.unwrap().thumbprint(),
        key.thumbprint()
    );
    assert!(vault.get(&key_entry("m")).await.unwrap().is_none());
    std::fs::write(&path, "not a key: hunter2").unwrap();
    let err = client_key(&vault, &s).await.unwrap_err().to_string();
    assert!(err.contains("P-256") && !err.contains("hunter2"), "{err}");
}

#[tokio::test]
async fn the_workload_token_is_read_again_on_each_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    let source = AssertionSource::File(path.clone());
    std::fs::write(&path, "h.first.s\n").unwrap();
    assert_eq!(workload_token(&source).await.unwrap().expose(), "h.first.s");
    std::fs::write(&path, "h.second.s").unwrap();
    assert_eq!(
        workload_token(&source).await.unwrap().expose(),
        "h.second.s"
    );
    std::fs::write(&path, "secret-but-not-a-jwt").unwrap();
    let err = workload_token(&source).await.unwrap_err();
    assert!(
        err.contains("does not hold a JWT") && !err.contains("secret-but"),
        "{err}"
    );
    let gone = AssertionSource::Env("MCP_AUTH_BROKER_TEST_UNSET_VARIABLE".into());
    assert!(workload_token(&gone).await.unwrap_err().contains("not set"));
}
