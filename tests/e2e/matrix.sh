#!/usr/bin/env bash
# The matrix on real containers: three cells (PostgreSQL 13, 15, 17) with
# --jobs 2 must give three passing JUnit testcases; a deliberately failing
# cell must be reported with its step's output, and cleaned up.
#
#   tests/e2e/matrix.sh     (inside the lab)
set -euo pipefail
CL=${CLUSTERLAB:-target/debug/clusterlab}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "matrix-e2e: FAILED: $*"; exit 1; }

"$CL" matrix clusters/ci.matrix.yaml --jobs 2 --junit "$out/ci.xml" --json "$out/ci.json" ||
  fail "the ci matrix did not pass"
python3 - "$out/ci.xml" <<'PY' || fail "JUnit does not show three passing testcases"
import sys, xml.etree.ElementTree as ET
cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
results = {c.get("name"): [x.tag for x in c if x.tag in ("failure", "error", "skipped")] for c in cases}
print("matrix-e2e: junit", results)
assert len(results) == 3 and all(v == [] for v in results.values()), results
PY

set +e
"$CL" matrix clusters/failing.matrix.yaml --junit "$out/failing.xml"
rc=$?
set -e
[ $rc = 1 ] || fail "the failing matrix exited $rc, expected 1"
grep -q "deliberate failure" "$out/failing.xml" || fail "the failing step's output is not in the JUnit file"
left=$(docker ps -a --format '{{.Names}}' | grep '^clusterlab-pg15-f1-' || true)
[ -z "$left" ] || fail "the failed cell was not destroyed: $left"
echo "matrix-e2e: PASSED"
