//! What the dashboard's webview leaves running on Linux, ended once its window is closed.
//!
//! WebKitGTK runs the page in a WebKitWebProcess, which exits with its webview, and the web
//! context's loads and storage in one WebKitNetworkProcess, which does not: WebKit keeps it while
//! the context lives (wry#590), and Tauri keeps the context for the app's lifetime on Linux
//! (tauri#14626, so that reopening does not start a second one). For a tray app whose window is
//! open minutes a day that is tens of MB held all day. WebKit starts a network process again when
//! a webview next needs one, so once the window's web process has exited, this ends the idle one
//! (the Ulauncher approach); the next open pays a process start, not a leak.
//!
//! The app process itself would keep the GL driver for good once loaded (Mesa's llvmpipe alone
//! is ~45 MB under Xvfb, and a driver cannot be unloaded): GTK loads it when it opens the display
//! and WebKit when it starts its first web process. [`keep_gl_out_of_the_app`] tells both not to,
//! before GTK starts; the page is painted in the web process as before and reaches the window in
//! shared memory instead of a DMA-BUF, which a dashboard of forms and tables does not notice.
//! What the window touched in the app (WebKit and JavaScriptCore's pages, freed heap) is clean
//! file pages the kernel would drop first under memory pressure; after the close they are asked
//! to go now (`MADV_PAGEOUT`, Linux 5.4+; pages the tray and broker use come straight back from
//! the page cache) and the heap's free pages go back (`malloc_trim`).

use std::path::PathBuf;

use tauri::{AppHandle, Manager};

/// What the app sets so that its own process never loads a GL driver: GTK's GL (GLX at display
/// open) off, WebKit's DMA-BUF renderer off (its check opens an EGL display in the app process)
/// and the render node named, so WebKit does not open an EGL display to ask for it. The page is
/// still painted by the web process (which loads GL itself and exits with the window).
pub const NO_GL_IN_APP: [&str; 3] = [
    "GDK_GL",
    "WEBKIT_DISABLE_DMABUF_RENDERER",
    "WEBKIT_WEB_RENDER_DEVICE_FILE",
];

/// Variables a person sets to steer GTK's or WebKit's rendering: when any is set, the app leaves
/// rendering as they chose (setting `WEBKIT_DISABLE_DMABUF_RENDERER=0` is the way to opt out).
const RENDERING_OVERRIDES: [&str; 7] = [
    "GDK_GL",
    "WEBKIT_DISABLE_DMABUF_RENDERER",
    "WEBKIT_WEB_RENDER_DEVICE_FILE",
    "WEBKIT_DMABUF_RENDERER_FORCE_SHM",
    "WEBKIT_FORCE_DMABUF_RENDERER",
    "WEBKIT_DISABLE_COMPOSITING_MODE",
    "WEBKIT_FORCE_COMPOSITING_MODE",
];

/// The value of `WEBKIT_WEB_RENDER_DEVICE_FILE` on a machine without a render node: WebKit only
/// compares it with the DRM nodes it finds, so a name that is none of them means "no device",
/// which is what its own EGL query would have answered there.
const NO_RENDER_NODE: &str = "none";

/// The variables to set (pure): none when the person set any rendering variable, else
/// [`NO_GL_IN_APP`] with the first render node (`/dev/dri/renderD*`, what WebKit would find on
/// a one-GPU machine; it is used only by WebGL, which the dashboard does not use).
pub fn no_gl_settings(
    is_set: impl Fn(&str) -> bool,
    mut render_nodes: Vec<PathBuf>,
) -> Vec<(&'static str, String)> {
    if RENDERING_OVERRIDES.iter().any(|name| is_set(name)) {
        return Vec::new();
    }
    render_nodes.sort();
    let node = render_nodes
        .first()
        .map_or_else(|| NO_RENDER_NODE.to_string(), |p| p.display().to_string());
    let values = ["disable".to_string(), "1".to_string(), node];
    NO_GL_IN_APP.into_iter().zip(values).collect()
}

/// Keeps the GL driver out of the app process for its whole life (Mesa's llvmpipe alone is
/// ~45 MiB that stays mapped once loaded). Must run before GTK starts and before any other
/// thread exists: it sets environment variables, which GTK and WebKit read once.
#[cfg(target_os = "linux")]
pub fn keep_gl_out_of_the_app() {
    let nodes = std::fs::read_dir("/dev/dri")
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("renderD"))
                })
                .collect()
        })
        .unwrap_or_default();
    let is_set = |name: &str| std::env::var_os(name).is_some();
    for (name, value) in no_gl_settings(is_set, nodes) {
        // The process is still single-threaded here (see the caller), so nothing reads the
        // environment while it changes.
        std::env::set_var(name, value);
    }
}

#[cfg(not(target_os = "linux"))]
pub fn keep_gl_out_of_the_app() {}

/// The process names WebKitGTK gives the page's and the context's helper processes.
pub const WEB_PROCESS: &str = "WebKitWebProcess";
pub const NETWORK_PROCESS: &str = "WebKitNetworkProcess";

/// After the dashboard window was destroyed: waits (off the main thread) for this app's web
/// processes to exit, then, if no dashboard was opened meanwhile, ends its network process.
#[cfg(target_os = "linux")]
pub fn release_after_close(app: &AppHandle) {
    let app = app.clone();
    let spawned = std::thread::Builder::new()
        .name("webkit-release".into())
        .spawn(move || {
            let me = std::process::id();
            for pid in children(me, WEB_PROCESS) {
                wait_exit(pid, std::time::Duration::from_secs(10));
            }
            let handle = app.clone();
            let (ended_tx, ended) = std::sync::mpsc::channel();
            // On the main thread, where windows are created: a dashboard opened meanwhile uses
            // this network process and keeps it.
            let _ = handle.run_on_main_thread(move || {
                if app.get_webview_window(super::MAIN_WINDOW).is_some() {
                    return;
                }
                let pids = children(me, NETWORK_PROCESS);
                for &pid in &pids {
                    // SAFETY: plain syscall on a child process of ours, found by its parent pid.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                    tracing::debug!("ended the idle WebKit network process {pid}");
                }
                let _ = ended_tx.send(pids);
            });
            // Back on this thread: a page still mapped by a WebKit process is shared, and the
            // kernel pages out only pages this process alone maps, so trim once they are gone.
            if let Ok(pids) = ended.recv() {
                for pid in pids {
                    wait_exit(pid, std::time::Duration::from_secs(10));
                }
                trim_resident();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot release the WebKit processes: {e}");
    }
}

#[cfg(not(target_os = "linux"))]
pub fn release_after_close(_app: &AppHandle) {}

/// Gives back what the closed window left resident: file-backed pages (libraries, the binary)
/// are paged out, to be read again from the page cache where still used, and free heap pages
/// are returned.
#[cfg(target_os = "linux")]
fn trim_resident() {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    for (start, len) in maps.lines().filter_map(file_mapping) {
        // SAFETY: a range of our own mappings, as the kernel listed it; MADV_PAGEOUT only drops
        // or writes back pages (their contents stay), so it is safe on any mapping.
        unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_PAGEOUT) };
    }
    // SAFETY: glibc's malloc_trim takes a pad size and only releases free memory.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0)
    };
}

/// `(start, length)` of a `/proc/self/maps` line that maps a file (`… inode path`, inode ≠ 0).
#[cfg(target_os = "linux")]
fn file_mapping(line: &str) -> Option<(usize, usize)> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let inode = fields.nth(3)?;
    let path = fields.next()?;
    if inode == "0" || !path.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    Some((start, end.checked_sub(start)?))
}

/// Child processes of `parent` whose command name is `name` (as the kernel keeps it: the first
/// 15 bytes), from `/proc/PID/stat`.
#[cfg(target_os = "linux")]
pub fn children(parent: u32, name: &str) -> Vec<i32> {
    let comm = name.get(..15).unwrap_or(name);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            parse_stat(&stat) == Some((comm, parent))
        })
        .collect()
}

/// `(command name, parent pid)` of a `/proc/PID/stat` line: `pid (comm) state ppid …`, where
/// the name may itself hold spaces and parentheses.
#[cfg(target_os = "linux")]
fn parse_stat(stat: &str) -> Option<(&str, u32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let ppid = rest.nth(1)?.parse().ok()?;
    Some((comm, ppid))
}

/// Blocks until `pid` exits or `limit` passes: a pidfd becomes readable at exit (Linux 5.3+),
/// so nothing polls; a process already gone returns at once.
#[cfg(target_os = "linux")]
pub fn wait_exit(pid: i32, limit: std::time::Duration) {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let Ok(raw) = i32::try_from(raw) else { return };
    if raw < 0 {
        return;
    }
    // SAFETY: `raw` is a descriptor we own from here on (closed on drop).
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut poll = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = i32::try_from(limit.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut poll, 1, millis) };
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn no_gl_settings_name_the_first_render_node_and_disable_gl_in_the_app() {
        let nodes = vec![
            PathBuf::from("/dev/dri/renderD129"),
            PathBuf::from("/dev/dri/renderD128"),
        ];
        let set = no_gl_settings(|_| false, nodes);
        assert_eq!(
            set,
            vec![
                ("GDK_GL", "disable".to_string()),
                ("WEBKIT_DISABLE_DMABUF_RENDERER", "1".to_string()),
                (
                    "WEBKIT_WEB_RENDER_DEVICE_FILE",
                    "/dev/dri/renderD128".to_string()
                ),
            ]
        );
    }

    #[test]
    fn no_gl_settings_without_a_render_node_name_no_device() {
        let set = no_gl_settings(|_| false, Vec::new());
        assert_eq!(
            set[2],
            ("WEBKIT_WEB_RENDER_DEVICE_FILE", "none".to_string())
        );
    }

    #[test]
    fn no_gl_settings_leave_rendering_alone_when_the_person_set_any_rendering_variable() {
        for chosen in [
            "WEBKIT_DISABLE_DMABUF_RENDERER",
            "GDK_GL",
            "WEBKIT_DMABUF_RENDERER_FORCE_SHM",
        ] {
            let set = no_gl_settings(|name| name == chosen, Vec::new());
            assert!(set.is_empty(), "{chosen} set by the person");
        }
    }

    #[test]
    fn stat_line_gives_the_command_name_and_parent_even_with_parentheses_in_the_name() {
        let line = "4242 (WebKitNetworkPr) S 4200 4200 4200 0 -1 4194560 1 0";
        assert_eq!(parse_stat(line), Some(("WebKitNetworkPr", 4200)));
        let odd = "7 (a) b (c)) R 1 7 7 0";
        assert_eq!(parse_stat(odd), Some(("a) b (c)", 1)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn maps_lines_of_files_are_trimmed_and_anonymous_ones_are_not() {
        let lib = "7f1c2a000000-7f1c2a021000 r-xp 00002000 fd:01 1835 /usr/lib/x86_64-linux-gnu/libz.so.1";
        assert_eq!(file_mapping(lib), Some((0x7f1c2a000000, 0x21000)));
        let heap = "55d1c4e5e000-55d1c4e7f000 rw-p 00000000 00:00 0 [heap]";
        assert_eq!(file_mapping(heap), None);
        let anon = "7f1c29fff000-7f1c2a000000 rw-p 00000000 00:00 0";
        assert_eq!(file_mapping(anon), None);
    }

    #[test]
    fn children_finds_a_child_process_by_name_and_not_others() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let me = std::process::id();
        let found = children(me, "sleep");
        let other = children(me, "WebKitWebProcess");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found, vec![i32::try_from(child.id()).unwrap()]);
        assert!(other.is_empty());
    }

    #[test]
    fn wait_exit_returns_when_the_process_exits() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let start = std::time::Instant::now();
        // A zombie is an exited process: its pidfd is readable.
        wait_exit(pid, std::time::Duration::from_secs(20));
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        let _ = child.wait();
    }
}
