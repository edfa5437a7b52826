use super::*;

const REDIRECT: &str = "http://127.0.0.1:1/oauth/callback";

fn dcr(issuer: &str, client_id: &str) -> Registration {
    Registration {
        method: Method::Dcr,
        issuer: issuer.into(),
        redirect_uri: REDIRECT.into(),
        client_id: client_id.into(),
        auth: ClientAuth::None,
        has_secret: false,
        secret_entry: None,
        scope: None,
    }
}

#[test]
fn records_round_trip_atomically() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(load_record(dir.path(), "gh"), Record::default());
    let mut rec = Record {
        registration: Some(dcr("https://as", "c")),
        ..Record::default()
    };
    rec.keep(&dcr("https://as", "c"));
    save_record(dir.path(), "gh", &rec).unwrap();
    assert_eq!(load_record(dir.path(), "gh"), rec);
}

#[test]
fn a_record_written_before_registrations_were_kept_per_issuer_still_reads() {
    let old = r#"{"endpoints": null, "registration": {"method": "dcr", "issuer": "https://as",
        "redirect_uri": "http://127.0.0.1:1/oauth/callback", "client_id": "c", "auth": "none",
        "has_secret": true}}"#;
    let rec: Record = serde_json::from_str(old).unwrap();
    let reg = rec.dcr_for("https://as", REDIRECT).unwrap();
    assert_eq!(reg.secret_key("gh"), "upstream/gh/client_secret");
}

#[test]
fn a_client_belongs_to_the_issuer_that_registered_it() {
    let mut rec = Record::default();
    rec.keep(&dcr("https://as1", "one"));
    rec.keep(&dcr("https://as2", "two"));
    rec.registration = Some(dcr("https://as2", "two"));
    assert_eq!(
        rec.dcr_for("https://as1", REDIRECT).unwrap().client_id,
        "one"
    );
    assert_eq!(
        rec.dcr_for("https://as2", REDIRECT).unwrap().client_id,
        "two"
    );
    assert!(rec.dcr_for("https://as3", REDIRECT).is_none());
    assert!(rec
        .dcr_for("https://as1", "http://127.0.0.1:2/oauth/callback")
        .is_none());
    rec.keep(&dcr("https://as1", "one-again"));
    assert_eq!(rec.registrations.len(), 2, "one registration per issuer");
    assert_eq!(
        rec.dcr_for("https://as1", REDIRECT).unwrap().client_id,
        "one-again"
    );
    assert_ne!(
        secret_entry("gh", "https://as1"),
        secret_entry("gh", "https://as2")
    );
}

#[test]
fn a_kept_registration_is_reused_only_for_scopes_it_was_registered_with() {
    assert!(covers(
        Some("mcp:read offline_access"),
        Some("offline_access mcp:read")
    ));
    assert!(covers(None, None));
    assert!(covers(Some("mcp:read"), None));
    assert!(!covers(Some("mcp:read"), Some("mcp:read mcp:write")));
    assert!(!covers(None, Some("mcp:read")));
}

#[test]
fn a_refused_registration_is_dropped_once_and_kept_after_the_fresh_one_is_refused_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut rec = Record {
        registration: Some(dcr("https://as", "c1")),
        ..Record::default()
    };
    rec.keep(&dcr("https://as", "c1"));
    save_record(dir.path(), "gh", &rec).unwrap();
    assert_eq!(refused_dcr(dir.path(), "gh"), Refusal::Forgotten);
    let after = load_record(dir.path(), "gh");
    assert!(after.registration.is_none() && after.dcr_for("https://as", REDIRECT).is_none());
    // The next sign-in registers anew; the AS refuses that client too.
    let mut rec = after;
    rec.keep(&dcr("https://as", "c2"));
    rec.registration = Some(dcr("https://as", "c2"));
    save_record(dir.path(), "gh", &rec).unwrap();
    assert_eq!(refused_dcr(dir.path(), "gh"), Refusal::Again);
    assert_eq!(
        load_record(dir.path(), "gh")
            .dcr_for("https://as", REDIRECT)
            .unwrap()
            .client_id,
        "c2",
        "kept: registering again would not help"
    );
    // A token request that works clears the mark: a later refusal may re-register once more.
    crate::upstream::clientauth::remember(
        dir.path(),
        "gh",
        "https://as/token",
        "c2",
        ClientAuth::None,
    );
    assert_eq!(refused_dcr(dir.path(), "gh"), Refusal::Forgotten);
}
