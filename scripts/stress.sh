#!/usr/bin/env bash
# The mount's load test for longer than the suite runs it: 32 readers over 5 images
# with a cache smaller than their blobs, ls -R and find beside them, on a release
# build. Prints reads verified, bytes, walks, the daemon's peak RSS and descriptors.
#
#   scripts/stress.sh [SECONDS]   # default 120
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
scry_install_deps
SCRY_STRESS_SECS=${1:-120} cargo test --release --locked --test it -- \
    mount_tests::stress --nocapture --test-threads=1 2>&1 | grep -E '^(stress:|test |test result)'
