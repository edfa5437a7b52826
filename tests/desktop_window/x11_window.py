#!/usr/bin/env python3
"""Acts on the app's top-level X11 window the way a window manager does, with libX11 only.

  x11_window.py close TITLE     ask the window titled TITLE to close (WM_DELETE_WINDOW, what a
                                window manager sends when the person clicks the close button)
  x11_window.py wait-shown TITLE [SECONDS] [--epoch-ms]
                                block until a window titled TITLE is mapped, then print the
                                milliseconds waited, or with --epoch-ms the Unix time in ms
                                (event-driven: MapNotify on the root window)

Used by tests/desktop_window/close_reopen.rs and scripts/bench-idle.sh under Xvfb, where no
window manager runs. Exit code 1 when no such window is found / shown in time.
"""
import ctypes
import select
import sys
import time

x = ctypes.cdll.LoadLibrary("libX11.so.6")
x.XOpenDisplay.restype = ctypes.c_void_p
x.XOpenDisplay.argtypes = [ctypes.c_char_p]
x.XDefaultRootWindow.restype = ctypes.c_ulong
x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
x.XInternAtom.restype = ctypes.c_ulong
x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x.XQueryTree.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_ulong),
                         ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.POINTER(ctypes.c_ulong)),
                         ctypes.POINTER(ctypes.c_uint)]
x.XFetchName.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_char_p)]
x.XFree.argtypes = [ctypes.c_void_p]
x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
x.XFlush.argtypes = [ctypes.c_void_p]
x.XSelectInput.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_long]
x.XPending.argtypes = [ctypes.c_void_p]
x.XNextEvent.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
x.XConnectionNumber.argtypes = [ctypes.c_void_p]


class XWindowAttributes(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("width", ctypes.c_int),
                ("height", ctypes.c_int), ("border_width", ctypes.c_int), ("depth", ctypes.c_int),
                ("visual", ctypes.c_void_p), ("root", ctypes.c_ulong), ("c_class", ctypes.c_int),
                ("bit_gravity", ctypes.c_int), ("win_gravity", ctypes.c_int),
                ("backing_store", ctypes.c_int), ("backing_planes", ctypes.c_ulong),
                ("backing_pixel", ctypes.c_ulong), ("save_under", ctypes.c_int),
                ("colormap", ctypes.c_ulong), ("map_installed", ctypes.c_int),
                ("map_state", ctypes.c_int), ("all_event_masks", ctypes.c_long),
                ("your_event_mask", ctypes.c_long), ("do_not_propagate_mask", ctypes.c_long),
                ("override_redirect", ctypes.c_int), ("screen", ctypes.c_void_p)]


x.XGetWindowAttributes.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(XWindowAttributes)]


class XClientMessageEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong),
                ("message_type", ctypes.c_ulong), ("format", ctypes.c_int),
                ("l", ctypes.c_long * 5)]


class XEvent(ctypes.Union):
    _fields_ = [("type", ctypes.c_int), ("xclient", XClientMessageEvent), ("pad", ctypes.c_long * 24)]


CLIENT_MESSAGE, MAP_NOTIFY, IS_VIEWABLE = 33, 19, 2
SUBSTRUCTURE_NOTIFY_MASK = 1 << 19


def shown_windows(dpy, root, title):
    """Mapped direct children of the root window titled `title` (no WM reparents them)."""
    r, p, n = ctypes.c_ulong(), ctypes.c_ulong(), ctypes.c_uint()
    kids = ctypes.POINTER(ctypes.c_ulong)()
    if not x.XQueryTree(dpy, root, ctypes.byref(r), ctypes.byref(p), ctypes.byref(kids), ctypes.byref(n)):
        return []
    found = []
    for i in range(n.value):
        w = kids[i]
        name = ctypes.c_char_p()
        if x.XFetchName(dpy, w, ctypes.byref(name)) and name.value is not None:
            attrs = XWindowAttributes()
            x.XGetWindowAttributes(dpy, w, ctypes.byref(attrs))
            if name.value.decode("utf-8", "replace") == title and attrs.map_state == IS_VIEWABLE:
                found.append(w)
            x.XFree(name)
    if kids:
        x.XFree(kids)
    return found


def close(dpy, root, title):
    windows = shown_windows(dpy, root, title)
    for w in windows:
        ev = XEvent()
        ev.xclient.type = CLIENT_MESSAGE
        ev.xclient.window = w
        ev.xclient.message_type = x.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
        ev.xclient.format = 32
        ev.xclient.l[0] = x.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        ev.xclient.l[1] = 0  # CurrentTime
        x.XSendEvent(dpy, w, 0, 0, ctypes.byref(ev))
    x.XFlush(dpy)
    return bool(windows)


def wait_shown(dpy, root, title, seconds, epoch):
    start = time.monotonic()
    x.XSelectInput(dpy, root, SUBSTRUCTURE_NOTIFY_MASK)
    x.XFlush(dpy)
    fd = x.XConnectionNumber(dpy)
    ev = XEvent()
    while True:
        if shown_windows(dpy, root, title):
            print(round(time.time() * 1000) if epoch else round((time.monotonic() - start) * 1000))
            return True
        left = start + seconds - time.monotonic()
        if left <= 0:
            return False
        while x.XPending(dpy):
            x.XNextEvent(dpy, ctypes.byref(ev))
        if not x.XPending(dpy):
            select.select([fd], [], [], left)


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("close", "wait-shown"):
        sys.exit(__doc__)
    dpy = x.XOpenDisplay(None)
    if not dpy:
        sys.exit("x11_window.py: cannot open the display (DISPLAY unset?)")
    root = x.XDefaultRootWindow(dpy)
    if sys.argv[1] == "close":
        ok = close(dpy, root, sys.argv[2])
    else:
        rest = [a for a in sys.argv[3:] if a != "--epoch-ms"]
        ok = wait_shown(dpy, root, sys.argv[2], float(rest[0]) if rest else 30.0, "--epoch-ms" in sys.argv)
    sys.exit(0 if ok else 1)


main()
