#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for SECONDS each (default 120), from the committed
# seed corpora in fuzz/corpus. Installs cargo-fuzz when missing. The stable toolchain is enough:
# RUSTC_BOOTSTRAP lets cargo-fuzz pass its instrumentation flags, and no sanitizer is needed for
# Rust code without `unsafe`. A crash stops the run and leaves its input in fuzz/artifacts/.
# Each target uses its dictionary in fuzz/dicts when there is one.
# Usage: [FUZZ_CORPUS_DIR=DIR] scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-120}
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.1 --locked
export RUSTC_BOOTSTRAP=1
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cd fuzz && cargo fuzz list)
for t in "${targets[@]}"; do
  echo "==> fuzzing $t for ${seconds}s"
  mkdir -p "fuzz/corpus/$t"
  # Work on a copy so new inputs do not pile up in the committed seed corpus: a scratch one, or
  # FUZZ_CORPUS_DIR/<target>, kept between runs so a long campaign can go on where it stopped.
  if [ -n "${FUZZ_CORPUS_DIR:-}" ]; then
    work="$FUZZ_CORPUS_DIR/$t"
    mkdir -p "$work"
  else
    work=$(mktemp -d)
  fi
  cp -rn "fuzz/corpus/$t/." "$work/"
  dict=()
  [ -f "fuzz/dicts/$t.dict" ] && dict=(-dict="dicts/$t.dict")
  (cd fuzz && cargo fuzz run --sanitizer none "$t" "$work" -- -max_total_time="$seconds" -max_len=8192 "${dict[@]}" -print_final_stats=1) 2>&1 | tail -n 12
  [ -n "${FUZZ_CORPUS_DIR:-}" ] || rm -rf "$work"
done
