//! What the tray menu and the dashboard both do: sign in and out, copy snippets, autostart, quit.

use tauri::{AppHandle, Manager as _};
use tauri_plugin_autostart::ManagerExt as _;
use tauri_plugin_clipboard_manager::ClipboardExt as _;
use tauri_plugin_notification::NotificationExt as _;

use super::feed::Notice;
use super::model::{snippets, SnippetKind};
use crate::broker::Broker;
use crate::upstream::{SignInKind, Started};

/// Starts an interactive sign-in (in the browser, or with a code confirmed on any device);
/// returns at once with what to tell the person. The outcome arrives later as an event
/// (notification and activity) and a fresh health check; a device sign-in's code stays on the
/// dashboard and in the tray while it runs.
pub async fn sign_in(
    app: &AppHandle,
    broker: &Broker,
    name: &str,
    kind: SignInKind,
) -> Result<String, String> {
    let server = broker.server(name).map_err(|e| e.to_string())?;
    let started = broker
        .upstream()
        .sign_in_kind(&server, &broker.settings().opener, kind)
        .await
        .map_err(|e| e.to_string())?;
    let (told, done) = match started {
        Started::Browser(a) => (format!("Opened the sign-in page for {} in your browser ({}). Finish there; this window updates by itself.", server.name, a.authorize_url.host_str().unwrap_or("the provider")), a.done),
        Started::Device(d) => (format!("Open {} on any device and confirm the code {}. This window updates by itself.", d.code.open_uri(), d.code.user_code), d.done),
    };
    let (broker, app, name) = (broker.clone(), app.clone(), server.name.clone());
    tauri::async_runtime::spawn(async move {
        match done.await {
            Ok(Ok(())) => tracing::info!("sign-in to {name} finished"),
            Ok(Err(reason)) => tracing::warn!("sign-in to {name} failed: {reason}"),
            Err(_) => tracing::warn!("sign-in to {name} was abandoned"),
        }
        broker.health().check_now(&name);
        super::refresh_ui(&app);
    });
    Ok(told)
}

/// Starts the company sign-in in the browser; when it ends every enterprise server is checked
/// again (the health supervisor restarts them on the sign-in's event).
pub async fn sign_in_company(app: &AppHandle, broker: &Broker) -> Result<String, String> {
    let company = broker.config().enterprise.clone();
    let company = company.ok_or("the config names no company identity provider")?;
    let upstream = broker.upstream();
    let opener = &broker.settings().opener;
    let started = upstream.sign_in_company(&company, opener).await;
    let a = started.map_err(|e| e.to_string())?;
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        if let Ok(Err(reason)) = a.done.await {
            tracing::warn!("company sign-in failed: {reason}");
        }
        super::refresh_ui(&app);
    });
    Ok(format!(
        "Opened the sign-in page of {} in your browser.",
        company.name
    ))
}

pub async fn sign_out(app: &AppHandle, broker: &Broker, name: &str) -> Result<(), String> {
    let server = broker.server(name).map_err(|e| e.to_string())?;
    broker
        .upstream()
        .sign_out(&server)
        .await
        .map_err(|e| e.to_string())?;
    broker.health().check_now(&server.name);
    super::refresh_ui(app);
    Ok(())
}

pub fn copy_snippet(
    app: &AppHandle,
    broker: &Broker,
    name: &str,
    kind: SnippetKind,
) -> Result<String, String> {
    // The aggregate endpoint is named "mcp" in menu ids; clients list it as the broker itself.
    let settings = broker.settings();
    let (label, url) = if name == crate::aggregate::AUDIENCE {
        ("mcp-auth-broker".to_string(), settings.aggregate_url())
    } else {
        let server = broker.server(name).map_err(|e| e.to_string())?;
        let url = settings.client_url(server.name.as_str());
        (server.name.to_string(), url)
    };
    let all = snippets(&label, &url);
    let text = all.get(kind).to_string();
    app.clipboard()
        .write_text(text.clone())
        .map_err(|e| format!("could not copy to the clipboard: {e}"))?;
    Ok(text)
}

/// Copies a `private_key_jwt` server's public key (its JWK Set, what the provider registers) to
/// the clipboard and returns its thumbprint (`kid`) to show. The key is generated on first need
/// (`upstream::assertion::public_key`, as `mcp-auth-broker key NAME`); never the private half.
pub async fn copy_public_key(
    app: &AppHandle,
    broker: &Broker,
    name: &str,
) -> Result<String, String> {
    let server = broker.server(name).map_err(|e| e.to_string())?;
    let shown = crate::upstream::assertion::public_key(broker.vault(), &server)
        .await
        .map_err(|e| e.to_string())?;
    app.clipboard()
        .write_text(shown["jwks"].to_string())
        .map_err(|e| format!("could not copy to the clipboard: {e}"))?;
    Ok(shown["kid"].as_str().unwrap_or_default().to_string())
}

pub fn set_autostart(app: &AppHandle, enabled: bool) -> Result<bool, String> {
    let manager = app.autolaunch();
    let result = if enabled {
        manager.enable()
    } else {
        manager.disable()
    };
    result.map_err(|e| format!("could not change \"Start at login\": {e}"))?;
    let now = manager.is_enabled().unwrap_or(enabled);
    super::refresh_tray(app);
    Ok(now)
}

pub fn autostart_enabled(app: &AppHandle) -> bool {
    app.autolaunch().is_enabled().unwrap_or(false)
}

/// Stops the broker and exits: 0, or the start failure's exit code when the core never ran.
pub fn quit(app: &AppHandle) {
    let mut code = 0;
    if let Some(shell) = app.try_state::<super::Shell>() {
        if let Some(broker) = &shell.broker {
            broker.shutdown();
        }
        if let Some(failure) = &shell.start_error {
            code = i32::from(failure.code);
        }
    }
    app.exit(code);
}

pub fn notify(app: &AppHandle, notice: &Notice) {
    if let Err(e) = app
        .notification()
        .builder()
        .title(&notice.title)
        .body(&notice.body)
        .show()
    {
        tracing::warn!("notification not shown ({e}): {}", notice.title);
    }
}
