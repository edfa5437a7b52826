#!/usr/bin/env bash
# Installs what the real-window desktop test needs: tauri-driver (the WebDriver bridge for Tauri
# apps) plus the system packages from setup-system.sh (Xvfb, WebKitWebDriver, gnome-keyring).
# Idempotent: does nothing when everything is already there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/setup-system.sh"
want="2.1.0"
# tauri-driver has no --version; cargo's install list says which one is there.
if command -v tauri-driver >/dev/null 2>&1 && cargo install --list | grep -q "^tauri-driver v$want:"; then
  exit 0
fi
# A private target dir so this install never waits on (or evicts) the project's build.
CARGO_TARGET_DIR="${TAURI_DRIVER_BUILD_DIR:-${TMPDIR:-/tmp}/tauri-driver-build}" \
  cargo install tauri-driver --version "$want" --locked
