#!/usr/bin/env bash
# THE run command: installs what is missing on a fresh Debian 12 / Ubuntu 24.04 machine and starts
# the app (tray + dashboard when a display exists, headless otherwise). Extra arguments go to the
# app, e.g. `scripts/run.sh serve --port 47900`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-system.sh
exec cargo run --release -- "$@"
