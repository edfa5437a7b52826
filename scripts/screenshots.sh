#!/usr/bin/env bash
# Takes the README screenshots from the real app under Xvfb: the dashboard, the add-server form
# with its probe result, the client setup view, the consent page (WebDriver screenshots of the
# window; the consent page opened in the app's own WebKit) and the tray
# menu, also after the company sign-in (an XEmbed tray host, `trayer`, shows the icon; a click opens the real menu; ImageMagick
# captures the screen). Runs the desktop window test with MCP_AUTH_BROKER_SCREENSHOTS set, so the
# pictures show the same flow the test checks. Output: docs/screenshots/*.png.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out="$root/docs/screenshots"

scripts/setup-desktop-test.sh
extra=(trayer xdotool imagemagick)
if ! dpkg -s "${extra[@]}" >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${extra[@]}"
fi

mkdir -p "$out"
cargo test --test desktop_window --no-run

runtime_dir=$(mktemp -d)
chmod 700 "$runtime_dir"
export XDG_RUNTIME_DIR=$runtime_dir XDG_DATA_HOME=$runtime_dir/data
mkdir -p "$XDG_DATA_HOME"
export MCP_AUTH_BROKER_SCREENSHOTS=$out
# WebDriver screenshots read the page back through GL in the app process, which the app keeps GL
# out of (desktop/webkit.rs): setting one of its rendering variables gives WebKit's default
# rendering for these runs (the pictures look the same).
export WEBKIT_DISABLE_DMABUF_RENDERER=0

# Inside the session: a tray host at the top right, then the test. The icon is the only one in
# the tray, so it sits 14 px from the top-right corner. A second pass with GTK's dark theme
# (WebKitGTK then reports prefers-color-scheme: dark) keeps only its dashboard and consent
# pictures.
dark=$(mktemp -d)
trap 'rm -rf "$runtime_dir" "$dark"' EXIT
export DARK_SHOTS=$dark
dbus-run-session -- "$root/scripts/in-session.sh" bash -c '
  trayer --edge top --align right --widthtype request --height 28 --transparent false \
    --tint 0x333333 --SetDockType true >/dev/null 2>&1 &
  tray_pid=$!
  trap "kill $tray_pid 2>/dev/null || true" EXIT
  width=$(xdotool getdisplaygeometry | cut -d" " -f1)
  export MCP_AUTH_BROKER_TRAY_ICON="$((width - 14)) 14"
  test=window_adds_an_oauth_server_signs_in_copies_its_snippet_and_signs_out
  cargo test --test desktop_window -- --ignored --exact "$test"
  cargo test --test desktop_window -- --ignored --exact \
    firstrun::first_run_finds_claude_code_and_cursor_imports_connects_and_undoes
  # The consent page (a server to sign in to, and one that cannot be signed in), in the window.
  cargo test --test desktop_window -- --ignored --exact \
    words::window_says_a_refused_connection_in_one_sentence_and_details_show_the_raw_cause
  # The tray menu after the company sign-in (two servers via Acme, the company entry signed in).
  cargo test --test desktop_window -- --ignored --exact \
    enterprise::one_company_sign_in_from_the_tray_readies_both_servers_via_acme_and_the_tray_says_signed_in
  MCP_AUTH_BROKER_SCREENSHOTS=$DARK_SHOTS GTK_THEME=Adwaita:dark \
    cargo test --test desktop_window -- --ignored --exact "$test"
  MCP_AUTH_BROKER_SCREENSHOTS=$DARK_SHOTS GTK_THEME=Adwaita:dark \
    cargo test --test desktop_window -- --ignored --exact \
    words::window_says_a_refused_connection_in_one_sentence_and_details_show_the_raw_cause
'
cp "$dark/dashboard.png" "$out/dashboard-dark.png"
cp "$dark/consent.png" "$out/consent-dark.png"
ls -1 "$out"/*.png
