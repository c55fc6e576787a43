#!/usr/bin/env bash
# The shipped drills (clusters/drills/*.matrix.yaml) as a user runs them, one
# cell each (the CLI drills run on 9.4, 12 and 18 in drills.sh already;
# upgrade.matrix.yaml has a phase of its own):
# every step of every cell must pass, and the acknowledged-writes drill must
# report its count on both the sync and the async cell.
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

# pair "FILE FILTER" "FILE FILTER": two one-cell drills at once, so both
# cores work (one cell alone leaves one mostly idle while its cluster comes
# up). Each file has a network of its own, but a cell's machines are named
# after the cell (pg18-f2-slots), so the two cells must be of two majors.
# Both must pass.
pair() {
  local a b
  # shellcheck disable=SC2086 # "FILE FILTER": two words each, on purpose
  drill $1 & a=$!
  # shellcheck disable=SC2086
  drill $2 & b=$!
  wait "$a" || fail "$1 did not pass"
  wait "$b" || fail "$2 did not pass"
}

if [ $# -gt 0 ]; then
  drill "$@"
  echo "drill-files: PASSED"
  exit 0
fi
if [ "${E2E_NO_PG94:-0}" = 1 ]; then
  echo "drill-files: failover-and-rejoin pg94, backup-and-pitr pg94: skipped (E2E_NO_PG94=1)"
  pair "failover-and-rejoin pg12" "switchover pg18"
  pair "backup-and-pitr pg18" "partition-and-heal pg12"
else
  pair "failover-and-rejoin pg94" "switchover pg18"
  pair "backup-and-pitr pg94" "partition-and-heal pg12"
fi
# The production failures, one cell each, the majors spread over the files
# (every cell of each passed by hand: docs/production-failures.md); the
# message each log expectation matched must be in the report.
pair "clog-loss pg12" "slot-holds-wal pg18"
grep -q "could not access status of transaction" "$out/clog-loss.xml" || fail "clog-loss: PostgreSQL's message is not in the JUnit file"
pair "wal-loss-during-pitr pg18" "archive-fails pg12"
pair "follower-loses-wal pg18" "slot-lost pg13"
grep -q "has already been removed" "$out/follower-loses-wal.xml" || fail "follower-loses-wal: PostgreSQL's message is not in the JUnit file"
grep -q 'slot \(&quot;\|"\)pg3' "$out/slot-lost.xml" || fail "slot-lost: the invalidation message is not in the JUnit file"
# Three clusters at once here: the two cells of 18 ("pg18" picks both) and 9.4's full disk.
pair "disk-full pg94" "acknowledged-writes pg18 2"
grep -q "0 lost" "$out/acknowledged-writes.xml" || fail "the sync cell's report of lost rows is not in the JUnit file"
grep -q "No space left on device\|could not write init file" "$out/disk-full.xml" || fail "disk-full: PostgreSQL's message is not in the JUnit file"
echo "drill-files: PASSED"
