#!/bin/sh
# Installs the Debian 12 packages kfuzz and its tests need, and the nightly toolchain and
# cargo-fuzz its fuzz targets need. Safe to run again; quick when all is there.
set -eu
PKGS="make gcc flex bison bc perl cpio libelf-dev libssl-dev xz-utils \
      qemu-system-x86 busybox-static debootstrap linux-source-6.12 pkg-config git \
      mmdebstrap uidmap e2fsprogs debian-archive-keyring qemu-utils chromium"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "installing:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust with rustup (https://rustup.rs), then run this again" >&2
    exit 1
fi
# The fuzz targets (fuzz/, run by .ci/run) need a nightly toolchain and cargo-fuzz.
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    if ! command -v rustup >/dev/null 2>&1; then
        echo "rustup not found: the fuzz targets need a nightly toolchain (https://rustup.rs)" >&2
        exit 1
    fi
    echo "installing the nightly toolchain (for cargo fuzz)"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi
