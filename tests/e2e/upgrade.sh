#!/usr/bin/env bash
# The upgrade drill on real machines, for one spec whose box carries newer
# majors: for each TO:METHOD, a table of rows and a writer, `upgrade --check`,
# the upgrade, then every acknowledged row read back (`writes check
# --strict`), every node on the new major with its followers streaming
# through their slots (verify), the table the same on every node as before
# (count and md5 of its rows in order), and `reset`: every node back on the
# spec's major with the known state's data. After --link the followers must
# have been kept by rsync (pg_upgrade's documented procedure), not cloned.
# Before the first upgrade of a
# cluster older than 12 the check must name a table WITH OIDS (blocking) and
# a hash index made before 10 (rebuilt after), and pass once the table is
# fixed; the hash index must answer on the new major.
#
#   tests/e2e/upgrade.sh SPEC TO:METHOD...    (inside the lab)
#   E2E_REUSE=1 tests/e2e/upgrade.sh ...      on a cluster that is up (cluster.sh's E2E_UPGRADE)
set -euo pipefail
spec=$1
shift
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
say() { echo "upgrade[$name]: $*"; }
fail() { say "FAILED: $*"; exit 1; }
# E2E_REUSE=1: the cluster is up already, and its owner destroys it.
if [ "${E2E_REUSE:-0}" != 1 ]; then
  trap '"$CL" -q destroy "$spec" >/dev/null 2>&1 || true' EXIT
fi
from=$(field 'p["version"]')
nodes=$(field '" ".join(n["name"] for n in p["nodes"])')
sql() { "$CL" sql "$spec" "$@"; }
# The table's rows on NODE: "count md5" of them as text, in order.
rows() { sql --node "$1" "SELECT count(*) || ' ' || md5(coalesce(string_agg(r, ',' ORDER BY r), '')) FROM (SELECT t::text AS r FROM accounts t) s"; }
# major NODE: the major NODE's server runs (9.4 or 10 and later).
major() { sql --node "$1" "SELECT CASE WHEN current_setting('server_version_num')::int < 100000 THEN substr(current_setting('server_version_num'), 1, 1) || '.' || (substr(current_setting('server_version_num'), 2, 2)::int) ELSE (current_setting('server_version_num')::int / 10000)::text END"; }
# same_everywhere WANT WHAT: every node has WANT as its rows (followers get 30 s to replay).
same_everywhere() {
  local n got _
  for n in $nodes; do
    for _ in $(seq 1 150); do
      got=$(rows "$n" 2>/dev/null || true)
      [ "$got" = "$1" ] && break
      sleep 0.2
    done
    [ "$got" = "$1" ] || fail "$n has other rows than the leader had $2: $got, not $1"
  done
}

[ "${E2E_REUSE:-0}" = 1 ] || "$CL" up "$spec"
for pair in "$@"; do
  to=${pair%%:*} method=${pair##*:}
  sql "CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric)"
  sql "INSERT INTO accounts SELECT i, 'owner ' || i, i * 1.5 FROM generate_series(1, 20000) i" >/dev/null
  if [ "$from" = 9.4 ] && [ -z "${checked:-}" ]; then
    checked=1
    sql "CREATE TABLE legacy (i int) WITH OIDS"
    sql "CREATE INDEX accounts_owner_hash ON accounts USING hash (owner)"
    rc=0
    "$CL" upgrade "$spec" --to "$to" --check >/tmp/upgrade-check.$$ 2>&1 || rc=$?
    cat /tmp/upgrade-check.$$
    [ "$rc" = 2 ] || fail "upgrade --check exited $rc with a table WITH OIDS, expected 2"
    grep -q "BLOCKS.*table legacy is WITH OIDS" /tmp/upgrade-check.$$ || fail "the check did not name the table WITH OIDS"
    grep -q "fix: ALTER TABLE legacy SET WITHOUT OIDS" /tmp/upgrade-check.$$ || fail "the check did not say how to fix it"
    grep -q "NOTE.*hash index accounts_owner_hash" /tmp/upgrade-check.$$ || fail "the check did not name the hash index"
    [ "$(major "$(field 'p["nodes"][0]["name"]')")" = "$from" ] || fail "the check changed the leader's major"
    say "upgrade --check named the table WITH OIDS (blocking) and the hash index (rebuilt after)"
    sql "ALTER TABLE legacy SET WITHOUT OIDS"
  fi
  "$CL" -q upgrade "$spec" --to "$to" --method "$method" --check
  before=$(rows "$(field 'p["nodes"][0]["name"]')")
  same_everywhere "$before" "before the upgrade"
  "$CL" writes "$spec" start
  start=$SECONDS
  "$CL" upgrade "$spec" --to "$to" --method "$method" 2>&1 | tee /tmp/upgrade-run.$$
  say "$from -> $to by $method took $((SECONDS - start)) s"
  if [ "$method" = link ]; then
    # Caught up when the leader stopped, both followers are kept: the new
    # cluster reaches them by rsync, not by a base backup.
    kept=$(grep -o "[a-z0-9, ]* kept: the new cluster came by rsync" /tmp/upgrade-run.$$ || true)
    for n in $(field '" ".join(n["name"] for n in p["nodes"] if n["role"] == "follower")'); do
      [[ $kept == *"$n"* ]] || fail "$n was not kept by rsync after pg_upgrade --link: $(grep -i "rsync\|caught up\|cloned" /tmp/upgrade-run.$$ || true)"
    done
    say "pg_upgrade --link kept the followers: ${kept# }"
  fi
  "$CL" writes "$spec" check --strict 2>&1 | tee /tmp/upgrade-writes.$$
  grep -Eq " 0 lost; downtime [0-9]+\.[0-9]+ s" /tmp/upgrade-writes.$$ || fail "writes check did not report 0 lost and the downtime"
  "$CL" -q verify "$spec"
  for n in $nodes; do
    [ "$(major "$n")" = "$to" ] || fail "$n runs $(major "$n"), not $to, after the upgrade"
  done
  same_everywhere "$before" "after the upgrade"
  say "every node runs $to, streams through its slot, and has the same $before rows as before"
  if grep -q accounts_owner_hash <(sql "SELECT indexrelid::regclass FROM pg_index WHERE indisvalid"); then
    explain=$(sql "SET enable_seqscan = off; SET enable_bitmapscan = off; EXPLAIN SELECT id FROM accounts WHERE owner = 'owner 77'")
    [[ $explain == *accounts_owner_hash* ]] || fail "the rebuilt hash index is not used: $explain"
    [ "$(sql "SET enable_seqscan = off; SELECT id FROM accounts WHERE owner = 'owner 77'")" = 77 ] || fail "the rebuilt hash index gives a wrong answer"
    say "the hash index made on $from answers on $to"
  elif [ "${checked:-}" = 1 ] && [ "$pair" = "$1" ]; then
    fail "the hash index made on $from is not valid on $to"
  fi
  status=$("$CL" status "$spec")
  [[ $status == *"every node runs PostgreSQL $to"* ]] || fail "status does not say the cluster runs $to: $status"
  "$CL" reset "$spec"
  for n in $nodes; do
    [ "$(major "$n")" = "$from" ] || fail "$n runs $(major "$n") after reset, not the spec's $from"
  done
  [ -z "$(sql "SELECT to_regclass('accounts')")" ] || fail "reset kept the table made after the known state"
  say "reset: every node back on $from, the known state's data"
done
# An upgrade interrupted part-way (SIGTERM, as Ctrl-C does): status must say
# it did not finish and point at reset; reset must bring every node back on
# the spec's major, streaming. Not on a reused cluster (VMs: time).
if [ "${E2E_REUSE:-0}" != 1 ]; then
  "$CL" upgrade "$spec" --to "$to" >/tmp/upgrade-intr.$$ 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    "$CL" status "$spec" >/tmp/upgrade-status.$$ 2>&1 || true
    grep -q "^phase: upgrading" /tmp/upgrade-status.$$ && break
    sleep 0.2
  done
  sleep 2
  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" != 0 ] || fail "the upgrade to $to finished before it could be interrupted: $(cat /tmp/upgrade-intr.$$)"
  status=$("$CL" status "$spec")
  [[ $status == *"an upgrade to $to did not finish"* ]] || fail "status does not say the upgrade did not finish: $status"
  [[ $status == *"clusterlab reset SPEC"* ]] || fail "status does not point at reset: $status"
  "$CL" reset "$spec"
  for n in $nodes; do
    [ "$(major "$n")" = "$from" ] || fail "$n runs $(major "$n") after the reset of an interrupted upgrade, not $from"
  done
  "$CL" -q verify "$spec"
  say "an upgrade to $to interrupted ($(grep -m 1 -o 'interrupted during [a-z ]*' /tmp/upgrade-intr.$$ || true)): status said so; reset brought every node back on $from"
fi
say "PASSED"
