#!/usr/bin/env bash
# THE test command: sets up everything a fresh Debian 12 / Ubuntu 24.04 machine needs (system
# packages, Node 22 + the npm test clients, FastMCP in a venv, tauri-driver) and runs every
# test: formatting, lints, the core without the desktop feature, then every Cargo test —
# including the ones that need the OS keychain and a display — inside a private D-Bus session
# with an unlocked GNOME Keyring and Xvfb. Idempotent; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n==> %s\n' "$*"; }

step "system packages"
scripts/setup-system.sh
step "Node 22 and the npm test clients"
scripts/setup-node.sh
step "Python test upstream (FastMCP)"
scripts/setup-python.sh
if [ -x scripts/setup-desktop-test.sh ]; then
  step "tauri-driver"
  scripts/setup-desktop-test.sh
fi

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy (desktop build, all targets)"
cargo clippy --all-targets -- -D warnings
step "cargo clippy (core without the desktop feature)"
cargo clippy --no-default-features --lib -- -D warnings
step "fuzz targets compile (run them with scripts/fuzz.sh)"
cargo check --manifest-path fuzz/Cargo.toml --bins
step "build tests"
cargo test --no-run

step "every test, inside a private session with Secret Service and Xvfb"
runtime_dir=$(mktemp -d)
chmod 700 "$runtime_dir"
export XDG_RUNTIME_DIR=$runtime_dir
export XDG_DATA_HOME=$runtime_dir/data
mkdir -p "$XDG_DATA_HOME"
trap 'rm -rf "$runtime_dir"' EXIT
dbus-run-session -- "$root/scripts/in-session.sh" cargo test -- --include-ignored

step "the .deb package (debug profile: the same bundler and contents check as scripts/package.sh)"
scripts/package.sh deb --debug
