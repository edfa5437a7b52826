//! The desktop shell: tray, dashboard window, notifications.
//!
//! Architecture Invariant: only `desktop` imports tauri. The shell starts the same core as
//! `serve` ([`crate::startup::start`]) on Tauri's async runtime and only *reads* broker state
//! through channels (status watch, config watch, event broadcast): nothing polls.

mod actions;
mod commands;
pub mod dto;
pub mod feed;
mod firstrun;
mod form;
pub mod handoff;
pub mod model;
mod tray;
mod trayhost;
pub mod webkit;

use std::process::ExitCode;
use std::sync::Mutex;

use tauri::{AppHandle, Emitter, Manager, RunEvent, WebviewUrl, WebviewWindowBuilder, WindowEvent};
use tokio::sync::broadcast::error::RecvError;

use crate::broker::Broker;
use crate::clock::unix_now;
use crate::opener::Opener;
use crate::startup::{self, exit, Core, Paths};
use crate::sync::lock;
use crate::upstream::enterprise::session::CompanySession;
use crate::upstream::SignInKind;
use feed::{Activity, Notifier};
use model::{tray_model, MenuAction};

pub const MAIN_WINDOW: &str = "main";
/// The event the dashboard listens to; it then re-reads what it shows.
pub const STATE_CHANGED: &str = "state-changed";

/// Why the core did not start: shown in the window, then the app exits with `code`.
pub struct StartFailure {
    pub message: String,
    pub code: u8,
}

/// State the commands share (Tauri-managed).
pub struct Shell {
    /// `None` when the core failed to start.
    broker: Option<Broker>,
    start_error: Option<StartFailure>,
    tray_hint: Option<String>,
    activity: Mutex<Activity>,
    /// What the tray shows now, so unchanged state does not rebuild (and close) its menu.
    tray_shown: Mutex<Option<model::TrayModel>>,
    /// The company session as last read (the watchers read it after each change), for the
    /// tray's company entry.
    company: Mutex<Option<CompanySession>>,
}

pub fn run(paths: Paths) -> ExitCode {
    // First: it sets environment variables, so no other thread (the log writer's) may exist yet.
    webkit::keep_gl_out_of_the_app();
    let _log = crate::logging::init(Some(&crate::logging::default_log_dir()), "info");
    let app = builder()
        .setup(move |app| {
            setup(app.handle(), &paths);
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: cannot start the desktop shell: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let code = app.run_return(on_run_event);
    ExitCode::from(u8::try_from(code).unwrap_or(exit::FAILURE))
}

/// The shell's plugins and the dashboard's commands.
fn builder() -> tauri::Builder<tauri::Wry> {
    tauri::Builder::default()
        // First, so a second launch hands over to the running app before doing anything else.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            commands::show_dashboard(app)
        }))
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            None,
        ))
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_clipboard_manager::init())
        .invoke_handler(tauri::generate_handler![
            commands::app_status,
            commands::list_servers,
            commands::aggregate_setup,
            commands::server_form,
            commands::probe_server,
            commands::save_server,
            commands::remove_server,
            commands::sign_in,
            commands::sign_out,
            commands::check_now,
            commands::copy_snippet,
            commands::copy_public_key,
            commands::activity,
            commands::local_clients,
            commands::revoke_local_client,
            commands::set_autostart,
            commands::quit,
            firstrun::first_run,
            firstrun::import_client_servers,
            firstrun::connect_client,
            firstrun::undo_client_change,
            firstrun::finish_first_run,
        ])
}

/// The app's life: it stays in the tray when its window closes, and flushes the broker at exit.
fn on_run_event(app: &AppHandle, event: RunEvent) {
    match event {
        // Closing the last window keeps the app in the tray; only Quit (an explicit code) exits.
        RunEvent::ExitRequested {
            code: None, api, ..
        } => api.prevent_exit(),
        // Closing the window destroys it and its webview (an idle tray app keeps no WebKit
        // processes); "Open dashboard" builds it again (`commands::show_dashboard`).
        RunEvent::WindowEvent {
            label,
            event: WindowEvent::CloseRequested { .. },
            ..
        } if label == MAIN_WINDOW => {
            if let Some(code) = app.state::<Shell>().start_error.as_ref().map(|f| f.code) {
                app.exit(i32::from(code));
            }
        }
        RunEvent::WindowEvent {
            label,
            event: WindowEvent::Destroyed,
            ..
        } if label == MAIN_WINDOW => webkit::release_after_close(app),
        RunEvent::Exit => {
            if let Some(broker) = app.state::<Shell>().broker.clone() {
                broker.shutdown();
                tauri::async_runtime::block_on(broker.flush_secrets());
            }
        }
        _ => {}
    }
}

/// Starts the core (after the single-instance check), the tray, the watchers and the window.
fn setup(app: &AppHandle, paths: &Paths) {
    let tray_hint = trayhost::hint();
    let started = tauri::async_runtime::block_on(startup::start(paths, Opener::System));
    let (broker, start_error) = match started {
        Ok(Core { broker, gateway }) => {
            let handle = app.clone();
            tauri::async_runtime::spawn(async move {
                if let Ok(Err(e)) = gateway.await {
                    tracing::error!("the gateway stopped: {e}");
                    handle.exit(i32::from(exit::FAILURE));
                }
            });
            (Some(broker), None)
        }
        Err(e) => {
            eprintln!("error: {e}");
            tracing::error!("cannot start: {e}");
            (
                None,
                Some(StartFailure {
                    message: e.to_string(),
                    code: e.exit_code(),
                }),
            )
        }
    };
    let show_window = start_error.is_some() || tray_hint.is_some();
    app.manage(Shell {
        broker: broker.clone(),
        start_error,
        tray_hint,
        activity: Mutex::new(Activity::default()),
        tray_shown: Mutex::new(None),
        company: Mutex::new(None),
    });
    if let Some(broker) = broker {
        let model = tray_model(
            &broker.config(),
            &broker.health().snapshot(),
            actions::autostart_enabled(app),
        );
        match tray::install(app, &model) {
            Ok(_) => *lock(&app.state::<Shell>().tray_shown) = Some(model),
            Err(e) => tracing::warn!("no tray icon: {e}"),
        }
        spawn_watchers(app, &broker);
    }
    if show_window {
        commands::show_dashboard(app);
    }
}

pub(crate) fn create_window(app: &AppHandle) -> tauri::Result<()> {
    WebviewWindowBuilder::new(app, MAIN_WINDOW, WebviewUrl::App("index.html".into()))
        .title("MCP Auth Broker")
        .inner_size(1040.0, 720.0)
        .min_inner_size(640.0, 420.0)
        .build()
        .map(|_| ())
}

/// Tells the dashboard to re-read what it shows.
pub(crate) fn refresh_ui(app: &AppHandle) {
    let _ = app.emit_to(MAIN_WINDOW, STATE_CHANGED, ());
}

/// Rebuilds the tray only when what it shows changed: replacing the menu closes it if open.
pub(crate) fn refresh_tray(app: &AppHandle) {
    let shell = app.state::<Shell>();
    let Some(broker) = shell.broker.clone() else {
        return;
    };
    let mut model = tray_model(
        &broker.config(),
        &broker.health().snapshot(),
        actions::autostart_enabled(app),
    );
    for s in &mut model.servers {
        let name = crate::config::ServerName::parse(&s.name).ok();
        let code = name.and_then(|n| broker.upstream().device_code(&n));
        s.device = code.as_ref().map(model::device_line);
    }
    if let Some(company) = &broker.config().enterprise {
        let session = lock(&shell.company).clone();
        let line = model::company_line(&company.name, session.as_ref(), unix_now());
        model.company = Some(line);
    }
    let mut shown = lock(&shell.tray_shown);
    if shown.as_ref() != Some(&model) {
        *shown = Some(model.clone());
        tray::update(app, model);
    }
}

/// Follows status, config and events; rebuilds the tray, records activity, notifies, and tells
/// the window. Stops with the broker.
fn spawn_watchers(app: &AppHandle, broker: &Broker) {
    let (app, broker) = (app.clone(), broker.clone());
    tauri::async_runtime::spawn(async move {
        let mut status = broker.status();
        let mut config = broker.subscribe_config();
        let mut events = broker.events();
        let stop = broker.shutdown_token();
        let mut notifier = Notifier::default();
        notifier.on_status(&status.borrow_and_update());
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                changed = status.changed() => {
                    if changed.is_err() { break; }
                    let snapshot = status.borrow_and_update().clone();
                    for notice in notifier.on_status(&snapshot) {
                        actions::notify(&app, &notice);
                    }
                }
                changed = config.changed() => {
                    if changed.is_err() { break; }
                    config.borrow_and_update();
                }
                event = events.recv() => match event {
                    Ok(event) => {
                        lock(&app.state::<Shell>().activity).record(&event, unix_now());
                        if let Some(notice) = notifier.on_event(&event) {
                            actions::notify(&app, &notice);
                        }
                    }
                    Err(RecvError::Lagged(n)) => tracing::warn!("desktop missed {n} events"),
                    Err(RecvError::Closed) => break,
                },
            }
            read_company_session(&app, &broker).await;
            refresh_tray(&app);
            refresh_ui(&app);
        }
    });
}

/// Reads the company session (from the vault's cache after the first read) for the tray.
async fn read_company_session(app: &AppHandle, broker: &Broker) {
    let Some(company) = broker.config().enterprise.clone() else {
        return;
    };
    let session = broker.upstream().company_session(&company).await;
    *lock(&app.state::<Shell>().company) = Some(session);
}

/// A tray menu click.
fn on_menu_action(app: &AppHandle, id: &str) {
    let Some(action) = MenuAction::parse(id) else {
        return;
    };
    let Some(broker) = app.state::<Shell>().broker.clone() else {
        return;
    };
    let app = app.clone();
    match action {
        MenuAction::OpenDashboard => commands::show_dashboard(&app),
        MenuAction::Quit => actions::quit(&app),
        MenuAction::ToggleAutostart => {
            let want = !actions::autostart_enabled(&app);
            notify_failure(&app, "Start at login", actions::set_autostart(&app, want));
        }
        MenuAction::Copy(name, kind) => {
            let copied = actions::copy_snippet(&app, &broker, &name, kind);
            notify_failure(&app, "Copy failed", copied);
        }
        MenuAction::CheckNow(name) => {
            if let Ok(server) = broker.server(&name) {
                broker.health().check_now(&server.name);
            }
        }
        MenuAction::SignIn(name) => {
            tauri::async_runtime::spawn(async move {
                let signed = actions::sign_in(&app, &broker, &name, SignInKind::Browser).await;
                notify_failure(&app, &format!("Sign-in to {name} failed"), signed);
            });
        }
        MenuAction::SignInCompany => {
            tauri::async_runtime::spawn(async move {
                let signed = actions::sign_in_company(&app, &broker).await;
                notify_failure(&app, "Company sign-in failed", signed);
            });
        }
        MenuAction::SignOut(name) => {
            tauri::async_runtime::spawn(async move {
                let out = actions::sign_out(&app, &broker, &name).await;
                notify_failure(&app, &format!("Sign-out of {name} failed"), out);
            });
        }
    }
}

/// A tray action's failure as a notification titled `title` (its words as the body).
fn notify_failure<T>(app: &AppHandle, title: &str, result: Result<T, String>) {
    if let Err(body) = result {
        let title = title.to_string();
        actions::notify(app, &feed::Notice { title, body });
    }
}
