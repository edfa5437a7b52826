//! `key NAME`: the public key of a `private_key_jwt` server, to paste into the provider (a JWK
//! Set by default, one JWK with `--jwk`). From the running broker's admin API when one answers;
//! on the token store directly when none does. The key is generated on first need; its private
//! half never leaves the token store.

use std::process::ExitCode;

use serde_json::Value;

use super::login::{admin_error, prepare, reach, runtime, Reach};
use super::servers::fail;
use super::{exit, Paths};
use crate::config::file;
use crate::upstream::assertion;
use crate::vault::Vault;

pub fn key(paths: &Paths, name: &str, single: bool) -> ExitCode {
    let port = match prepare(paths, name) {
        Ok(p) => p,
        Err(code) => return code,
    };
    runtime().block_on(async {
        let shown = match reach(paths, port).await {
            Reach::Running { base, token } => {
                let url = format!("{base}/api/admin/servers/{name}/key");
                let sent = reqwest::Client::new()
                    .get(url)
                    .bearer_auth(&token)
                    .send()
                    .await;
                let resp = match sent {
                    Ok(r) => r,
                    Err(e) => {
                        let why = format!("cannot reach the broker at {base}: {e}");
                        return fail(exit::FAILURE, why);
                    }
                };
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                if !status.is_success() {
                    return admin_error(&base, status, &body, paths);
                }
                serde_json::from_str::<Value>(&body).map_err(|e| e.to_string())
            }
            Reach::Unresponsive { base, cause } => return Reach::unresponsive(&base, &cause),
            Reach::NotRunning => local(paths, name).await,
        };
        match shown {
            Ok(v) => print(&v, single),
            Err(e) => fail(exit::FAILURE, e),
        }
    })
}

async fn local(paths: &Paths, name: &str) -> Result<Value, String> {
    let loaded = file::read(&paths.config).map_err(|e| e.to_string())?;
    let server = loaded
        .validated
        .config
        .server(name)
        .cloned()
        .ok_or_else(|| format!("no server named \"{name}\""))?;
    let vault = Vault::new(paths.configured_store()?);
    assertion::public_key(&vault, &server)
        .await
        .map_err(|e| e.to_string())
}

/// The JSON on stdout (so it pipes into a file or the clipboard), the words on stderr.
fn print(v: &Value, single: bool) -> ExitCode {
    let shown = if single { &v["jwk"] } else { &v["jwks"] };
    println!(
        "{}",
        serde_json::to_string_pretty(shown).unwrap_or_default()
    );
    eprintln!(
        "Public key {} for \"{}\" ({}). Register it with the provider as the client's {} (client_id {}); the private key stays in the broker.",
        v["kid"].as_str().unwrap_or(""),
        v["server"].as_str().unwrap_or(""),
        v["source"].as_str().unwrap_or(""),
        if single { "JWK" } else { "JWK Set (jwks)" },
        v["client_id"].as_str().unwrap_or("not configured yet"),
    );
    ExitCode::from(exit::OK)
}
