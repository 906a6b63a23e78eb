#!/usr/bin/env bash
# Runs each fuzz target (fuzz/fuzz_targets/) for SECONDS (default 30) with cargo fuzz,
# starting from the committed seeds (fuzz/seeds/TARGET) and a local working corpus
# (fuzz/corpus/TARGET, not committed). A crash stops the run and names the input
# (fuzz/artifacts/TARGET/…): copy it into fuzz/seeds/TARGET/, fix the bug; the normal
# test suite replays every seed (src/fuzzing/tests.rs).
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]
#
# Needs cargo-fuzz (installed from crates.io when missing) and a nightly toolchain for
# the sanitizer flags; without one, stable is told to accept them (RUSTC_BOOTSTRAP=1).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(reference manifest config www_authenticate template go_time config_files archive)
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi
failed=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    echo "== fuzz $t for ${secs}s"
    if ! cargo "${toolchain[@]}" fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
        -print_final_stats=1 2>&1 | tee "fuzz/$t.log" | grep -E '^(Done |==[0-9]+==|SUMMARY|Test unit written)'; then
        :
    fi
    if grep -qE 'Test unit written|SUMMARY: ' "fuzz/$t.log"; then
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${secs}s each without a crash"
