#!/usr/bin/env bash
# Where a fuzz target's coverage lies: replays a corpus once through an AddressSanitizer build
# of the target (whose runtime symbolises libFuzzer's coverage report) and sums the covered
# edges of functions defined in this project (src-tauri/, fuzz/) apart from those of
# dependencies (serde_json, url, idna, ...): how much of a campaign's coverage is the project's.
# (File times cannot tell when an edge was first reached: libFuzzer rewrites corpus files as it
# shrinks them.)
# Usage: scripts/fuzz-coverage.sh TARGET CORPUS_DIR
# Prints: `<target>: project edges A of B in N functions; dependency edges C of D (M inputs)`.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz-coverage.sh TARGET CORPUS_DIR}
corpus=${2:?usage: scripts/fuzz-coverage.sh TARGET CORPUS_DIR}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.1 --locked
if ! command -v llvm-symbolizer >/dev/null; then
  # It names the covered functions in libFuzzer's report.
  command -v apt-get >/dev/null || { echo "fuzz-coverage: install llvm-symbolizer (LLVM) first" >&2; exit 2; }
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends llvm >&2
fi
export RUSTC_BOOTSTRAP=1
dir=${FUZZ_COVERAGE_TARGET_DIR:-$PWD/fuzz/target-asan}
(cd fuzz && cargo fuzz build --sanitizer address --target-dir "$dir" "$target" >&2)
bin="$dir/$(rustc -vV | sed -n 's/^host: //p')/release/$target"
count=$(find "$corpus" -maxdepth 1 -type f | wc -l)
ASAN_OPTIONS=detect_leaks=0 "$bin" -runs=0 -print_coverage=1 "$corpus" 2>&1 |
  awk -v t="$target" -v n="$count" '
    /^(UN)?COVERED_FUNC: / {
      split($5, e, "/"); file = $NF
      ours = (file ~ /\/src-tauri\// || file ~ /\/fuzz\/fuzz_targets\//)
      if (ours) { oc += e[1]; ot += e[2]; if (e[1] > 0) of++ } else { dc += e[1]; dt += e[2] }
    }
    END { printf "%s: project edges %d of %d in %d functions; dependency edges %d of %d (%d inputs)\n", t, oc, ot, of, dc, dt, n }'
