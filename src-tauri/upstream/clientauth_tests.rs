use super::*;
use crate::secret::Secret;

fn v(m: &[&str]) -> Vec<String> {
    m.iter().map(|s| s.to_string()).collect()
}

fn plan_of(advertised: Option<&[String]>, registered: Option<ClientAuth>) -> Plan {
    plan(Inputs {
        has_secret: true,
        configured: None,
        registered,
        advertised,
    })
}

const BASIC: ClientAuth = ClientAuth::ClientSecretBasic;
const POST: ClientAuth = ClientAuth::ClientSecretPost;

#[test]
fn without_metadata_basic_is_tried_first_and_post_once_after() {
    assert_eq!(
        plan_of(None, None),
        Plan {
            first: BASIC,
            fallback: Some(POST)
        }
    );
}

#[test]
fn the_advertised_methods_are_followed() {
    let post_only = v(&["client_secret_post", "none"]);
    assert_eq!(
        plan_of(Some(&post_only), None),
        Plan {
            first: POST,
            fallback: None
        }
    );
    let both = v(&["client_secret_post", "client_secret_basic"]);
    assert_eq!(plan_of(Some(&both), None).first, BASIC);
    assert_eq!(plan_of(Some(&both), None).fallback, Some(POST));
    let neither = v(&["private_key_jwt"]);
    assert_eq!(plan_of(Some(&neither), None).fallback, Some(POST));
}

#[test]
fn a_registered_method_goes_first_and_a_configured_one_alone() {
    assert_eq!(
        plan_of(None, Some(POST)),
        Plan {
            first: POST,
            fallback: Some(BASIC)
        }
    );
    let configured = plan(Inputs {
        has_secret: true,
        configured: Some(TokenAuthMethod::ClientSecretPost),
        ..Inputs::default()
    });
    assert_eq!(
        configured,
        Plan {
            first: POST,
            fallback: None
        }
    );
    let public = plan(Inputs::default());
    assert_eq!(
        public,
        Plan {
            first: ClientAuth::None,
            fallback: None
        }
    );
}

#[test]
fn a_remembered_method_is_preferred_only_when_the_plan_allows_it() {
    let c = ClientInfo::new("c".into(), Some(Secret::new("s")), plan_of(None, None));
    let c = c.prefer(Some(POST));
    assert_eq!((c.auth, c.fallback), (POST, Some(BASIC)));
    let only_post = v(&["client_secret_post"]);
    let c = ClientInfo::new(
        "c".into(),
        Some(Secret::new("s")),
        plan_of(Some(&only_post), None),
    );
    assert_eq!(c.prefer(Some(BASIC)).auth, POST);
}

#[test]
fn basic_carries_client_id_in_the_body_and_none_drops_the_secret() {
    let c = ClientInfo::new("c".into(), Some(Secret::new("s")), plan_of(None, None));
    assert_eq!(
        c.auth_params(),
        vec![("client_id".to_string(), "c".to_string())]
    );
    let public = c.using(ClientAuth::None);
    assert!(public.secret.is_none() && public.auth_params().is_empty());
    assert!(c.using(POST).auth_params().is_empty());
}

fn failure(status: u16, error: Option<&str>) -> TokenFailure {
    TokenFailure {
        url: "https://as/token".into(),
        status: Some(status),
        oauth_error: error.map(Into::into),
        detail: "refused".into(),
        transient: false,
        kind: crate::upstream::http::CauseKind::Other,
    }
}

#[test]
fn only_refusals_of_the_client_authentication_are_worth_the_other_method() {
    assert!(worth_fallback(&failure(401, Some("invalid_client"))));
    assert!(worth_fallback(&failure(400, Some("invalid_client"))));
    assert!(worth_fallback(&failure(422, None)));
    assert!(worth_fallback(&failure(401, None)));
    assert!(worth_fallback(&failure(400, Some("invalid_request"))));
    assert!(!worth_fallback(&failure(400, Some("invalid_grant"))));
    assert!(!worth_fallback(&failure(400, Some("invalid_scope"))));
    assert!(!worth_fallback(&failure(500, None)));
    assert!(!worth_fallback(&failure(403, None)));
}

#[tokio::test]
async fn a_refused_method_gets_one_retry_with_the_other_and_never_a_third() {
    let c = ClientInfo::new("c".into(), Some(Secret::new("s")), plan_of(None, None));
    let mut tried = Vec::new();
    let got = send(&c, |ci| {
        tried.push(ci.auth);
        async move {
            match ci.auth {
                ClientAuth::ClientSecretPost => Ok(7),
                _ => Err(failure(422, None)),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(got, (7, POST));
    assert_eq!(tried, vec![BASIC, POST]);
    let mut count = 0;
    let err = send(&c, |_| {
        count += 1;
        async { Err::<(), _>(failure(401, Some("invalid_client"))) }
    })
    .await
    .unwrap_err();
    assert_eq!(count, 2);
    assert!(
        err.detail
            .contains("client_secret_basic was refused before, then client_secret_post"),
        "{}",
        err.detail
    );
    let mut count = 0;
    let _ = send(&c, |_| {
        count += 1;
        async { Err::<(), _>(failure(400, Some("invalid_grant"))) }
    })
    .await;
    assert_eq!(count, 1, "a verdict on the grant is not retried");
}

#[test]
fn a_key_client_sends_a_fresh_assertion_for_the_issuer_else_the_token_endpoint() {
    use base64::Engine;
    let aud = |params: &[(String, String)]| {
        let jws = &params
            .iter()
            .find(|(k, _)| k == "client_assertion")
            .unwrap()
            .1;
        let claims = jws.split('.').nth(1).unwrap();
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&claims).unwrap()["aud"].clone()
    };
    let plan = plan(Inputs {
        configured: Some(TokenAuthMethod::PrivateKeyJwt),
        ..Inputs::default()
    });
    assert_eq!(plan.first, ClientAuth::PrivateKeyJwt);
    let mut c = ClientInfo::new("cid".into(), None, plan);
    c.key = Some(super::super::assertion::ClientKey::new(
        super::super::jose::EsKey::generate(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let at_endpoint = with_remembered(c.clone(), dir.path(), "s", "https://as/token");
    assert_eq!(aud(&at_endpoint.auth_params()), "https://as/token");
    let for_issuer = with_remembered(
        c.for_issuer(Some("https://as")),
        dir.path(),
        "s",
        "https://as/token",
    );
    let params = for_issuer.auth_params();
    assert_eq!(aud(&params), "https://as");
    assert!(!params
        .iter()
        .any(|(k, _)| k == "client_id" || k == "client_secret"));
}
