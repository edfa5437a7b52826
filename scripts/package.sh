#!/usr/bin/env bash
# Usage: scripts/package.sh [BUNDLES] [--debug]
# Builds the Linux .deb with the Tauri bundler (npm @tauri-apps/cli, exact version) and checks its
# contents: both binaries (the tray app and mcp-auth-broker-headless, which the tray app hands
# every command that opens no window to), the desktop entry and the icons; then runs them. The
# AppImage needs tools the bundler downloads at build time: `scripts/package.sh appimage` builds it
# where the network allows.
# macOS (.dmg) and Windows (.msi): run `npx --yes @tauri-apps/cli@2.12.5 build --bundles dmg`
# (or `--bundles msi`) on those systems; they need no system packages beyond Xcode / MSVC. Without
# the headless binary next to it (the external binary below), the app runs every command itself.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-system.sh
bundles=${1:-deb}
# `--debug`: the same bundler and checks on the debug profile, which reuses the test build's
# compiled dependencies (this is what CI runs; a release build would double its time).
profile=release
flags=()
if [ "${2:-}" = "--debug" ]; then
  profile=debug
  flags=(--debug)
fi
target=${CARGO_TARGET_DIR:-target}
# The headless binary (the same CLI without the desktop feature, so no WebKit/GTK is mapped):
# shipped next to the desktop binary as a Tauri "external binary", which the bundler looks for
# as NAME-<host triple>. The desktop binary hands every command that opens no window to it.
cargo_profile=()
[ "$profile" = release ] && cargo_profile=(--release)
cargo build "${cargo_profile[@]}" --no-default-features --features headless --bin mcp-auth-broker-headless
triple=$(rustc -vV | sed -n 's/^host: //p')
mkdir -p "$target/sidecar"
cp "$target/$profile/mcp-auth-broker-headless" "$target/sidecar/mcp-auth-broker-headless-$triple"
sidecar=$(cd "$target/sidecar" && pwd)/mcp-auth-broker-headless
npx --yes @tauri-apps/cli@2.12.5 build "${flags[@]}" --bundles "$bundles" \
  --config "{\"bundle\":{\"externalBin\":[\"$sidecar\"]}}"
deb=$(ls -t "$target"/$profile/bundle/deb/*.deb | head -n 1)
echo "==> $deb"
contents=$(dpkg-deb -c "$deb")
echo "$contents"
for want in "usr/bin/mcp-auth-broker" "usr/bin/mcp-auth-broker-headless" "usr/share/applications/" "usr/share/icons/hicolor/"; do
  grep -q "$want" <<<"$contents" || { echo "package.sh: $deb lacks $want" >&2; exit 1; }
done
dpkg-deb -f "$deb" Package Version Depends
# The bundler derives Depends from what the binary links: the webview and the tray library.
depends=$(dpkg-deb -f "$deb" Depends)
for want in libwebkit2gtk-4.1-0 libayatana-appindicator3-1; do
  grep -q "$want" <<<"$depends" || { echo "package.sh: $deb does not depend on $want" >&2; exit 1; }
done
# The installed binaries run: the headless one answers --version and links no WebKit, and the
# desktop one hands `serve` to it (the serving process's executable is the headless binary).
unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked"' EXIT
dpkg-deb -x "$deb" "$unpacked"
headless="$unpacked/usr/bin/mcp-auth-broker-headless"
"$headless" --version
if readelf -d "$headless" | grep -q webkit; then
  echo "package.sh: mcp-auth-broker-headless links WebKit" >&2; exit 1
fi
# The ≤ 15 MiB target is the release package's; a debug build only reports its figure.
BENCH_IDLE_PROFILE=$profile scripts/bench-idle.sh headless "$unpacked/usr/bin/mcp-auth-broker"
echo "package.sh: $deb is complete"
