//! The top-level token store settings: `token_store` ("keychain" or "file") and
//! `token_store_key_file`. `--store` and `--store-key-file` override them; a change takes
//! effect at the next start (the store is fixed for a broker's lifetime).

use std::path::PathBuf;

use super::raw::RawConfig;
use super::validate::ConfigError;
use crate::vault::StoreKind;

/// `token_store` and `token_store_key_file`, each `None` when the file does not set it.
pub(super) type StoreSettings = (Option<StoreKind>, Option<PathBuf>);

/// The validated settings; problems go to `errors` and `warnings`.
pub(super) fn token_store(
    raw: &RawConfig,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) -> StoreSettings {
    let top = |field: &str, problem: String, fix: String| ConfigError {
        server: None,
        field: field.into(),
        problem,
        fix,
    };
    let kind = raw.token_store.as_deref().and_then(|text| {
        StoreKind::parse(text)
            .map_err(|problem| {
                let fix = format!(
                    "write {} (or remove the field for the keychain)",
                    StoreKind::CHOICES
                );
                errors.push(top("token_store", problem, fix));
            })
            .ok()
    });
    let key_file = raw.token_store_key_file.as_deref().and_then(|text| {
        let path = PathBuf::from(text);
        if path.is_absolute() {
            return Some(path);
        }
        let problem = format!("\"{text}\" is not an absolute path");
        let fix = "write the key file's full path (it is read from wherever the broker starts)";
        errors.push(top("token_store_key_file", problem, fix.into()));
        None
    });
    if key_file.is_some() && kind != Some(StoreKind::File) {
        warnings.push("\"token_store_key_file\" is used only with \"token_store\": \"file\" (or --store file)".into());
    }
    (kind, key_file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(raw: RawConfig) -> (StoreSettings, Vec<ConfigError>, Vec<String>) {
        let (mut errors, mut warnings) = (vec![], vec![]);
        let out = token_store(&raw, &mut errors, &mut warnings);
        (out, errors, warnings)
    }

    #[test]
    fn token_store_accepts_keychain_or_file_and_an_absolute_key_file() {
        let raw = RawConfig {
            token_store: Some("file".into()),
            token_store_key_file: Some("/home/me/.config/broker.key".into()),
            ..RawConfig::default()
        };
        let ((kind, key), errors, warnings) = run(raw);
        assert_eq!(kind, Some(StoreKind::File));
        assert_eq!(key, Some(PathBuf::from("/home/me/.config/broker.key")));
        assert!(errors.is_empty() && warnings.is_empty());
    }

    #[test]
    fn an_unknown_store_or_a_relative_key_file_is_an_error_naming_the_fix() {
        let raw = RawConfig {
            token_store: Some("plaintext".into()),
            token_store_key_file: Some("broker.key".into()),
            ..RawConfig::default()
        };
        let (_, errors, _) = run(raw);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            text[0].contains("\"token_store\"") && text[0].contains("\"keychain\" or \"file\""),
            "{text:?}"
        );
        assert!(text[1].contains("not an absolute path"), "{text:?}");
        let raw = RawConfig {
            token_store_key_file: Some("/k".into()),
            ..RawConfig::default()
        };
        let (_, errors, warnings) = run(raw);
        assert!(errors.is_empty());
        assert_eq!(
            warnings.len(),
            1,
            "a key file without the file store is a warning"
        );
    }
}
