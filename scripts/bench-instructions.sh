#!/usr/bin/env bash
# What one proxied call costs in CPU instructions, counted by valgrind's callgrind: unlike the
# timings of `cargo bench`, the counts do not move with machine load (runs differ by a few
# percent, from how the runtime's threads happen to interleave).
# Runs the proxy benchmark three times with BENCH_PROFILE=direct|floor|broker (set-up and
# warm-up alike, then CALLS sequential `tools/call`s to that one target) and prints, per call,
# the instructions the floor (bare proxy) and the broker add over calling the upstream directly.
# Usage: scripts/bench-instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
calls=1000 # ALLOC_CALLS in benches/proxy/main.rs
if ! command -v valgrind >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get install -y -q --no-install-recommends valgrind
fi
bin=$(cargo bench --no-default-features --bench proxy --no-run 2>&1 |
  sed -n 's/^ *Executable .*(\(.*\))$/\1/p' | tail -1)
[ -x "$bin" ] || { echo "bench-instructions: could not find the built benchmark" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
declare -A total
for t in direct floor broker; do
  # The benchmark prints its heap allocations per call (whole process) for the target.
  BENCH_PROFILE=$t valgrind --tool=callgrind --callgrind-out-file="$out/$t" "$bin" --bench 2>/dev/null
  total[$t]=$(sed -n 's/^summary: //p' "$out/$t")
done
floor=$(((total[floor] - total[direct]) / calls))
broker=$(((total[broker] - total[direct]) / calls))
echo "instructions added per call over direct, $calls calls: floor $floor, broker $broker ($(
  awk -v b="$broker" -v f="$floor" 'BEGIN { printf "%.2f", b / f }')× the floor's)"
