//! The config file: parse, then validate every entry.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::config::{file, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(raw) = file::parse(std::path::Path::new("fuzz.json"), text) {
        match validate(&raw) {
            Ok(v) => {
                let _ = v.warnings.len();
            }
            Err(errors) => {
                for e in errors {
                    let _ = e.to_string();
                }
            }
        }
    }
});
