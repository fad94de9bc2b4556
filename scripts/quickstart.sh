#!/bin/sh
# From a fresh Debian 12 machine to a fuzzing run: packages, kfuzz, an example tree (Debian's
# linux-source-6.12, unpacked in ~/src), `kfuzz init`, `kfuzz build`, then `kfuzz run --http` (a live
# dashboard) on the defaults (System V IPC) until Ctrl-C, or for KFUZZ_DURATION (e.g. 30m) if set.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
cargo install --locked --path "$here" --root "$HOME/.local"
export PATH="$HOME/.local/bin:$PATH"
tree=${KFUZZ_TREE:-$HOME/src/linux-source-6.12}
if [ ! -f "$tree/Makefile" ]; then
    mkdir -p "$(dirname "$tree")"
    echo "unpacking /usr/src/linux-source-6.12.tar.xz into $(dirname "$tree")"
    tar -C "$(dirname "$tree")" -xf /usr/src/linux-source-6.12.tar.xz
fi
cd "$tree"
kfuzz doctor || true
[ -f kfuzz.toml ] || kfuzz init
kfuzz build
kfuzz run --http ${KFUZZ_DURATION:+--duration "$KFUZZ_DURATION"}
