#!/usr/bin/env bash
# What one call costs in CPU instructions, counted by valgrind's callgrind: unlike the timings of
# `cargo bench`, the counts do not move with machine load (runs differ by a few percent, from how
# the runtime's threads happen to interleave).
# Runs the proxy benchmark once per target with BENCH_PROFILE=<target> (set-up and warm-up of
# every route alike, then 1000 sequential `tools/call`s to that one target) and prints, per call,
# the instructions each target adds over calling the upstream directly in the same era, and that
# as a multiple of what the floor (bare proxy) adds.
# Targets: direct floor broker aggregate (2025-11-25) and the same with -modern (2026-07-28);
# broker is /{server}/mcp, aggregate is /mcp.
# Usage: scripts/bench-instructions.sh [--functions] [TARGET...]
#   (default: every target; the direct and floor of each era named are always run)
#   --functions: also print, for each proxy target named, the functions whose own instructions
#   per call grew most over the direct call of its era: where a call's time goes.
set -euo pipefail
cd "$(dirname "$0")/.."
calls=1000 # Counts::alloc_calls in benches/proxy/main.rs
functions=0
if [ "${1:-}" = --functions ]; then functions=1; shift; fi
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(broker aggregate broker-modern aggregate-modern)
if ! command -v valgrind >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get install -y -q --no-install-recommends valgrind
fi
bin=$(cargo bench --no-default-features --bench proxy --no-run 2>&1 |
  sed -n 's/^ *Executable .*(\(.*\))$/\1/p' | tail -1)
[ -x "$bin" ] || { echo "bench-instructions: could not find the built benchmark" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
era_of() { case $1 in *-modern) echo -modern ;; *) echo "" ;; esac; }
run=()
for t in "${wanted[@]}"; do
  e=$(era_of "$t")
  for x in "direct$e" "floor$e" "$t"; do
    [[ " ${run[*]} " == *" $x "* ]] || run+=("$x")
  done
done
declare -A total
for t in "${run[@]}"; do
  # The benchmark prints its heap allocations per call (whole process) for the target.
  BENCH_PROFILE=$t valgrind --tool=callgrind --callgrind-out-file="$out/$t" "$bin" --bench 2>/dev/null
  total[$t]=$(sed -n 's/^summary: //p' "$out/$t")
done
per_call() { echo $(((total[$1] - total[direct$(era_of "$1")]) / calls)); }
echo "instructions added per call over a direct call of the same era, $calls calls each:"
for t in "${run[@]}"; do
  case $t in direct*) continue ;; esac
  e=$(era_of "$t")
  added=$(per_call "$t")
  floor=$(per_call "floor$e")
  awk -v t="$t" -v a="$added" -v f="$floor" 'BEGIN { printf "  %-18s %8d  (%.2f× the floor'"'"'s)\n", t, a, a / f }'
done
[ $functions = 1 ] || exit 0
# Own instructions per function, this target minus the direct call of its era, per call.
self_costs() {
  callgrind_annotate --threshold=100 "$out/$1" 2>/dev/null |
    awk '/^ *[0-9,]+ .*[^ ]:[^ ]/ { n = $1; gsub(",", "", n); $1 = ""; sub(/^ +/, ""); sub(/^\([^)]*\) +/, ""); print n "\t" $0 }'
}
for t in "${wanted[@]}"; do
  case $t in direct*) continue ;; esac
  e=$(era_of "$t")
  echo
  echo "$t: functions by own instructions added per call over direct$e (top 30)"
  awk -F'\t' -v calls=$calls 'NR == FNR { base[$2] = $1; next }
    { d = ($1 - base[$2]) / calls; if (d >= 20) printf "%8.0f  %s\n", d, $2 }' \
    <(self_costs "direct$e") <(self_costs "$t") | sort -rn | head -30
done
