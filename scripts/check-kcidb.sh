#!/bin/sh
# Validates a `kfuzz regress --kcidb FILE` output against the real KCIDB I/O schema, from
# KernelCI's kcidb-io Python package: the exact schema version the file claims (v5.3), and
# the latest one the package knows. Optional, not run in CI (it needs Python and, unless
# KCIDB_IO points at a copy, the network). Our CI validates against our own subset of the
# schema instead (tests/fixtures/kcidb/, tests/integration/ci_report.rs).
#
#   scripts/check-kcidb.sh FILE
#
# Where kcidb-io comes from, first found:
#   KCIDB_IO=DIR   a kcidb-io git repository (its HEAD is used) or an unpacked source tree;
#   an installed kcidb_io module (`pip install kcidb-io`);
#   a shallow clone of https://github.com/kernelci/kcidb-io.
# Needs python3 with jsonschema (Debian: apt-get install python3-jsonschema).
#
# A sample to try: `cargo test --release --test integration ci_report` writes target/tmp/kcidb-sample.json.
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 FILE" >&2
    exit 2
fi
file=$1
[ -f "$file" ] || { echo "$file: no such file" >&2; exit 2; }
python3 -c 'import jsonschema' 2>/dev/null || {
    echo "python3 has no jsonschema module: apt-get install python3-jsonschema (or pip install jsonschema)" >&2
    exit 2
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=""
if [ -n "${KCIDB_IO:-}" ]; then
    if git -C "$KCIDB_IO" rev-parse --git-dir >/dev/null 2>&1; then
        git -C "$KCIDB_IO" archive HEAD | tar -x -C "$tmp"
        echo "kcidb-io: $(git -C "$KCIDB_IO" log -1 --format='%h %s' HEAD) (KCIDB_IO)"
        src=$tmp
    else
        src=$KCIDB_IO
        echo "kcidb-io: $src (KCIDB_IO)"
    fi
elif python3 -c 'import kcidb_io' 2>/dev/null; then
    echo "kcidb-io: the installed module"
else
    git clone -q --depth 1 https://github.com/kernelci/kcidb-io "$tmp/kcidb-io"
    echo "kcidb-io: $(git -C "$tmp/kcidb-io" log -1 --format='%h %s' HEAD) (cloned)"
    src=$tmp/kcidb-io
fi
PYTHONPATH="${src}${PYTHONPATH:+:$PYTHONPATH}" python3 - "$file" <<'PY'
import json
import sys

import jsonschema
import kcidb_io

path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    data = json.load(f)
claimed = data.get("version", {})
exact = None
for v in kcidb_io.schema.LATEST.history:
    if (v.major, v.minor) == (claimed.get("major"), claimed.get("minor", 0)):
        exact = v
if exact is None:
    sys.exit(f"{path}: claims version {claimed}, which kcidb-io does not know")
failed = False
for name, check in (
    (f"v{exact.major}.{exact.minor} (exactly)", exact.validate_exactly),
    (f"v{kcidb_io.schema.LATEST.major}.{kcidb_io.schema.LATEST.minor} (latest)",
     kcidb_io.schema.LATEST.validate),
):
    try:
        check(data)
        print(f"{path}: valid against the KCIDB I/O schema {name}")
    except jsonschema.exceptions.ValidationError as e:
        failed = True
        where = "/".join(str(p) for p in e.absolute_path)
        print(f"{path}: NOT valid against {name}: at /{where}: {e.message}")
counts = ", ".join(f"{len(data.get(k, []))} {k}"
                   for k in ("checkouts", "builds", "tests", "issues", "incidents"))
print(f"{path}: {counts}")
sys.exit(1 if failed else 0)
PY
