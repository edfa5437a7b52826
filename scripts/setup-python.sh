#!/usr/bin/env bash
# Makes the Python test upstream available: a venv in .tools/python with FastMCP (exact version
# below), which tests/py/fastmcp_server.py runs on (tests/support/pyserver.rs finds it there;
# MCP_BROKER_PYTHON overrides). Needs Python >= 3.11 with venv (scripts/setup-system.sh installs
# python3-venv). Idempotent: nothing is installed when the venv already has this version.
set -euo pipefail

FASTMCP_VERSION="4.2.3"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/python"
STAMP="$VENV/.installed-fastmcp"

if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$FASTMCP_VERSION" ]; then
  exit 0
fi
PY="$(command -v python3 || true)"
[ -n "$PY" ] || { echo "setup-python: python3 not found; run scripts/setup-system.sh or install Python >= 3.11" >&2; exit 1; }
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "setup-python: $PY is older than Python 3.11, which FastMCP $FASTMCP_VERSION needs" >&2; exit 1; }
echo "setup-python: installing fastmcp==$FASTMCP_VERSION into $VENV" >&2
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "fastmcp==$FASTMCP_VERSION" >&2
printf '%s\n' "$FASTMCP_VERSION" > "$STAMP"
