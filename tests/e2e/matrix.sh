#!/usr/bin/env bash
# The matrix on real containers: every major that runs here (9.4, 10-18) in
# one call with --jobs 2 must give a passing JUnit testcase per major; a
# deliberately failing cell must be reported with its step's output, and
# cleaned up.
#
#   tests/e2e/matrix.sh                  (inside the lab)
#   E2E_NO_PG94=1 tests/e2e/matrix.sh    without the 9.4 cell (no 9.4 source: lab/test.sh)
set -euo pipefail
CL=${CLUSTERLAB:-target/debug/clusterlab}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "matrix-e2e: FAILED: $*"; exit 1; }

only=()
majors="9.4 10 11 12 13 14 15 16 17 18"
if [ "${E2E_NO_PG94:-0}" = 1 ]; then
  only=(--filter 'pg1*')
  majors=${majors#9.4 }
fi
"$CL" matrix tests/e2e/specs/all-majors.matrix.yaml "${only[@]}" --jobs 2 --junit "$out/ci.xml" --json "$out/ci.json" ||
  fail "the matrix of every major did not pass"
MAJORS=$majors python3 - "$out/ci.xml" <<'PY' || fail "JUnit does not show a passing testcase per major"
import os, sys, xml.etree.ElementTree as ET
cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
results = {c.get("name"): [x.tag for x in c if x.tag in ("failure", "error", "skipped")] for c in cases}
print("matrix-e2e: junit", results)
majors = os.environ["MAJORS"].split()
assert sorted(results) == sorted(f"pg{m.replace('.', '')}-f2-slots" for m in majors), results
assert all(v == [] for v in results.values()), results
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
