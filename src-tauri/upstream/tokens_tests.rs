use super::*;

#[test]
fn expires_in_shapes_are_each_handled() {
    let j = |v: serde_json::Value| ExpiresIn::from_json(Some(&v));
    assert_eq!(ExpiresIn::from_json(None), ExpiresIn::Missing);
    assert_eq!(j(serde_json::json!(3600)), ExpiresIn::Seconds(3600));
    assert_eq!(j(serde_json::json!("120")), ExpiresIn::Seconds(120));
    assert_eq!(j(serde_json::json!(-5)), ExpiresIn::Seconds(-5));
    assert_eq!(j(serde_json::json!("soon")), ExpiresIn::Invalid);
    assert_eq!(j(serde_json::json!(1e300)), ExpiresIn::Seconds(i64::MAX));
}

#[test]
fn m2m_ttl_ends_at_the_renewal_margin_so_no_token_is_served_past_its_life() {
    let ttl = |s| m2m_cache_ttl(ExpiresIn::Seconds(s)).as_secs();
    assert_eq!(ttl(3600), 3600 - 720, "a fifth of an hour before expiry");
    assert_eq!(ttl(200), 200 - 60, "at least a minute before expiry");
    assert_eq!(ttl(65), 33, "at most half the lifetime before expiry");
    assert_eq!(ttl(4), 2);
    assert_eq!(ttl(3), 2);
    assert_eq!(ttl(1), 1);
    assert_eq!(ttl(0), 0, "an already expired token is not cached");
    assert_eq!(ttl(-100), 0);
    for lifetime in 1..400 {
        assert!(ttl(lifetime) <= lifetime as u64, "{lifetime}");
        assert!(
            ttl(lifetime) * 2 >= lifetime as u64,
            "{lifetime}: kept half its life"
        );
    }
    let default = DEFAULT_LIFETIME - renewal_margin(DEFAULT_LIFETIME);
    assert_eq!(m2m_cache_ttl(ExpiresIn::Missing).as_secs(), default);
    assert_eq!(m2m_cache_ttl(ExpiresIn::Invalid).as_secs(), default);
    assert_eq!(
        m2m_cache_ttl(ExpiresIn::Seconds(i64::MAX)).as_secs(),
        MAX_LIFETIME - MAX_LIFETIME / 5
    );
}

#[test]
fn refresh_is_due_in_the_last_fifth_or_minute_but_at_most_half_the_lifetime() {
    let meta = TokenMeta {
        obtained_at: 1000,
        expires_at: Some(4600),
        ..TokenMeta::default()
    };
    assert!(!needs_refresh(&meta, 1000));
    assert!(!needs_refresh(&meta, 3879));
    assert!(needs_refresh(&meta, 3880));
    assert!(needs_refresh(&meta, 9999));
    let short = TokenMeta {
        obtained_at: 0,
        expires_at: Some(30),
        ..TokenMeta::default()
    };
    assert!(
        !needs_refresh(&short, 0),
        "a 30 s token is not refreshed on every call"
    );
    assert!(!needs_refresh(&short, 14));
    assert!(needs_refresh(&short, 15));
    assert!(!needs_refresh(&TokenMeta::default(), u64::MAX / 2));
}

#[test]
fn backoff_grows_and_is_bounded() {
    assert_eq!(backoff(1), Duration::from_secs(2));
    assert_eq!(backoff(3), Duration::from_secs(8));
    assert_eq!(backoff(100), Duration::from_secs(300));
}

#[test]
fn a_response_without_refresh_token_keeps_the_previous_one() {
    let r: UpTokenResponse =
        serde_json::from_value(serde_json::json!({"access_token": "a2", "expires_in": "60"}))
            .unwrap();
    let s = Stored::from_response(&r, Some(Secret::new("r1")), 100);
    assert_eq!(s.refresh.unwrap().expose(), "r1");
    assert_eq!(s.meta.expires_at, Some(160));
    assert!(s.meta.has_refresh_token);
    assert!(
        !format!("{r:?}").contains("a2"),
        "token response Debug must not show the token"
    );
}
