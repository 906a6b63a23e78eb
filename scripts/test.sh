#!/usr/bin/env bash
# Installs what the tests need, then runs fmt, clippy and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
scry_install_deps

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked --all-targets 2>&1
