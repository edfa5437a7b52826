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

#[test]
fn records_round_trip_atomically() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(load_record(dir.path(), "gh"), Record::default());
    let rec = Record {
        endpoints: None,
        registration: Some(Registration {
            method: Method::Dcr,
            issuer: "https://as".into(),
            redirect_uri: "http://127.0.0.1:1/oauth/callback".into(),
            client_id: "c".into(),
            auth: ClientAuth::None,
            has_secret: false,
        }),
    };
    save_record(dir.path(), "gh", &rec).unwrap();
    assert_eq!(load_record(dir.path(), "gh"), rec);
}
