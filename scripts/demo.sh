#!/usr/bin/env bash
# Builds scry, starts a local registry with sample images, and shows scry in use.
# Everything runs on 127.0.0.1; the registry stops when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
scry_install_deps

echo "== building scry (release)"
cargo build --release --locked -q
SCRY=$PWD/target/release/scry
[ -n "${CARGO_TARGET_DIR:-}" ] && SCRY=$CARGO_TARGET_DIR/release/scry

work=$(mktemp -d /tmp/scry-demo.XXXXXX)
reg_pid=""
mounted=""
cleanup() {
    if [ -n "$mounted" ]; then
        "$SCRY" unmount "$work/mnt" 2>/dev/null || umount -l "$work/mnt" 2>/dev/null || true
    fi
    if [ -n "$reg_pid" ]; then
        kill "$reg_pid" 2>/dev/null || true
        wait "$reg_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YAML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $work/data}
  delete: {enabled: true}
http: {addr: 127.0.0.1:$port}
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
REG=127.0.0.1:$port
echo "== registry at $REG"

echo "== making a sample image (no network needed)"
mkdir -p "$work/rootfs/etc" "$work/rootfs/bin"
echo "hello from scry's demo image" > "$work/rootfs/etc/motd"
printf '#!/bin/sh\necho hi\n' > "$work/rootfs/bin/hello"; chmod +x "$work/rootfs/bin/hello"
umoci init --layout "$work/oci" >/dev/null
umoci new --image "$work/oci:demo" >/dev/null
umoci insert --image "$work/oci:demo" "$work/rootfs" / >/dev/null
umoci config --image "$work/oci:demo" --config.label org.example.demo=yes \
    --config.env GREETING=hello --config.cmd /bin/hello >/dev/null
for tag in 1.0 1.1 latest; do
    skopeo copy -q --dest-tls-verify=false "oci:$work/oci:demo" "docker://$REG/demo/hello:$tag"
done

run() { echo; echo "\$ $*"; "$@"; }
run "$SCRY" inspect --tls-verify=false "docker://$REG/demo/hello:1.0"
run "$SCRY" inspect --tls-verify=false --format '{{.Digest}} {{.Architecture}} {{index .Labels "org.example.demo"}}' "docker://$REG/demo/hello:latest"
run "$SCRY" inspect --tls-verify=false --raw "docker://$REG/demo/hello:latest"; echo
run "$SCRY" inspect --tls-verify=false --config "docker://$REG/demo/hello:latest"
run "$SCRY" list-tags --tls-verify=false "docker://$REG/demo/hello"
echo
echo "\$ scry inspect docker://$REG/demo/missing:1  (exit code 2 = image not found)"
set +e; "$SCRY" inspect --tls-verify=false "docker://$REG/demo/missing:1"; echo "exit code: $?"; set -e

echo
echo "== copying between transports"
run "$SCRY" copy --src-tls-verify=false "docker://$REG/demo/hello:1.0" "oci:$work/layout:hello"
run "$SCRY" copy --dest-tls-verify=false --format v2s2 "oci:$work/layout:hello" "docker://$REG/demo/hello-v2s2:1.0"
run "$SCRY" inspect --tls-verify=false --format '{{.Name}} {{.Digest}}' "docker://$REG/demo/hello-v2s2:1.0"

echo; echo "\$ scry export docker://$REG/demo/hello:1.0 | tar -xO etc/motd   (the merged filesystem as a tar stream)"
"$SCRY" export --tls-verify=false "docker://$REG/demo/hello:1.0" | tar -xO etc/motd

echo
echo "== mirroring every tag of a repository into directories"
run "$SCRY" sync --src-tls-verify=false --src docker --dest dir "$REG/demo/hello" "$work/mirror"
run ls "$work/mirror"
echo
echo "== the registry as a filesystem"
mkdir -p "$work/mnt"
run "$SCRY" mount --background --tls-verify=false --cache-dir "$work/cache" --registry "$REG" "$work/mnt"
mounted=yes
M="$work/mnt/$REG/demo/hello"
run ls "$work/mnt"
run ls "$M"
run ls -l "$M/1.0"
echo; echo "\$ cat $M/1.0/manifest.json | jq .layers"
cat "$M/1.0/manifest.json" | jq .layers
echo; echo "\$ sha256sum $M/1.0/manifest.json   (equals the image digest)"
sha256sum "$M/1.0/manifest.json"
echo; echo "\$ jq -r .Digest $M/1.0/inspect.json"
jq -r .Digest "$M/1.0/inspect.json"
echo; echo "\$ sha256sum $M/1.0/layers/0.tar.gz   (fetched lazily, through the cache; equals the layer digest)"
sha256sum "$M/1.0/layers/0.tar.gz"
jq -r '.layers[0].digest' "$M/1.0/manifest.json"
echo; echo "\$ tar tzf $M/1.0/layers/0.tar.gz"
echo "(umoci writes layers without tar's end-of-archive blocks, so tar ends with a complaint)"
tar tzf "$M/1.0/layers/0.tar.gz" || echo "tar exit code: $?"
echo; echo "\$ cat $M/1.0/rootfs/etc/motd   (a file inside the remote image, no pull)"
cat "$M/1.0/rootfs/etc/motd"
run ls -l "$M/1.0/rootfs/etc"
echo; echo "\$ getfattr -n user.scry.layer $M/1.0/rootfs/etc/motd   (the layer it came from)"
if command -v getfattr >/dev/null; then
    getfattr -n user.scry.layer --only-values "$M/1.0/rootfs/etc/motd"; echo
else
    python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.scry.layer").decode())' "$M/1.0/rootfs/etc/motd"
fi
echo; echo "\$ echo oci:$work/from-mount:copied > $M/1.0/copy-to/job1   (the copy runs at close)"
echo "oci:$work/from-mount:copied" > "$M/1.0/copy-to/job1" && echo "copy finished"
echo; echo "\$ printf '%s\\n' dir:$work/from-mount-v2s2 '--format v2s2' > $M/1.0/copy-to/job2   (flags on later lines)"
printf '%s\n' "dir:$work/from-mount-v2s2" '--format v2s2' > "$M/1.0/copy-to/job2" && echo "copy finished"
run jq -r .mediaType "$work/from-mount-v2s2/manifest.json"
run cat "$M/1.0/copy-to/job1.status"
run "$SCRY" inspect --format '{{.Digest}}' "oci:$work/from-mount:copied"
echo; echo "\$ jq .backend $work/mnt/.scry/stats.json   (this mount's cache counters)"
jq .backend "$work/mnt/.scry/stats.json"
run "$SCRY" unmount "$work/mnt"
mounted=""
# The daemon records its counters in the cache directory as it exits.
for _ in $(seq 50); do pgrep -f "scry mount .*$work/mnt" >/dev/null || break; sleep 0.1; done
run "$SCRY" cache status --cache-dir "$work/cache"
echo
echo "Demo done."
