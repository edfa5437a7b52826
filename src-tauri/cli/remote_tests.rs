use super::*;

#[test]
fn unix_times_format_as_utc_dates() {
    assert_eq!(format_unix(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(format_unix(1_795_331_100), "2026-11-22 07:05:00 UTC");
    assert_eq!(format_unix(951_782_400), "2000-02-29 00:00:00 UTC");
}

#[test]
fn one_servers_details_show_its_evidence_and_timeline_with_repeats() {
    let s = serde_json::json!({"state": {"state": "healthy", "tools": 1, "latency_ms": 3, "era": "modern", "protocol_version": "2026-07-28"},
        "flow": {"flow": "client_credentials", "evidence": ["explicit oauth_flow"]}, "token": {"expires_at": null},
        "timeline": [{"at": 0, "kind": "token", "label": "client-credentials token", "ok": true, "detail": "fetched, valid for 3600 s", "repeats": 0},
                     {"at": 60, "kind": "scope_challenge", "label": "scope challenge (403)", "ok": false, "detail": "HTTP 403", "repeats": 2}]});
    let d = server_details("m2m", &s);
    assert!(d.starts_with("m2m "), "{d}");
    assert!(d.contains("\nprotocol: MCP 2026-07-28 (modern)\n"), "{d}");
    assert!(d.contains("  - explicit oauth_flow"), "{d}");
    assert!(
        d.contains(
            "1970-01-01 00:00:00 UTC  ok    client-credentials token: fetched, valid for 3600 s\n"
        ),
        "{d}"
    );
    assert!(
        d.contains("FAIL  scope challenge (403): HTTP 403 (and 2 more times)"),
        "{d}"
    );
    let empty = server_details("new", &serde_json::json!({}));
    assert!(empty.contains("(nothing yet)"), "{empty}");
}

#[test]
fn one_servers_details_say_when_its_token_is_dpop_bound_and_to_which_key() {
    let bound = serde_json::json!({"token": {"expires_at": null, "dpop_jkt": "NzbLsXh8uDCcd"}});
    let d = server_details("gh", &bound);
    assert!(
        d.contains("\ntoken: DPoP-bound, sender-constrained to the broker's key (thumbprint NzbLsXh8uDCcd)\n"),
        "{d}"
    );
    let plain = server_details("gh", &serde_json::json!({"token": {"expires_at": null}}));
    assert!(!plain.contains("DPoP"), "{plain}");
}

#[test]
fn the_status_table_names_flows_as_people_say_them_and_problems_in_one_sentence() {
    use crate::health::{HealthState, ServerStatus};
    let down = ServerStatus {
        state: HealthState::Unreachable {
            cause: "tcp connect error: Connection refused (os error 111)".into(),
        },
        ..ServerStatus::unknown()
    };
    let problem = crate::words::explain_status(&down).unwrap();
    let browser = crate::words::flow(crate::upstream::Flow::AuthorizationCode);
    let s = serde_json::json!({"state": down.state, "flow": {"flow": "authorization_code"},
        "flow_words": browser, "problem": problem, "token": {"expires_at": null}});
    let t = status_table(&serde_json::json!({ "gh": s }));
    let row = t.lines().nth(1).unwrap();
    assert!(row.contains("Browser sign-in"), "{t}");
    assert!(row.ends_with(&problem.sentence), "{t}");
    assert!(
        !row.contains("os error"),
        "the raw cause stays in the details: {t}"
    );
    let d = server_details("gh", &s);
    assert!(
        d.contains("details: tcp connect error: Connection refused (os error 111)\n"),
        "{d}"
    );
    assert!(
        d.contains("flow: Browser sign-in — OAuth authorization code"),
        "{d}"
    );
}

#[test]
fn the_status_table_shows_flow_health_and_the_actionable_detail() {
    let v = serde_json::json!({
        "gh": {"state": {"state": "needs_sign_in", "reason": "no token yet"}, "flow": {"flow": "authorization_code"}, "token": {"expires_at": null}},
        "m2m": {"state": {"state": "healthy", "tools": 3, "latency_ms": 12, "era": "legacy", "protocol_version": "2025-11-25"}, "protocol": "MCP 2025-11-25", "flow": {"flow": "client_credentials"}, "token": {"expires_at": 0}},
        "new": {"state": {"state": "healthy", "tools": 1, "latency_ms": 4, "era": "modern", "protocol_version": "2026-07-28"}, "flow": {"flow": "none"}, "token": {"expires_at": null}},
        "docs": {"state": {"state": "delegated", "detail": "each local client signs in"}, "flow": {"flow": "delegate"}, "token": {"expires_at": null}},
        "crm": {"state": {"state": "healthy", "tools": 2, "latency_ms": 5, "protocol_version": "2025-11-25"}, "flow": {"flow": "authorization_code"}, "token": {"expires_at": null, "needs_scope": "crm:write"}},
        "kc": {"state": {"state": "keychain_unavailable", "locked": true, "detail": "the OS keychain is locked; unlock it"}, "flow": {"flow": "authorization_code"}, "token": {"expires_at": null}}
    });
    let t = status_table(&v);
    assert!(
        t.contains("needs scope \"crm:write\": run `mcp-auth-broker login crm`"),
        "{t}"
    );
    assert!(
        t.contains("gh")
            && t.contains("authorization_code")
            && t.contains("needs sign in")
            && t.contains("no token yet"),
        "{t}"
    );
    assert!(
        t.contains("healthy")
            && t.contains("3 tools, 12 ms, MCP 2025-11-25")
            && t.contains("1 tool, 4 ms, MCP 2026-07-28 (modern)")
            && t.contains("1970-01-01"),
        "{t}"
    );
    assert!(
        t.contains("keychain locked") && t.contains("the OS keychain is locked; unlock it"),
        "{t}"
    );
    assert!(
        t.contains("delegated (clients sign in) delegated")
            && t.contains("each local client signs in"),
        "{t}"
    );
}
