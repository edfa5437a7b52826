use super::*;

#[test]
fn secret_auth_prefers_basic_and_falls_back_to_post() {
    let v = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(secret_auth(None), ClientAuth::ClientSecretBasic);
    assert_eq!(
        secret_auth(Some(&v(&["client_secret_post"]))),
        ClientAuth::ClientSecretPost
    );
    assert_eq!(
        secret_auth(Some(&v(&["client_secret_post", "client_secret_basic"]))),
        ClientAuth::ClientSecretBasic
    );
}

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
    }
}

#[test]
fn records_round_trip_atomically() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(load_record(dir.path(), "gh"), Record::default());
    let mut rec = Record {
        endpoints: None,
        registration: Some(dcr("https://as", "c")),
        registrations: Vec::new(),
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
