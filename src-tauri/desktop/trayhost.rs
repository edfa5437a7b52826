//! Is there anything to show a tray icon? On Linux the icon is an AppIndicator
//! (StatusNotifierItem); without a StatusNotifier host it is silently invisible, so the app
//! opens its window and says how to get the tray.

/// The hint to show when no tray host was found; `None` when the tray can be seen.
pub fn hint() -> Option<String> {
    if has_tray_host() {
        None
    } else {
        Some(HINT.to_string())
    }
}

pub const HINT: &str = "No system tray host was found, so the tray icon may be invisible. \
Install a StatusNotifier/AppIndicator host to get it — on GNOME the \"AppIndicator and \
KStatusNotifierItem Support\" extension (Debian/Ubuntu: gnome-shell-extension-appindicator); \
KDE, Xfce (xfce4-statusnotifier-plugin) and most panels have one built in. Until then this \
window is your tray: closing it keeps the broker running, and launching the app again brings \
the window back.";

#[cfg(target_os = "linux")]
fn has_tray_host() -> bool {
    use gio::glib::{ToVariant, VariantTy};
    let Ok(bus) = gio::bus_get_sync(gio::BusType::Session, None::<&gio::Cancellable>) else {
        return false;
    };
    let reply = bus.call_sync(
        Some("org.freedesktop.DBus"),
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "NameHasOwner",
        Some(&("org.kde.StatusNotifierWatcher",).to_variant()),
        VariantTy::new("(b)").ok(),
        gio::DBusCallFlags::NONE,
        2000,
        None::<&gio::Cancellable>,
    );
    matches!(reply.ok().and_then(|v| v.get::<(bool,)>()), Some((true,)))
}

#[cfg(not(target_os = "linux"))]
fn has_tray_host() -> bool {
    true
}
