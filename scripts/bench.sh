#!/usr/bin/env bash
# scry and skopeo side by side on the same machine, in one run: copies, inspect, list-tags
# (also through a 50 ms RTT proxy), the mount, and the machine's own limits. Writes
# docs/benchmarks.md. Images are made once (a Debian minbase root filesystem, fetched with
# debootstrap from Debian's mirror) and kept in ~/.cache/scry-bench.
#   scripts/bench.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
scry_install_deps
command -v debootstrap >/dev/null || { apt-get install -y -qq debootstrap >/dev/null; }
[ -x /usr/bin/time ] || apt-get install -y -qq time >/dev/null

rounds=${1:-5}
echo "== building scry (release)"
cargo build --release --locked -q
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
SCRY=$target_dir/release/scry

images=${SCRY_BENCH_IMAGES:-$HOME/.cache/scry-bench}
mkdir -p "$images"
if [ ! -f "$images/ready" ]; then
    echo "== preparing images in $images (once)"
    rm -rf "$images/rootfs" "$images/big" "$images/small" "$images/stage"
    if [ ! -d "$images/rootfs.done" ]; then
        debootstrap --variant=minbase bookworm "$images/rootfs.tmp" http://deb.debian.org/debian >"$images/debootstrap.log" 2>&1
        mv "$images/rootfs.tmp" "$images/rootfs.done"
    fi
    root="$images/rootfs.done"
    umoci init --layout "$images/big" >/dev/null
    umoci new --image "$images/big:one" >/dev/null
    umoci insert --image "$images/big:one" "$root" / >/dev/null
    # Five layers: the root filesystem in five slices.
    umoci new --image "$images/big:five" >/dev/null
    umoci insert --image "$images/big:five" "$root/usr/lib" /usr/lib >/dev/null
    umoci insert --image "$images/big:five" "$root/usr/share" /usr/share >/dev/null
    mkdir -p "$images/stage/usr-rest" "$images/stage/rest"
    (cd "$root/usr" && tar cf - --exclude=./lib --exclude=./share .) | tar xf - -C "$images/stage/usr-rest"
    umoci insert --image "$images/big:five" "$images/stage/usr-rest" /usr >/dev/null
    umoci insert --image "$images/big:five" "$root/var" /var >/dev/null
    (cd "$root" && tar cf - --exclude=./usr --exclude=./var --exclude=./proc --exclude=./sys --exclude=./dev .) | tar xf - -C "$images/stage/rest"
    umoci insert --image "$images/big:five" "$images/stage/rest" / >/dev/null
    rm -rf "$images/stage"
    mkdir -p "$images/stage/small/etc"
    echo small > "$images/stage/small/etc/motd"
    umoci init --layout "$images/small" >/dev/null
    umoci new --image "$images/small:small" >/dev/null
    umoci insert --image "$images/small:small" "$images/stage/small" / >/dev/null
    umoci config --image "$images/small:small" --config.label bench=yes --config.env A=1 >/dev/null
    rm -rf "$images/stage"
    touch "$images/ready"
fi

work=$(mktemp -d /tmp/scry-bench.XXXXXX)
trap 'scry_unmount_all; rm -rf "$work"' EXIT
scry_unmount_all() { "$SCRY" unmount "$work/mnt" >/dev/null 2>&1 || true; }
python3 scripts/bench/bench.py "$SCRY" "$work" "$images" docs/benchmarks.md "$rounds"
