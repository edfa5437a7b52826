use super::*;

fn cipher(byte: u8) -> Aes256Gcm {
    Aes256Gcm::new(&[byte; 32].into())
}

#[test]
fn a_sealed_value_opens_under_its_own_name_and_key_only() {
    let c = cipher(1);
    let sealed = seal(&c, "upstream/a/access_token", b"tok-123");
    assert!(sealed.starts_with(MAGIC));
    assert!(
        !sealed.windows(7).any(|w| w == b"tok-123"),
        "no plaintext at rest"
    );
    assert_eq!(
        unseal(&c, "upstream/a/access_token", &sealed).unwrap(),
        b"tok-123"
    );
    assert_eq!(
        unseal(&c, "upstream/b/access_token", &sealed),
        Err(Unopenable),
        "another entry's name is other associated data"
    );
    assert_eq!(
        unseal(&cipher(2), "upstream/a/access_token", &sealed),
        Err(Unopenable)
    );
}

#[test]
fn every_seal_uses_a_fresh_nonce() {
    let c = cipher(1);
    let one = seal(&c, "k", b"same");
    let two = seal(&c, "k", b"same");
    assert_ne!(one[4..16], two[4..16], "nonces differ");
    assert_ne!(one, two);
}

#[test]
fn any_altered_truncated_or_foreign_file_is_refused() {
    let c = cipher(7);
    let sealed = seal(&c, "k", b"secret value");
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        assert_eq!(unseal(&c, "k", &bad), Err(Unopenable), "byte {i} flipped");
    }
    for len in [0, 3, 4, 15, 16, sealed.len() - 1] {
        assert_eq!(unseal(&c, "k", &sealed[..len]), Err(Unopenable), "{len}");
    }
    assert_eq!(unseal(&c, "k", b"plain text token"), Err(Unopenable));
}

#[test]
fn entry_names_map_one_to_one_onto_file_names_inside_the_directory() {
    let names = [
        "upstream/demo/access_token",
        "upstream%2Fdemo",
        "config/gh/client_secret",
        "../escape",
        "é",
        "key-check",
    ];
    let files: Vec<String> = names.iter().map(|n| file_name(n)).collect();
    assert_eq!(files[0], "upstream%2Fdemo%2Faccess_token.sealed");
    assert_eq!(files[3], "%2E%2E%2Fescape.sealed");
    for (name, file) in names.iter().zip(&files) {
        assert!(!file.contains('/') && !file.starts_with('.'), "{file}");
        assert_ne!(file, CHECK_FILE);
        assert_eq!(
            unescape(file.strip_suffix(SUFFIX).unwrap()).as_deref(),
            Some(*name)
        );
    }
    let unique: std::collections::BTreeSet<_> = files.iter().collect();
    assert_eq!(unique.len(), names.len());
}

fn key(byte: u8) -> StoreKey {
    use base64::Engine;
    StoreKey::parse(&base64::engine::general_purpose::STANDARD.encode([byte; 32])).unwrap()
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_store_without_its_check_file_still_refuses_a_key_that_opens_none_of_its_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tokens");
    let source = KeySource::Env("K".into());
    let store = FileStore::open(&dir, &key(1), source.clone()).unwrap();
    store.set("upstream/a/meta", &Secret::new("{}")).unwrap();
    fs::remove_file(dir.join(CHECK_FILE)).unwrap();
    let before = snapshot(&dir);
    let err = FileStore::open(&dir, &key(2), source.clone())
        .err()
        .expect("a wrong key is refused");
    assert!(matches!(err, VaultError::StoreKey(_)), "{err:?}");
    assert_eq!(snapshot(&dir), before, "nothing written or deleted");
    let again = FileStore::open(&dir, &key(1), source).unwrap();
    assert!(dir.join(CHECK_FILE).exists(), "the right key restores it");
    assert_eq!(
        again.get("upstream/a/meta").unwrap().unwrap().expose(),
        "{}"
    );
}

#[cfg(unix)]
#[test]
fn a_store_directory_others_can_enter_or_a_loose_key_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tokens");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let err = FileStore::open(&dir, &key(1), KeySource::Env("K".into()))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("chmod 700"), "{err}");
    assert!(
        fs::read_dir(&dir).unwrap().next().is_none(),
        "nothing written"
    );

    let key_file = tmp.path().join("store.key");
    fs::write(&key_file, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o644)).unwrap();
    let source = KeySource::File(key_file.clone());
    let err = StoreKey::load(&source, &|_| None).unwrap_err().to_string();
    assert!(
        err.contains("chmod 600") && err.contains("mode 0644"),
        "{err}"
    );
    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(StoreKey::load(&source, &|_| None).is_ok());
    let missing = KeySource::File(tmp.path().join("nope.key"));
    let err = StoreKey::load(&missing, &|_| None).unwrap_err().to_string();
    assert!(
        err.contains("does not exist") && err.contains("umask 077"),
        "{err}"
    );
}
