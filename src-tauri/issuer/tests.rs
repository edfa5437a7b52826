use super::codes::{CodeRequest, Presented};
use super::state::State;
use super::*;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://127.0.0.1:5555/cb";

fn state_with_client() -> State {
    let mut s = State::default();
    let client = RegistrationRequest {
        redirect_uris: vec![REDIRECT.into()],
        client_name: Some("Test".into()),
        ..Default::default()
    }
    .into_client_with_id("c1".into(), 100)
    .unwrap();
    s.add_client(client).unwrap();
    s
}

/// What the right client presents with its code (optionally naming a server).
fn right(server: Option<&str>) -> Presented<'_> {
    Presented {
        client_id: "c1",
        redirect_uri: Some(REDIRECT),
        verifier: Some(VERIFIER),
        server,
    }
}

fn code(s: &mut State, now: u64) -> String {
    let req = CodeRequest {
        client_id: "c1".into(),
        server: "alpha".into(),
        redirect_uri: REDIRECT.into(),
        code_challenge: CHALLENGE.into(),
        scope: None,
    };
    s.issue_code(req, now).expose().to_string()
}

#[test]
fn a_replayed_code_fails_and_revokes_the_tokens_it_issued() {
    let mut s = state_with_client();
    let c = code(&mut s, 1000);
    let tokens = s.exchange_code(&c, right(Some("alpha")), 1001).unwrap();
    assert!(s
        .authenticate(tokens.access_token.expose(), "alpha", 1002)
        .is_ok());
    let again = s.exchange_code(&c, right(None), 1003);
    assert!(matches!(again, Err(TokenError::InvalidGrant(_))));
    assert_eq!(
        s.authenticate(tokens.access_token.expose(), "alpha", 1004),
        Err(AuthFailure::Unknown)
    );
    assert!(s
        .refresh(tokens.refresh_token.expose(), "c1", None, 1005)
        .is_err());
}

#[test]
fn codes_expire_and_check_verifier_redirect_client_and_server() {
    let mut s = state_with_client();
    let c = code(&mut s, 1000);
    assert!(matches!(
        s.exchange_code(&c, right(None), 1000 + CODE_TTL),
        Err(TokenError::InvalidGrant(_))
    ));
    let wrong = "x".repeat(43);
    let refusals: [(Presented, &str); 6] = [
        (
            Presented {
                redirect_uri: Some("http://127.0.0.1:5555/other"),
                ..right(None)
            },
            "invalid_grant",
        ),
        (
            Presented {
                redirect_uri: None,
                ..right(None)
            },
            "invalid_request",
        ),
        (
            Presented {
                client_id: "c2",
                ..right(None)
            },
            "invalid_grant",
        ),
        (
            Presented {
                verifier: Some(&wrong),
                ..right(None)
            },
            "invalid_grant",
        ),
        (
            Presented {
                verifier: None,
                ..right(None)
            },
            "invalid_request",
        ),
        (right(Some("beta")), "invalid_target"),
    ];
    for (i, (presented, expected)) in refusals.into_iter().enumerate() {
        let c = code(&mut s, 2000);
        let refused = s.exchange_code(&c, presented, 2001).unwrap_err();
        assert_eq!(refused.code(), expected, "case {i}: {refused:?}");
        let after = s.exchange_code(&c, right(None), 2002);
        assert!(
            matches!(&after, Err(TokenError::InvalidGrant(m)) if m.contains("refused")),
            "case {i}: a refused attempt spends the code: {after:?}"
        );
    }
    let c = code(&mut s, 3000);
    assert!(s.exchange_code(&c, right(Some("alpha")), 3001).is_ok());
}

#[test]
fn refresh_rotates_and_reuse_revokes_the_family() {
    let mut s = state_with_client();
    let c = code(&mut s, 1000);
    let first = s.exchange_code(&c, right(None), 1001).unwrap();
    let second = s
        .refresh(first.refresh_token.expose(), "c1", Some("alpha"), 1002)
        .unwrap();
    assert_ne!(first.refresh_token, second.refresh_token);
    assert!(s
        .authenticate(second.access_token.expose(), "alpha", 1003)
        .is_ok());
    // The rotated token is presented again: theft is assumed, the family dies.
    assert!(matches!(
        s.refresh(first.refresh_token.expose(), "c1", None, 1004),
        Err(TokenError::InvalidGrant(_))
    ));
    assert_eq!(
        s.authenticate(second.access_token.expose(), "alpha", 1005),
        Err(AuthFailure::Unknown)
    );
    assert!(s
        .refresh(second.refresh_token.expose(), "c1", None, 1006)
        .is_err());
}

#[test]
fn tokens_are_bound_to_their_server_and_expire() {
    let mut s = state_with_client();
    let c = code(&mut s, 1000);
    let t = s.exchange_code(&c, right(None), 1000).unwrap();
    assert_eq!(
        s.authenticate(t.access_token.expose(), "beta", 1001),
        Err(AuthFailure::WrongServer)
    );
    assert_eq!(
        s.authenticate(t.access_token.expose(), "alpha", 1000 + ACCESS_TTL),
        Err(AuthFailure::Expired)
    );
}

#[test]
fn state_is_persisted_as_hashes_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let base = Url::parse("http://127.0.0.1:1").unwrap();
    let issuer = Issuer::open(dir.path(), base.clone()).unwrap();
    let client = issuer
        .register(
            RegistrationRequest {
                redirect_uris: vec![REDIRECT.into()],
                ..Default::default()
            },
            unix_now(),
        )
        .unwrap()
        .unwrap();
    let req = CodeRequest {
        client_id: client.client_id.clone(),
        server: "alpha".into(),
        redirect_uri: REDIRECT.into(),
        code_challenge: CHALLENGE.into(),
        scope: None,
    };
    let c = issuer.issue_code(req, unix_now());
    let t = issuer
        .exchange_code(
            c.expose(),
            &client.client_id,
            Some(REDIRECT),
            Some(VERIFIER),
            None,
            unix_now(),
        )
        .unwrap()
        .unwrap();
    let (_, key) = issuer.create_api_key("script", None).unwrap();
    drop(issuer);
    let text = std::fs::read_to_string(dir.path().join("issuer.json")).unwrap();
    assert!(
        !text.contains(t.access_token.expose())
            && !text.contains(t.refresh_token.expose())
            && !text.contains(key.expose())
    );
    let reopened = Issuer::open(dir.path(), base).unwrap();
    assert!(reopened
        .authenticate(t.access_token.expose(), "alpha", unix_now())
        .is_ok());
    assert!(reopened
        .authenticate(key.expose(), "anything", unix_now())
        .is_ok());
    assert_eq!(reopened.list_clients().len(), 1);
    assert_eq!(reopened.list_grants().len(), 1);
    assert!(reopened.revoke_client(&client.client_id).unwrap());
    assert!(reopened
        .authenticate(t.access_token.expose(), "alpha", unix_now())
        .is_err());
}

#[test]
fn registration_refuses_bad_redirects_and_unknown_grant_types() {
    let bad = RegistrationRequest {
        redirect_uris: vec!["http://evil.example/cb".into()],
        ..Default::default()
    };
    assert!(matches!(
        bad.into_client(1),
        Err(RegistrationError::InvalidRedirectUri(_))
    ));
    let implicit = RegistrationRequest {
        redirect_uris: vec![REDIRECT.into()],
        grant_types: Some(vec!["implicit".into()]),
        ..Default::default()
    };
    assert!(matches!(
        implicit.into_client(1),
        Err(RegistrationError::InvalidMetadata(_))
    ));
    let none = RegistrationRequest::default();
    assert!(none.into_client(1).is_err());
}

#[test]
fn registration_keeps_the_application_type_and_defaults_to_native() {
    let with = |t: Option<&str>| RegistrationRequest {
        redirect_uris: vec![REDIRECT.into()],
        application_type: t.map(String::from),
        ..Default::default()
    };
    let native = with(None).into_client(1).unwrap();
    assert_eq!(native.application_type, ApplicationType::Native);
    let web = with(Some("web")).into_client(1).unwrap();
    assert_eq!(web.application_type, ApplicationType::Web);
    assert!(matches!(
        with(Some("service")).into_client(1),
        Err(RegistrationError::InvalidMetadata(m)) if m.contains("\"service\"")
    ));
}

#[test]
fn concurrent_changes_all_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = Url::parse("http://127.0.0.1:1").unwrap();
    let issuer = std::sync::Arc::new(Issuer::open(dir.path(), base.clone()).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let issuer = issuer.clone();
            std::thread::spawn(move || issuer.create_api_key(&format!("k{i}"), None).unwrap())
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(issuer);
    assert_eq!(
        Issuer::open(dir.path(), base)
            .unwrap()
            .list_api_keys()
            .len(),
        8
    );
}

#[test]
fn an_api_key_records_its_last_use_and_a_wrong_server_does_not_count() {
    let mut s = State::default();
    let (info, key) = s.create_api_key("script", Some("acme"), 100);
    assert_eq!(info.last_used, None);
    assert!(s.authenticate(key.expose(), "other", 150).is_err());
    assert_eq!(s.api_keys[0].last_used, None, "a refused use is not a use");
    s.authenticate(key.expose(), "acme", 200).unwrap();
    assert_eq!(s.api_keys[0].last_used, Some(200));
}

#[test]
fn only_token_requests_that_issue_or_revoke_mark_the_state_for_writing() {
    let mut s = state_with_client();
    let c = code(&mut s, 1000);
    s.tokens_changed = false;
    let wrong = "x".repeat(43);
    let refused = Presented {
        verifier: Some(&wrong),
        ..right(None)
    };
    assert!(s.exchange_code(&c, refused, 1001).is_err());
    assert!(s.refresh("mab_rt_unknown", "c1", None, 1001).is_err());
    assert!(!s.tokens_changed, "refused attempts change nothing kept");
    let c = code(&mut s, 1000);
    let t = s.exchange_code(&c, right(None), 1001).unwrap();
    assert!(s.tokens_changed, "issued tokens are kept");
    s.tokens_changed = false;
    assert!(s.exchange_code(&c, right(None), 1002).is_err());
    assert!(s.tokens_changed, "a replay revoked what the code issued");
    assert!(s
        .authenticate(t.access_token.expose(), "alpha", 1003)
        .is_err());
}
