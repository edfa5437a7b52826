#!/usr/bin/env bash
# Installs the Debian/Ubuntu system packages the app and its tests need, only when missing.
# Idempotent; uses sudo when not root. macOS and Windows need no system packages.
set -euo pipefail
[ "$(uname -s)" = Linux ] || exit 0
command -v apt-get >/dev/null || { echo "setup: not a Debian/Ubuntu system; install the packages listed in README.md by hand" >&2; exit 0; }
PKGS=(build-essential pkg-config file curl libssl-dev libxdo-dev libwebkit2gtk-4.1-dev
      libayatana-appindicator3-dev librsvg2-dev
      xvfb xauth dbus dbus-x11 at-spi2-core webkit2gtk-driver gnome-keyring libsecret-tools
      imagemagick python3 python3-venv)
if dpkg -s "${PKGS[@]}" >/dev/null 2>&1; then exit 0; fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${PKGS[@]}"
