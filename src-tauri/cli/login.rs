//! `login`, `logout`, `check`: through the running broker's admin API when one answers, else (for
//! `login`/`logout`) on the same core started in this process.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use super::company::Target;
use super::servers::fail;
use super::signin::{How, Ndjson};
use super::{exit, signin, Paths};
use crate::broker::{admin_token_path, Broker, Settings};
use crate::config::file;
use crate::opener::Opener;
use crate::upstream::paste::PasteError;
use crate::upstream::{DeviceCode, SignIn, SignInKind, Started};

fn kind_param(kind: SignInKind) -> &'static str {
    match kind {
        SignInKind::Auto => "auto",
        SignInKind::Browser => "browser",
        SignInKind::Device => "device",
    }
}

pub(super) enum Reach {
    /// A broker answered; the admin token was read from its data dir.
    Running { base: String, token: String },
    /// Nothing listens on the port: safe to act on the stored state directly.
    NotRunning,
    /// Something holds the port but does not answer: acting behind its back would be unsafe.
    Unresponsive { base: String, cause: String },
}

impl Reach {
    pub(super) fn unresponsive(base: &str, cause: &str) -> ExitCode {
        fail(exit::FAILURE, format!("something holds {base} but does not answer as a broker ({cause}); restart the broker, or check what listens on that port"))
    }
}

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime builds")
}

pub(super) async fn reach(paths: &Paths, port: u16) -> Reach {
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("client builds");
    match client.get(format!("{base}/healthz")).send().await {
        Ok(resp) if resp.status().is_success() => {
            let token =
                std::fs::read_to_string(admin_token_path(&paths.data_dir)).unwrap_or_default();
            Reach::Running {
                base,
                token: token.trim().to_string(),
            }
        }
        Ok(resp) => Reach::Unresponsive {
            cause: format!("/healthz answered {}", resp.status()),
            base,
        },
        Err(e) if e.is_connect() => Reach::NotRunning,
        Err(e) => Reach::Unresponsive {
            cause: e.to_string(),
            base,
        },
    }
}

/// Checks the server exists in the config; returns the gateway port.
pub(super) fn prepare(paths: &Paths, name: &str) -> Result<u16, ExitCode> {
    prepare_target(paths, &Target::Server(name.into())).map(|(port, _)| port)
}

/// Checks the config serves `target`; returns the gateway port and how to name the target.
fn prepare_target(paths: &Paths, target: &Target) -> Result<(u16, String), ExitCode> {
    let loaded = file::read(&paths.config).map_err(|e| fail(exit::USAGE, e))?;
    let config = &loaded.validated.config;
    if let Some(why) = target.missing(config) {
        return Err(fail(exit::USAGE, why));
    }
    Ok((paths.port(config.port), target.label(Some(config))))
}

pub(super) fn admin_error(
    base: &str,
    status: reqwest::StatusCode,
    body: &str,
    paths: &Paths,
) -> ExitCode {
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return fail(exit::FAILURE, format!("the broker at {base} did not accept the admin token from {}; pass the same --data-dir the running broker uses", admin_token_path(&paths.data_dir).display()));
    }
    let detail = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error_description"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.to_string());
    fail(exit::FAILURE, detail)
}

pub fn login(paths: &Paths, target: &Target, no_browser: bool, kind: SignInKind) -> ExitCode {
    let (port, name) = match prepare_target(paths, target) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let name = name.as_str();
    let how = How {
        opener: if no_browser {
            Opener::Print
        } else {
            Opener::System
        },
        paste: no_browser,
        port,
        kind,
    };
    runtime().block_on(async {
        match reach(paths, port).await {
            Reach::Running { base, token } => {
                let path = target.admin_path("sign-in");
                login_remote(paths, (&base, &token), (&path, name), &how).await
            }
            Reach::Unresponsive { base, cause } => Reach::unresponsive(&base, &cause),
            Reach::NotRunning => login_local(paths, target, name, &how).await,
        }
    })
}

/// A sign-in through the running broker's admin API (`path` under `/api/admin/`).
async fn login_remote(
    paths: &Paths,
    (base, token): (&str, &str),
    (path, name): (&str, &str),
    how: &How,
) -> ExitCode {
    let client = reqwest::Client::new();
    let sent = client
        .post(format!("{base}/api/admin/{path}"))
        .query(&[("kind", kind_param(how.kind))])
        .bearer_auth(token)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            return fail(
                exit::FAILURE,
                format!("cannot reach the broker at {base}: {e}"),
            )
        }
    };
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        return admin_error(base, status, &body, paths);
    }
    let mut stream = Ndjson {
        resp,
        pending: String::new(),
    };
    let first = match stream.next().await {
        Ok(v) => v,
        Err(e) => return finish(name, false, Some(&e)),
    };
    if let Ok(code) = serde_json::from_value::<DeviceCode>(first["device"].clone()) {
        signin::show_device(name, &code);
        return match stream.done().await {
            Ok(()) => finish(name, true, None),
            Err(e) => finish(name, false, Some(&e)),
        };
    }
    let url = first["authorize_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let warnings = first["warnings"].as_array().into_iter().flatten();
    warn(warnings.filter_map(Value::as_str));
    how.show(name, &url);
    let state = signin::state_of(&url).unwrap_or_default();
    let paste = how.paste.then_some(|input: String| {
        paste_remote(client.clone(), (base, token), state.clone(), input)
    });
    match signin::wait(stream.done(), paste).await {
        Ok(()) => finish(name, true, None),
        Err(e) => finish(name, false, Some(&e)),
    }
}

/// Hands what the person pasted to the running broker's sign-in with `state`: `Err` only when
/// the input itself is refused (completed, or failed as a callback would have: the sign-in's
/// stream says which).
async fn paste_remote(
    client: reqwest::Client,
    (base, token): (&str, &str),
    state: String,
    input: String,
) -> Result<(), String> {
    let resp = client
        .post(format!("{base}/api/admin/sign-in/paste"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "state": state, "input": input }))
        .send()
        .await
        .map_err(|e| format!("cannot reach the broker at {base}: {e}"))?;
    match resp.status() {
        reqwest::StatusCode::BAD_REQUEST => {
            let body: Value = resp.json().await.unwrap_or_default();
            Err(body["error_description"]
                .as_str()
                .unwrap_or("refused")
                .to_string())
        }
        _ => Ok(()),
    }
}

async fn login_local(paths: &Paths, target: &Target, name: &str, how: &How) -> ExitCode {
    let core = match crate::startup::start(paths, how.opener.clone()).await {
        Ok(core) => core,
        Err(e) => return fail(e.exit_code(), e),
    };
    let broker = core.broker;
    let result = async {
        // Opened here, after the warnings, as with a running broker.
        match target.start(&broker, how.kind).await? {
            Started::Browser(attempt) => browser_sign_in(&broker, attempt, name, how).await,
            Started::Device(d) => {
                signin::show_device(name, &d.code);
                d.done
                    .await
                    .unwrap_or_else(|_| Err("the sign-in was abandoned".into()))
            }
        }
    }
    .await;
    broker.shutdown();
    let _ = core.gateway.await;
    match result {
        Ok(()) => finish(name, true, None),
        Err(e) => finish(name, false, Some(&e)),
    }
}

/// A browser sign-in in this process: the address shown (or opened), then the browser's
/// return or a pasted address, within the admin API's own wait.
async fn browser_sign_in(
    broker: &Broker,
    attempt: SignIn,
    name: &str,
    how: &How,
) -> Result<(), String> {
    warn(attempt.warnings.iter().map(String::as_str));
    let url = attempt.authorize_url.to_string();
    how.show(name, &url);
    eprintln!(
        "Waiting for the browser sign-in to {} …",
        attempt
            .authorize_url
            .host_str()
            .unwrap_or("the authorization server")
    );
    let state = signin::state_of(&url).unwrap_or_default();
    let upstream = broker.upstream().clone();
    let paste = how.paste.then_some(|input: String| {
        let (upstream, state) = (upstream.clone(), state.clone());
        async move {
            match upstream.paste(&input, &state).await {
                Err(PasteError::Input(why)) => Err(why),
                // Completed, or failed as a callback would have: `done` says which.
                Ok(_) | Err(PasteError::SignIn(_)) => Ok(()),
            }
        }
    });
    let done = async {
        match tokio::time::timeout(crate::gateway::admin::SIGN_IN_WAIT, attempt.done).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("the sign-in was abandoned".to_string()),
            Err(_) => Err(
                "no answer from the browser within 10 minutes; run the command again".to_string(),
            ),
        }
    };
    signin::wait(done, paste).await
}

/// Says what the person should know before the browser opens (e.g. guessed endpoints).
fn warn<'a>(warnings: impl Iterator<Item = &'a str>) {
    for w in warnings {
        eprintln!("Warning: {w}");
    }
}

fn finish(name: &str, ok: bool, error: Option<&str>) -> ExitCode {
    if ok {
        println!("Signed in to \"{name}\".");
        ExitCode::from(exit::OK)
    } else {
        fail(
            exit::FAILURE,
            format!(
                "sign-in to \"{name}\" failed: {}",
                error.unwrap_or("no reason given")
            ),
        )
    }
}

pub fn logout(paths: &Paths, target: &Target) -> ExitCode {
    let (port, name) = match prepare_target(paths, target) {
        Ok(p) => p,
        Err(code) => return code,
    };
    runtime().block_on(async {
        match reach(paths, port).await {
            Reach::Running { base, token } => {
                let resp = reqwest::Client::new()
                    .post(format!(
                        "{base}/api/admin/{}",
                        target.admin_path("sign-out")
                    ))
                    .bearer_auth(&token)
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        println!("Signed out of \"{name}\".");
                        ExitCode::from(exit::OK)
                    }
                    Ok(r) => {
                        let status = r.status();
                        let body = r.text().await.unwrap_or_default();
                        admin_error(&base, status, &body, paths)
                    }
                    Err(e) => fail(
                        exit::FAILURE,
                        format!("cannot reach the broker at {base}: {e}"),
                    ),
                }
            }
            Reach::Unresponsive { base, cause } => Reach::unresponsive(&base, &cause),
            Reach::NotRunning => {
                let settings = Settings {
                    port,
                    config_path: paths.config.clone(),
                    data_dir: paths.data_dir.clone(),
                    opener: Opener::Print,
                };
                let store = match paths.configured_store() {
                    Ok(store) => store,
                    Err(e) => return fail(exit::FAILURE, e),
                };
                let broker = match Broker::new(settings, store) {
                    Ok(b) => b,
                    Err(e) => return fail(exit::FAILURE, e),
                };
                let result = target.sign_out(&broker).await;
                match result {
                    Ok(()) => {
                        println!("Signed out of \"{name}\".");
                        ExitCode::from(exit::OK)
                    }
                    Err(e) => fail(exit::FAILURE, e),
                }
            }
        }
    })
}

pub fn check(paths: &Paths, name: &str) -> ExitCode {
    let port = match prepare(paths, name) {
        Ok(p) => p,
        Err(code) => return code,
    };
    runtime().block_on(async {
        match reach(paths, port).await {
            Reach::Running { base, token } => match reqwest::Client::new().post(format!("{base}/api/admin/servers/{name}/check")).bearer_auth(&token).send().await {
                Ok(r) if r.status().is_success() => {
                    println!("Checking \"{name}\"; see `mcp-auth-broker status`.");
                    ExitCode::from(exit::OK)
                }
                Ok(r) => {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    admin_error(&base, status, &body, paths)
                }
                Err(e) => fail(exit::FAILURE, format!("cannot reach the broker at {base}: {e}")),
            },
            Reach::Unresponsive { base, cause } => Reach::unresponsive(&base, &cause),
            Reach::NotRunning => fail(exit::FAILURE, format!("no broker is answering on 127.0.0.1:{port}; start it with `mcp-auth-broker serve` (or the desktop app)")),
        }
    })
}
