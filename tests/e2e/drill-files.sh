#!/usr/bin/env bash
# The shipped drills (clusters/drills/*.matrix.yaml) as a user runs them,
# every cell of every file (upgrade.matrix.yaml has a phase of its own,
# lag.matrix.yaml needs VMs): every step of every cell must pass, and the
# messages the log expectations matched must be in the JUnit report.
#
#   tests/e2e/drill-files.sh                 (inside the lab)
#   tests/e2e/drill-files.sh FILE FILTER [JOBS]   one file's cells (e.g. upgrade '*')
#   E2E_NO_PG94=1 tests/e2e/drill-files.sh   without the 9.4 cells (no 9.4 source: lab/test.sh)
set -euo pipefail
CL=${CLUSTERLAB:-target/debug/clusterlab}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "drill-files: FAILED: $*"; exit 1; }

# drill FILE FILTER [JOBS]: runs the cells of FILE that FILTER picks; each must pass.
drill() {
  local file=clusters/drills/$1.matrix.yaml junit=$out/$1.xml start=$SECONDS
  "$CL" matrix "$file" --filter "$2" --jobs "${3:-1}" --junit "$junit" || fail "$1 ($2) did not pass"
  python3 - "$junit" "$1" <<'PY' || fail "$1: the JUnit report does not show every cell passing"
import sys, xml.etree.ElementTree as ET
cases = list(ET.parse(sys.argv[1]).getroot().iter("testcase"))
assert cases, "no testcase"
for c in cases:
    bad = [x.tag for x in c if x.tag in ("failure", "error", "skipped")]
    assert not bad, (c.get("name"), bad)
print(f"drill-files: {sys.argv[2]}: " + ", ".join(c.get("name") for c in cases) + " passed")
PY
  echo "drill-files: $1 took $((SECONDS - start)) s"
}

if [ $# -gt 0 ]; then
  drill "$@"
  echo "drill-files: PASSED"
  exit 0
fi

# Every cell of every shipped drill file but the upgrades and lag (VMs), in
# one run: cells that need the same cluster (one base, one major, one
# topology) share it, reset between them, so 38 cells need 9 clusters.
files=()
for f in clusters/drills/*.matrix.yaml; do
  case $f in */upgrade.matrix.yaml | */lag.matrix.yaml) continue ;; esac
  files+=("$f")
done
filters=(--filter pg12 --filter pg13 --filter pg18)
if [ "${E2E_NO_PG94:-0}" = 1 ]; then
  echo "drill-files: the 9.4 cells: skipped (E2E_NO_PG94=1)"
else
  filters+=(--filter pg94)
fi
start=$SECONDS
junit=$out/all.xml
"$CL" matrix "${files[@]}" "${filters[@]}" --jobs 2 --junit "$junit" || fail "not every cell passed"
python3 - "$junit" "${#files[@]}" <<'PY' || fail "the JUnit report does not show every cell of every file passing"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = list(root.iter("testsuite"))
assert len(suites) == int(sys.argv[2]), f"{len(suites)} suites for {sys.argv[2]} files"
for s in suites:
    cases = list(s.iter("testcase"))
    assert len(cases) >= 2, (s.get("name"), "fewer than two majors")
    for c in cases:
        bad = [x.tag for x in c if x.tag in ("failure", "error", "skipped")]
        assert not bad, (s.get("name"), c.get("name"), bad)
    print(f"drill-files: {s.get('name')}: " + ", ".join(c.get("name") for c in cases) + " passed")
PY
echo "drill-files: every cell took $((SECONDS - start)) s"
# The message each log expectation matched is in the report.
grep -q "could not access status of transaction" "$junit" || fail "clog-loss: PostgreSQL's message is not in the JUnit file"
grep -q "has already been removed" "$junit" || fail "follower-loses-wal: PostgreSQL's message is not in the JUnit file"
grep -q 'slot \(&quot;\|"\)pg3' "$junit" || fail "slot-lost: the invalidation message is not in the JUnit file"
grep -q "0 lost" "$junit" || fail "the sync cell's report of lost rows is not in the JUnit file"
grep -q "No space left on device\|could not write init file" "$junit" || fail "disk-full: PostgreSQL's message is not in the JUnit file"
echo "drill-files: PASSED"
