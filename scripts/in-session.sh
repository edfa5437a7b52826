#!/usr/bin/env bash
# Runs a command with an unlocked GNOME Keyring (Secret Service) and an Xvfb display. Meant to be
# started by `dbus-run-session` (scripts/test.sh does), so nothing outlives the session.
set -euo pipefail
[ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ] || { echo "in-session.sh: run me under dbus-run-session" >&2; exit 2; }

# Secret Service: creates and unlocks a "login" keyring non-interactively. Tests that lock it
# unlock it again with the same password (tests/vault/keychain_locked.rs).
export TEST_KEYRING_PASSWORD=test-session-password
eval "$(printf '%s' "$TEST_KEYRING_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL

# A display nobody else uses.
display=99
while [ -e "/tmp/.X11-unix/X$display" ] || [ -e "/tmp/.X$display-lock" ]; do display=$((display + 1)); done
Xvfb ":$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
trap 'kill $xvfb_pid 2>/dev/null || true' EXIT
export DISPLAY=":$display"
for _ in $(seq 100); do [ -e "/tmp/.X11-unix/X$display" ] && break; sleep 0.1; done
[ -e "/tmp/.X11-unix/X$display" ] || { echo "in-session.sh: Xvfb did not start on :$display" >&2; exit 1; }

"$@"
