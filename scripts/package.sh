#!/usr/bin/env bash
# Usage: scripts/package.sh [BUNDLES] [--debug]
# Builds the Linux .deb with the Tauri bundler (npm @tauri-apps/cli, exact version) and checks its
# contents: the binary, the desktop entry and the icons. The AppImage needs tools the bundler
# downloads at build time: `scripts/package.sh appimage` builds it where the network allows.
# macOS (.dmg) and Windows (.msi): run `npx --yes @tauri-apps/cli@2.12.5 build --bundles dmg`
# (or `--bundles msi`) on those systems; they need no system packages beyond Xcode / MSVC.
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
npx --yes @tauri-apps/cli@2.12.5 build "${flags[@]}" --bundles "$bundles"
target=${CARGO_TARGET_DIR:-target}
deb=$(ls -t "$target"/$profile/bundle/deb/*.deb | head -n 1)
echo "==> $deb"
contents=$(dpkg-deb -c "$deb")
echo "$contents"
for want in "usr/bin/mcp-auth-broker" "usr/share/applications/" "usr/share/icons/hicolor/"; do
  grep -q "$want" <<<"$contents" || { echo "package.sh: $deb lacks $want" >&2; exit 1; }
done
dpkg-deb -f "$deb" Package Version Depends
# The bundler derives Depends from what the binary links: the webview and the tray library.
depends=$(dpkg-deb -f "$deb" Depends)
for want in libwebkit2gtk-4.1-0 libayatana-appindicator3-1; do
  grep -q "$want" <<<"$depends" || { echo "package.sh: $deb does not depend on $want" >&2; exit 1; }
done
echo "package.sh: $deb is complete"
