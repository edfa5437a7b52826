//! Tauri commands behind the dashboard. Each returns plain DTOs or an error string meant to be
//! shown verbatim; none returns a token or secret value.

use tauri::{AppHandle, Manager, State};
use tauri_plugin_autostart::ManagerExt as _;

use super::dto::{
    aggregate_dto, apply_form, local_clients as local_clients_dto, server_dto, ActivityDto,
    AggregateDto, AppStatusDto, LocalClientDto, ProbeDto, ServerDto, ServerForm, ServerFormView,
};
use super::model::{flow_name, SnippetKind};
use super::Shell;
use crate::broker::Broker;
use crate::config::profiles::Profile;
use crate::config::{file, validate, RawConfig, RawServer, ServerName};
use crate::secret::SecretRef;
use crate::sync::lock;
use crate::upstream::SignInKind;

type CmdResult<T> = Result<T, String>;

fn broker(shell: &Shell) -> CmdResult<Broker> {
    shell.broker.clone().ok_or_else(|| {
        "the broker is not running (see the message at the top of the window)".to_string()
    })
}

#[tauri::command]
pub fn app_status(app: AppHandle, shell: State<'_, Shell>) -> AppStatusDto {
    let broker = shell.broker.as_ref();
    AppStatusDto {
        start_error: shell.start_error.as_ref().map(|f| f.message.clone()),
        base_url: broker.map(|b| b.settings().base_url().to_string()),
        config_path: broker.map(|b| b.settings().config_path.display().to_string()),
        config_problem: broker.and_then(|b| b.subscribe_config_problem().borrow().clone()),
        token_store: broker.map(|b| b.vault().info().description),
        tray_hint: shell.tray_hint.clone(),
        autostart: app.autolaunch().is_enabled().unwrap_or(false),
    }
}

#[tauri::command]
pub fn list_servers(shell: State<'_, Shell>) -> CmdResult<Vec<ServerDto>> {
    let broker = broker(&shell)?;
    let config = broker.config();
    let status = broker.health().snapshot();
    Ok(config
        .servers
        .values()
        .map(|s| {
            let name = s.name.as_str();
            let mut dto = server_dto(s, status.get(name), broker.settings().client_url(name));
            dto.timeline = broker.upstream().timeline(&s.name);
            dto.device_sign_in = broker.upstream().device_code(&s.name);
            dto
        })
        .collect())
}

/// The aggregate endpoint for the client-setup view.
#[tauri::command]
pub fn aggregate_setup(shell: State<'_, Shell>) -> CmdResult<Option<AggregateDto>> {
    let broker = broker(&shell)?;
    let url = broker.settings().aggregate_url();
    Ok(aggregate_dto(
        &broker.config(),
        &broker.health().snapshot(),
        &url,
    ))
}

/// The entry as written in the file, for the edit form (secret fields only say "set or not").
#[tauri::command]
pub fn server_form(shell: State<'_, Shell>, name: String) -> CmdResult<ServerFormView> {
    let broker = broker(&shell)?;
    let raw = file::read(&broker.settings().config_path)
        .map_err(|e| e.to_string())?
        .raw;
    raw.mcp_servers
        .get(&name)
        .map(ServerFormView::from_raw)
        .ok_or_else(|| format!("no server named \"{name}\" in the config file"))
}

/// The raw entry the form edits: the existing one (keeping unknown fields) or a fresh one.
/// A new entry gets the provider profile its URLs match (`config::profiles`); what it applied
/// comes back as one sentence for the person.
fn candidate(
    base: &RawConfig,
    form: &ServerForm,
    original: Option<&str>,
    port: u16,
) -> CmdResult<(RawConfig, Vec<super::dto::PendingSecret>, Option<String>)> {
    let name = form.name.trim().to_string();
    ServerName::parse(&name).map_err(|why| {
        format!(
            "field \"name\": the name {why}; fix: pick a name like \"github\" or \"linear-prod\""
        )
    })?;
    let mut next = base.clone();
    let mut entry = match original {
        Some(old) => next.mcp_servers.remove(old).unwrap_or_default(),
        None => RawServer::default(),
    };
    if next.mcp_servers.contains_key(&name) {
        return Err(format!("field \"name\": a server named \"{name}\" already exists; fix: pick another name, or edit that server instead"));
    }
    let pending = apply_form(form, &mut entry);
    let applied = original
        .is_none()
        .then(|| Profile::detect(&entry))
        .flatten()
        .map(|p| p.apply(&mut entry, port).summary());
    next.mcp_servers.insert(name, entry);
    Ok((next, pending, applied))
}

fn describe_errors(errors: &[crate::config::ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Classifies the entry as typed, without saving it or sending any credential.
#[tauri::command]
pub async fn probe_server(
    shell: State<'_, Shell>,
    form: ServerForm,
    original: Option<String>,
) -> CmdResult<ProbeDto> {
    let broker = broker(&shell)?;
    let base = file::read(&broker.settings().config_path)
        .map_err(|e| e.to_string())?
        .raw;
    let port = broker.settings().port;
    let (next, _secrets_not_stored, applied) = candidate(&base, &form, original.as_deref(), port)?;
    let validated = validate(&next).map_err(|errors| describe_errors(&errors))?;
    let server = validated
        .config
        .server(form.name.trim())
        .cloned()
        .ok_or("the server is disabled or missing after validation")?;
    let c = broker
        .upstream()
        .classify(&server)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ProbeDto {
        flow: c
            .flow
            .map(flow_name)
            .unwrap_or("needs your choice")
            .to_string(),
        evidence: applied.into_iter().chain(c.evidence).collect(),
        choices: c
            .choices
            .into_iter()
            .map(|f| flow_name(f).to_string())
            .collect(),
    })
}

/// Validates the whole config with the change first, then stores typed secrets in the keychain,
/// then writes the file. An invalid form changes nothing.
#[tauri::command]
pub async fn save_server(
    app: AppHandle,
    shell: State<'_, Shell>,
    form: ServerForm,
    original: Option<String>,
) -> CmdResult<Option<String>> {
    let broker = broker(&shell)?;
    let base = file::read(&broker.settings().config_path)
        .map_err(|e| e.to_string())?
        .raw;
    let port = broker.settings().port;
    let (next, pending, applied) = candidate(&base, &form, original.as_deref(), port)?;
    validate(&next).map_err(|errors| describe_errors(&errors))?;
    for secret in pending {
        broker
            .vault()
            .set(&secret.entry, secret.value)
            .await
            .map_err(|e| e.to_string())?;
    }
    broker
        .edit_config(|raw| {
            if let Ok((edited, _, _)) = candidate(raw, &form, original.as_deref(), port) {
                *raw = edited;
            }
        })
        .await
        .map_err(|e| e.to_string())?;
    super::refresh_ui(&app);
    Ok(applied)
}

/// Signs out (deleting its tokens), removes the entry and deletes keychain secrets the app stored
/// for it.
#[tauri::command]
pub async fn remove_server(app: AppHandle, shell: State<'_, Shell>, name: String) -> CmdResult<()> {
    let broker = broker(&shell)?;
    let server = broker.server(&name).map_err(|e| e.to_string())?;
    if let Err(e) = broker.upstream().sign_out(&server).await {
        tracing::warn!("removing {name}: sign-out failed: {e}");
    }
    broker
        .edit_config(|raw| drop(raw.mcp_servers.remove(&name)))
        .await
        .map_err(|e| e.to_string())?;
    for field in ["client_secret", "auth_value"] {
        if let SecretRef::Keychain(entry) = SecretRef::keychain_for(&name, field) {
            let _ = broker.vault().delete(&entry).await;
        }
    }
    super::refresh_ui(&app);
    Ok(())
}

#[tauri::command]
pub async fn sign_in(
    app: AppHandle,
    shell: State<'_, Shell>,
    name: String,
    device: Option<bool>,
) -> CmdResult<String> {
    let kind = match device {
        Some(true) => SignInKind::Device,
        _ => SignInKind::Browser,
    };
    super::actions::sign_in(&app, &broker(&shell)?, &name, kind).await
}

#[tauri::command]
pub async fn sign_out(app: AppHandle, shell: State<'_, Shell>, name: String) -> CmdResult<()> {
    super::actions::sign_out(&app, &broker(&shell)?, &name).await
}

#[tauri::command]
pub fn check_now(shell: State<'_, Shell>, name: String) -> CmdResult<()> {
    let name = ServerName::parse(&name).map_err(|why| format!("no such server: the name {why}"))?;
    broker(&shell)?.health().check_now(&name);
    Ok(())
}

/// Copies a snippet to the clipboard on the Rust side (the webview gets no clipboard access) and
/// returns the text that was copied, so the window can show it.
#[tauri::command]
pub fn copy_snippet(
    app: AppHandle,
    shell: State<'_, Shell>,
    name: String,
    kind: SnippetKind,
) -> CmdResult<String> {
    super::actions::copy_snippet(&app, &broker(&shell)?, &name, kind)
}

/// Copies a `private_key_jwt` server's public key (JWK Set) and returns its thumbprint.
#[tauri::command]
pub async fn copy_public_key(
    app: AppHandle,
    shell: State<'_, Shell>,
    name: String,
) -> CmdResult<String> {
    super::actions::copy_public_key(&app, &broker(&shell)?, &name).await
}

#[tauri::command]
pub fn activity(shell: State<'_, Shell>) -> Vec<ActivityDto> {
    lock(&shell.activity).list()
}

/// Registered local OAuth clients and API keys.
#[tauri::command]
pub fn local_clients(shell: State<'_, Shell>) -> CmdResult<Vec<LocalClientDto>> {
    let broker = broker(&shell)?;
    Ok(local_clients_dto(
        broker.issuer().list_clients(),
        broker.issuer().list_api_keys(),
    ))
}

/// Revokes a local client (its registration, consents and tokens) or an API key.
#[tauri::command]
pub fn revoke_local_client(
    app: AppHandle,
    shell: State<'_, Shell>,
    id: String,
    kind: String,
) -> CmdResult<()> {
    let broker = broker(&shell)?;
    let issuer = broker.issuer();
    let found = match kind.as_str() {
        "api_key" => issuer.revoke_api_key(&id),
        _ => issuer.revoke_client(&id),
    }
    .map_err(|e| e.to_string())?;
    if !found {
        return Err(format!(
            "no local client or API key \"{id}\" (already revoked?)"
        ));
    }
    super::refresh_ui(&app);
    Ok(())
}

#[tauri::command]
pub fn set_autostart(app: AppHandle, enabled: bool) -> CmdResult<bool> {
    super::actions::set_autostart(&app, enabled)
}

#[tauri::command]
pub fn quit(app: AppHandle) {
    super::actions::quit(&app);
}

/// Shows the dashboard; used by the tray and a second launch.
pub fn show_dashboard(app: &AppHandle) {
    match app.get_webview_window(super::MAIN_WINDOW) {
        Some(w) => {
            let _ = w.show();
            let _ = w.unminimize();
            let _ = w.set_focus();
        }
        None => {
            if let Err(e) = super::create_window(app) {
                tracing::error!("cannot open the dashboard window: {e}");
            }
        }
    }
}
