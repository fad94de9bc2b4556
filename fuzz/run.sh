#!/bin/sh
# Fuzzes every cargo-fuzz target (or the ones named) for SECONDS each, one after the other,
# starting from fuzz/corpus/<target> (made from fuzz/seeds/ and the repository's own fixtures).
# Exits non-zero at the first target that finds something (its input is in fuzz/artifacts/).
# Usage: fuzz/run.sh SECONDS [TARGET...]
set -eu
cd "$(dirname "$0")"
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=${*:-$(cargo +nightly fuzz list)}

# The inputs each target starts from: committed seeds, plus the real files kfuzz parses.
seed() {
    mkdir -p "corpus/$1"
    [ ! -d "seeds/$1" ] || cp seeds/"$1"/* "corpus/$1/"
    case $1 in
        descriptions) cp ../descriptions/linux/*.txt ../tests/fixtures/descriptions/*.txt "corpus/$1/" ;;
        kconfig) cp ../kconfig-fragments/*.config "corpus/$1/" ;;
        report) cp ../tests/fixtures/reports/*.log "corpus/$1/" ;;
    esac
}

# Longest input per target: a few times its largest real input.
max_len() {
    case $1 in
        report) echo 32768 ;;
        descriptions) echo 16384 ;;
        *) echo 8192 ;;
    esac
}

for t in $targets; do
    seed "$t"
    echo "fuzzing $t for ${seconds}s"
    cargo +nightly fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
        -print_final_stats=1
done
