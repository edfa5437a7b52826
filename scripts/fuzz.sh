#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for SECONDS each (default 120), from the committed
# seed corpora in fuzz/corpus. Installs cargo-fuzz when missing. The stable toolchain is enough:
# RUSTC_BOOTSTRAP lets cargo-fuzz pass its instrumentation flags, and no sanitizer is needed for
# Rust code without `unsafe`. A crash stops the run and leaves its input in fuzz/artifacts/.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
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
  # Work on a scratch copy so new inputs do not pile up in the committed seed corpus.
  work=$(mktemp -d)
  cp -r "fuzz/corpus/$t/." "$work/"
  (cd fuzz && cargo fuzz run --sanitizer none "$t" "$work" -- -max_total_time="$seconds" -max_len=8192 -print_final_stats=1) 2>&1 | tail -n 12
  rm -rf "$work"
done
