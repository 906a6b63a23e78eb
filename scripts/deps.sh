#!/usr/bin/env bash
# Installs the Debian packages scry's scripts and tests need, when missing.
# Sourced by scripts/test.sh and scripts/demo.sh; runs `apt-get update` at most once.
set -euo pipefail

scry_install_deps() {
    local need=() pair pkg bin
    # package:command-it-provides (a package without a command is checked with dpkg)
    for pair in docker-registry:docker-registry skopeo:skopeo umoci:umoci fuse3:fusermount3 \
        zstd:zstd jq:jq openssl:openssl apache2-utils:htpasswd pkg-config:pkg-config \
        curl:curl gnupg:gpg libssl-dev: ; do
        pkg=${pair%%:*}
        bin=${pair#*:}
        if [ -n "$bin" ]; then
            command -v "$bin" >/dev/null 2>&1 || need+=("$pkg")
        else
            dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
        fi
    done
    if [ ${#need[@]} -eq 0 ]; then
        return 0
    fi
    echo "Installing Debian packages: ${need[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # The registry package may start a system service on :5000; scry's scripts run their own.
    if command -v systemctl >/dev/null 2>&1; then
        $sudo systemctl stop docker-registry >/dev/null 2>&1 || true
    fi
}
