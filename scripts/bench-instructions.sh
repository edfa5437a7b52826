#!/usr/bin/env bash
# What one call costs in CPU instructions, counted by valgrind's callgrind: unlike the timings of
# `cargo bench`, the counts do not move with machine load (runs differ by a few percent, from how
# the runtime's threads happen to interleave).
# Runs the proxy benchmark once per target with BENCH_PROFILE=<target> (set-up and warm-up of
# every route alike, then 1000 sequential `tools/call`s to that one target) and prints, per call,
# the instructions each target adds over calling the upstream directly in the same era, and that
# as a multiple of what the floor (bare proxy) adds.
# Targets: direct floor broker aggregate (2025-11-25) and the same with -modern (2026-07-28);
# broker is /{server}/mcp, aggregate is /mcp (of a server of the same era); bridge is a
# 2025-11-25 client on /mcp calling a server the broker speaks 2026-07-28 to.
# Usage: scripts/bench-instructions.sh [--functions] [TARGET...]
#   (default: every target; the direct and floor of each era named are always run)
#   --functions: also print, for each target named, where its extra instructions go over the
#   layer below it in the same era (floor over direct, broker over floor, aggregate over broker):
#   by kind of work (copies, allocation, JSON, hashing, ...) and by function (own instructions).
# BENCH_CG_DIR=dir keeps the callgrind profiles there (and reuses those already there).
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
if [ -n "${BENCH_CG_DIR:-}" ]; then
  out=$BENCH_CG_DIR; mkdir -p "$out" # kept for callgrind_annotate; profiles already there are reused
else
  out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
fi
era_of() { case $1 in *-modern) echo -modern ;; *) echo "" ;; esac; }
run=()
for t in "${wanted[@]}"; do
  e=$(era_of "$t")
  below=""; [[ $t == aggregate* ]] && below="broker$e"
  for x in "direct$e" "floor$e" $below "$t"; do
    [[ " ${run[*]} " == *" $x "* ]] || run+=("$x")
  done
done
declare -A total
for t in "${run[@]}"; do
  # The benchmark prints its heap allocations per call (whole process) for the target.
  [ -s "$out/$t" ] ||
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
# Own instructions per function, this target minus the layer below it, per call.
self_costs() {
  callgrind_annotate --threshold=100 "$out/$1" 2>/dev/null |
    awk '/^ *[0-9,]+ .*[^ ]:[^ ]/ { n = $1; gsub(",", "", n); $1 = ""; sub(/^ +/, ""); sub(/^\([^)]*\) +/, ""); sub(/ \[.*\]$/, ""); print n "\t" $0 }'
}
kind='{ n = $2; k = "other"
  if (n ~ /memcpy|memmove/) k = "memcpy (moving large futures and buffers)"
  else if (n ~ /malloc|free|realloc|arena\.c/) k = "malloc/free"
  else if (n ~ /serde|indexmap|ryu|itoa/) k = "JSON (serde_json, indexmap)"
  else if (n ~ /hash|sip|hashbrown/) k = "hashing"
  else if (n ~ /mcp_auth_broker/) k = "broker code itself"
  else if (n ~ /hyper|http::|httparse|reqwest|tower|axum|h2|bytes/) k = "HTTP stack"
  else if (n ~ /tokio/) k = "tokio"
  print k "\t" $1 }'
for t in "${wanted[@]}"; do
  e=$(era_of "$t")
  case $t in direct*) continue ;; floor*) below="direct$e" ;; broker*) below="floor$e" ;; *) below="broker$e" ;; esac
  diff=$(awk -F'\t' -v calls=$calls 'NR == FNR { base[$2] = $1; next }
    { d = ($1 - base[$2]) / calls; delete base[$2]; print d "\t" $2 }
    END { for (f in base) print -base[f] / calls "\t" f }' <(self_costs "$below") <(self_costs "$t"))
  echo
  echo "$t over $below, instructions per call by kind of work:"
  awk -F'\t' "$kind" <<<"$diff" | awk -F'\t' '{ s[$1] += $2; t += $2 }
    END { for (k in s) printf "%8.0f  %s\n", s[k], k; printf "%8.0f  total\n", t }' | sort -rn
  echo "$t over $below, functions by own instructions per call (top 30):"
  awk -F'\t' '$1 >= 20 { printf "%8.0f  %s\n", $1, $2 }' <<<"$diff" | sort -rn | head -30
done
