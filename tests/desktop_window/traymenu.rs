//! The app's real tray menu as a tray host sees it: on Linux the tray icon's menu is exported on
//! the session bus (`com.canonical.dbusmenu`, by libayatana-appindicator), with or without a
//! tray host running. A test reads its entries and clicks one the way a StatusNotifier host does
//! when the person clicks it — no tray host, no pixel positions.

use std::sync::OnceLock;
use std::time::Duration;

use dbus::arg::{RefArg, Variant};
use dbus::blocking::Connection;

use super::driver::UI_DEADLINE;

const DBUS: &str = "org.freedesktop.DBus";
const MENU: &str = "com.canonical.dbusmenu";
/// Where appindicator exports its items; the menu is `<item>/Menu`.
const ITEMS: &str = "/org/ayatana/NotificationItem";
const CALL_WAIT: Duration = Duration::from_secs(5);
/// One of the app's bus connections answers no method calls (no main loop serves it): asking
/// it costs this much, once, before the menu's connection is known.
const LOOK_WAIT: Duration = Duration::from_secs(1);

/// One top-level menu entry (a server's submenu, the company entry, Open dashboard, …).
#[derive(Debug, Clone)]
pub struct Entry {
    id: i32,
    pub label: String,
    pub enabled: bool,
}

/// The tray menu of the app process `pid`, on the test's session bus.
pub struct TrayMenu {
    conn: Connection,
    pid: u32,
    /// The menu's bus name and object path, once found (they stay for the app's life).
    found: OnceLock<(String, String)>,
}

impl TrayMenu {
    pub fn of(pid: u32) -> TrayMenu {
        let conn = Connection::new_session().expect("the test session's D-Bus");
        TrayMenu {
            conn,
            pid,
            found: OnceLock::new(),
        }
    }

    /// The bus name and object path of the app's menu, once the app has exported it.
    fn find(&self) -> Option<(String, String)> {
        if let Some(found) = self.found.get() {
            return Some(found.clone());
        }
        let found = self.look()?;
        Some(self.found.get_or_init(|| found).clone())
    }

    fn look(&self) -> Option<(String, String)> {
        let bus = self
            .conn
            .with_proxy(DBUS, "/org/freedesktop/DBus", CALL_WAIT);
        let (names,): (Vec<String>,) = bus.method_call(DBUS, "ListNames", ()).ok()?;
        names
            .into_iter()
            .filter(|n| n.starts_with(':'))
            .find_map(|name| {
                let (pid,): (u32,) = bus
                    .method_call(DBUS, "GetConnectionUnixProcessID", (&name,))
                    .ok()?;
                if pid != self.pid {
                    return None;
                }
                let node = self.conn.with_proxy(&name, ITEMS, LOOK_WAIT);
                let (xml,): (String,) = node
                    .method_call("org.freedesktop.DBus.Introspectable", "Introspect", ())
                    .ok()?;
                let at = xml.find("<node name=\"")? + "<node name=\"".len();
                let item = &xml[at..at + xml[at..].find('"')?];
                Some((name, format!("{ITEMS}/{item}/Menu")))
            })
    }

    /// The menu's top-level entries now (separators left out), or `None` before it exists.
    pub fn entries(&self) -> Option<Vec<Entry>> {
        let (name, path) = self.find()?;
        let menu = self.conn.with_proxy(name, path, CALL_WAIT);
        type Layout = (
            u32,
            (i32, dbus::arg::PropMap, Vec<Variant<Box<dyn RefArg>>>),
        );
        let props = vec!["label", "enabled", "type"];
        let (_revision, (_root, _, children)): Layout = menu
            .method_call(MENU, "GetLayout", (0i32, 1i32, props))
            .ok()?;
        Some(children.iter().filter_map(|c| entry(&*c.0)).collect())
    }

    /// Waits until the menu's entries satisfy `ok` (the menu is rebuilt on every state change;
    /// nothing announces it across processes, so this polls like `driver::wait_text`).
    pub async fn wait(&self, what: &str, ok: impl Fn(&[Entry]) -> bool) -> Vec<Entry> {
        let deadline = tokio::time::Instant::now() + UI_DEADLINE;
        loop {
            let now = self.entries();
            if let Some(entries) = now.as_ref().filter(|e| ok(e)) {
                return entries.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for the tray menu to show {what}; it shows {now:?}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Clicks the entry labelled `label`, as a tray host does when the person clicks it.
    pub async fn click(&self, label: &str) {
        let entries = self
            .wait(label, |e| e.iter().any(|e| e.label == label))
            .await;
        let entry = entries.iter().find(|e| e.label == label).unwrap();
        assert!(entry.enabled, "{label} is disabled");
        let (name, path) = self.find().expect("the tray menu");
        let menu = self.conn.with_proxy(name, path, CALL_WAIT);
        let clicked: Result<(), _> =
            menu.method_call(MENU, "Event", (entry.id, "clicked", Variant(0i32), 0u32));
        clicked.unwrap_or_else(|e| panic!("clicking {label}: {e}"));
    }
}

/// One `(ia{sv}av)` layout item: its id and properties (a missing `enabled` means enabled).
fn entry(item: &dyn RefArg) -> Option<Entry> {
    let mut fields = item.as_iter()?;
    let id = i32::try_from(fields.next()?.as_i64()?).ok()?;
    let mut props = fields.next()?.as_iter()?;
    let (mut label, mut enabled, mut separator) = (String::new(), true, false);
    while let (Some(key), Some(value)) = (props.next(), props.next()) {
        match key.as_str()? {
            "label" => label = value.as_str()?.to_string(),
            "enabled" => enabled = value.as_i64()? != 0,
            "type" => separator = value.as_str() == Some("separator"),
            _ => {}
        }
    }
    (!separator).then_some(Entry { id, label, enabled })
}
