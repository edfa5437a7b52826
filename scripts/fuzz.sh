#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for SECONDS each (default 120), from the committed
# seed corpora in fuzz/corpus. Installs cargo-fuzz when missing. The stable toolchain is enough:
# RUSTC_BOOTSTRAP lets cargo-fuzz pass its instrumentation flags, and no sanitizer is needed for
# Rust code without `unsafe`. A crash stops the run and leaves its input in fuzz/artifacts/.
# Each target uses its dictionary in fuzz/dicts when there is one.
#
# FUZZ_CORPUS_DIR=DIR keeps each target's grown corpus in DIR/<target> between runs, so a long
# campaign goes on where it stopped. FUZZ_QUIET=SECS stops a target early once SECS have passed
# without a new edge (libFuzzer's `cov`): "run until nothing new", with SECONDS as the cap.
# FUZZ_LOG_DIR=DIR keeps each target's full libFuzzer log, every line stamped with the seconds
# since its start, as DIR/<target>.log. FUZZ_SAVE=1 merges, after each target, the inputs that
# reached something the committed seeds do not into fuzz/corpus/<target> (libFuzzer's set-cover
# merge over edges, so only a small covering set is added): commit them, and the next run on any
# machine starts where this one stopped.
# Usage: [FUZZ_CORPUS_DIR=DIR] [FUZZ_QUIET=SECS] [FUZZ_LOG_DIR=DIR] [FUZZ_SAVE=1] scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-120}
shift || true
quiet=${FUZZ_QUIET:-0}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.1 --locked
export RUSTC_BOOTSTRAP=1
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cd fuzz && cargo fuzz list)
(cd fuzz && cargo fuzz build --sanitizer none)
bin_dir=$(cd fuzz && echo "$PWD/target/$(rustc -vV | sed -n 's/^host: //p')/release")
logs=${FUZZ_LOG_DIR:-$(mktemp -d)}
mkdir -p "$logs"
status=0
for t in "${targets[@]}"; do
  echo "==> fuzzing $t for up to ${seconds}s$([ "$quiet" -gt 0 ] && echo ", or until ${quiet}s without a new edge")"
  mkdir -p "fuzz/corpus/$t"
  # Work on a copy so new inputs do not pile up in the committed seed corpus: a scratch one, or
  # FUZZ_CORPUS_DIR/<target>.
  if [ -n "${FUZZ_CORPUS_DIR:-}" ]; then
    work="$FUZZ_CORPUS_DIR/$t"
    mkdir -p "$work"
  else
    work=$(mktemp -d)
  fi
  cp -rn "fuzz/corpus/$t/." "$work/"
  dict=()
  [ -f "fuzz/dicts/$t.dict" ] && dict=(-dict="fuzz/dicts/$t.dict")
  log="$logs/$t.log"
  mkdir -p fuzz/artifacts/"$t"
  start=$(date +%s)
  "$bin_dir/$t" "$work" -max_total_time="$seconds" -max_len=8192 "${dict[@]}" \
    -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 2>&1 |
    awk -v start="$start" '{ print systime() - start, $0; fflush() }' >"$log" &
  runner=$!
  if [ "$quiet" -gt 0 ]; then
    # libFuzzer has no "stop when saturated" flag: watch its log and interrupt it (it then prints
    # its final stats) once the newest edge count is older than FUZZ_QUIET seconds.
    while kill -0 "$runner" 2>/dev/null; do
      sleep 15
      last_new=$(awk '/ cov: / { for (i = 1; i <= NF; i++) if ($i == "cov:") c = $(i + 1) + 0;
          if (c > best) { best = c; at = $1 } } END { print at + 0 }' "$log")
      if [ $(($(date +%s) - start - last_new)) -ge "$quiet" ]; then
        pkill -INT -f "^$bin_dir/$t " || true
        break
      fi
    done
  fi
  wait "$runner" || true
  tail -n 12 "$log"
  if grep -q -E -e '^[0-9]* ==[0-9]*== ERROR' -e 'Test unit written to .*/(crash|leak|oom|timeout)-' "$log"; then
    echo "!! $t crashed: input in fuzz/artifacts/$t/" >&2
    status=1
  elif grep -q 'Test unit written to' "$log"; then
    # Slow units and timeouts are measured in wall time: a machine that paused or starved the
    # fuzzer makes them too. Re-running the input alone tells which.
    echo "!! $t: a slow input (libFuzzer's 'Slowest unit'), in fuzz/artifacts/$t/; time it alone with $bin_dir/$t FILE" >&2
    status=1
  fi
  awk '/ cov: / { for (i = 1; i <= NF; i++) if ($i == "cov:") c = $(i + 1) + 0; run = substr($2, 2) + 0;
         if (c > best) { best = c; at = $1; at_run = run } }
       /number_of_executed_units/ { run = $NF + 0 } { now = $1 }
       END { printf "<== %s: %d edges, the last new one at %ds (run %d) of %ds (%d runs)\n", t, best, at, at_run, now, run }' t="$t" "$log"
  if [ "${FUZZ_SAVE:-0}" = 1 ] && [ "$status" -eq 0 ]; then
    before=$(find "fuzz/corpus/$t" -type f | wc -l)
    "$bin_dir/$t" -merge=1 -set_cover_merge=1 -use_counters=0 -max_len=8192 "fuzz/corpus/$t" "$work" >/dev/null 2>&1
    echo "<== $t: the seed corpus grew from $before to $(find "fuzz/corpus/$t" -type f | wc -l) inputs"
  fi
  [ -n "${FUZZ_CORPUS_DIR:-}" ] || rm -rf "$work"
  [ "$status" -eq 0 ] || break
done
[ -n "${FUZZ_LOG_DIR:-}" ] || rm -rf "$logs"
exit "$status"
