//! The tray icon and its menu, built from [`TrayModel`] and rebuilt when state changes.

use tauri::image::Image;
use tauri::menu::{
    CheckMenuItem, Menu, MenuBuilder, MenuItem, PredefinedMenuItem, Submenu, SubmenuBuilder,
};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Wry};

use super::model::{AggregateMenu, MenuAction, Overall, SnippetKind, TrayModel};

pub const TRAY_ID: &str = "main";

fn icon(overall: Overall) -> tauri::Result<Image<'static>> {
    let bytes: &[u8] = match overall {
        Overall::Ok => include_bytes!("../../icons/tray-ok.png"),
        Overall::Attention => include_bytes!("../../icons/tray-attention.png"),
        Overall::Error => include_bytes!("../../icons/tray-error.png"),
    };
    Image::from_bytes(bytes)
}

fn item(
    app: &AppHandle,
    action: MenuAction,
    text: &str,
    enabled: bool,
) -> tauri::Result<MenuItem<Wry>> {
    MenuItem::with_id(app, action.id(), text, enabled, None::<&str>)
}

fn server_submenu(app: &AppHandle, s: &super::model::ServerMenu) -> tauri::Result<Submenu<Wry>> {
    let n = || s.name.clone();
    let mut sub = SubmenuBuilder::new(app, &s.label);
    if let Some(line) = &s.device {
        // Information only, like the protocol line: what to confirm, and where.
        let id = format!("info:device:{}", s.name);
        sub = sub
            .item(&MenuItem::with_id(app, id, line, false, None::<&str>)?)
            .separator();
    }
    if let Some(protocol) = &s.protocol {
        // Information only: disabled, and its id parses to no action.
        let id = format!("info:protocol:{}", s.name);
        sub = sub
            .item(&MenuItem::with_id(app, id, protocol, false, None::<&str>)?)
            .separator();
    }
    sub.item(&item(
        app,
        MenuAction::SignIn(n()),
        s.sign_in_label,
        s.can_sign_in,
    )?)
    .item(&item(
        app,
        MenuAction::SignOut(n()),
        "Sign out",
        s.can_sign_out,
    )?)
    .item(&item(app, MenuAction::CheckNow(n()), "Check now", true)?)
    .separator()
    .item(&item(
        app,
        MenuAction::Copy(n(), SnippetKind::Url),
        "Copy URL",
        true,
    )?)
    .item(&item(
        app,
        MenuAction::Copy(n(), SnippetKind::Claude),
        "Copy `claude mcp add` command",
        true,
    )?)
    .item(&item(
        app,
        MenuAction::Copy(n(), SnippetKind::Cursor),
        "Copy Cursor config",
        true,
    )?)
    .item(&item(
        app,
        MenuAction::Copy(n(), SnippetKind::Vscode),
        "Copy VS Code config",
        true,
    )?)
    .build()
}

fn aggregate_submenu(app: &AppHandle, a: &AggregateMenu) -> tauri::Result<Submenu<Wry>> {
    let mut sub = SubmenuBuilder::new(app, &a.label);
    for (i, line) in a.unusable.iter().enumerate() {
        let shown: String = line.chars().take(90).collect();
        sub = sub.item(&MenuItem::with_id(
            app,
            format!("agg:why:{i}"),
            shown,
            false,
            None::<&str>,
        )?);
    }
    let copy = |kind| MenuAction::Copy(crate::aggregate::AUDIENCE.to_string(), kind);
    sub.item(&item(app, copy(SnippetKind::Url), "Copy client URL", true)?)
        .item(&item(
            app,
            copy(SnippetKind::Claude),
            "Copy `claude mcp add` command",
            true,
        )?)
        .build()
}

pub fn menu(app: &AppHandle, model: &TrayModel) -> tauri::Result<Menu<Wry>> {
    let mut builder = MenuBuilder::new(app);
    if model.servers.is_empty() {
        builder = builder.item(&MenuItem::with_id(
            app,
            "none",
            "No servers yet — add one in the dashboard",
            false,
            None::<&str>,
        )?);
    }
    for s in &model.servers {
        builder = builder.item(&server_submenu(app, s)?);
    }
    if let Some(label) = &model.company {
        builder = builder
            .item(&PredefinedMenuItem::separator(app)?)
            .item(&item(app, MenuAction::SignInCompany, label, true)?);
    }
    if let Some(a) = &model.aggregate {
        builder = builder
            .item(&PredefinedMenuItem::separator(app)?)
            .item(&aggregate_submenu(app, a)?);
    }
    let autostart = CheckMenuItem::with_id(
        app,
        MenuAction::ToggleAutostart.id(),
        "Start at login",
        true,
        model.autostart,
        None::<&str>,
    )?;
    builder
        .item(&PredefinedMenuItem::separator(app)?)
        .item(&item(
            app,
            MenuAction::OpenDashboard,
            "Open dashboard",
            true,
        )?)
        .item(&autostart)
        .item(&PredefinedMenuItem::separator(app)?)
        .item(&item(app, MenuAction::Quit, "Quit", true)?)
        .build()
}

/// Creates the tray icon. Without a tray host (some Linux desktops) it is simply invisible.
pub fn install(app: &AppHandle, model: &TrayModel) -> tauri::Result<TrayIcon<Wry>> {
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(model.overall)?)
        .tooltip(model.overall.tooltip())
        .menu(&menu(app, model)?)
        .on_menu_event(|app, event| super::on_menu_action(app, event.id().as_ref()))
        .build(app)
}

/// Replaces the icon, tooltip and menu (on the main thread, as GTK requires).
pub fn update(app: &AppHandle, model: TrayModel) {
    let handle = app.clone();
    let _ = app.run_on_main_thread(move || {
        let Some(tray) = handle.tray_by_id(TRAY_ID) else {
            return;
        };
        let result = (|| {
            tray.set_icon(Some(icon(model.overall)?))?;
            tray.set_tooltip(Some(model.overall.tooltip()))?;
            tray.set_menu(Some(menu(&handle, &model)?))
        })();
        if let Err(e) = result {
            tracing::warn!("tray update failed: {e}");
        }
    });
}
