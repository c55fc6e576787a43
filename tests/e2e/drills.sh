#!/usr/bin/env bash
# The drills on real machines, for one spec: crash the leader, promote a
# follower and prove that every acknowledged row is on it, write on the new
# leader, rejoin the old leader (pg_rewind or a fresh base backup) and prove it
# has every row, switch over back to it (no committed row lost), freeze a
# follower and cut one off (verify must fail each time) and heal them, kill
# the leader under a writer that follows the new leader and read back every
# acknowledged row (the check reports the writer's downtime), take a base
# backup and restore a node to a time between two rows, then reset:
# the spec's topology is back and the drill's rows are gone. Runs on the
# test's own copy of SPEC (see lib.sh).
#
#   tests/e2e/drills.sh SPEC     (inside the lab)
set -euo pipefail
spec=$1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
say() { echo "drills[$name]: $*"; }
fail() { say "FAILED: $*"; exit 1; }
trap '"$CL" -q destroy "$spec" >/dev/null 2>&1 || true' EXIT
leader=$(field 'p["nodes"][0]["name"]')
read -r f1 f2 _ <<<"$(field '" ".join(n["name"] for n in p["nodes"] if n["role"] == "follower")')"
sql() { "$CL" sql "$spec" "$@"; }

# must_fail_verify WHY: verify must notice.
must_fail_verify() {
  local rc=0
  "$CL" -q verify --timeout 5 "$spec" >/dev/null 2>&1 || rc=$?
  [ "$rc" = 3 ] || fail "verify exited $rc after $1, expected 3"
  say "verify caught: $1"
}

# rows NODE: "count sum" of the drill table on NODE.
rows() { sql --node "$1" "SELECT count(*) || ' ' || coalesce(sum(id), 0) FROM drill"; }

# write FROM TO: one acknowledged transaction per 50 rows, on the current leader.
write() {
  local at=$1 from=$2 to=$3 i
  for ((i = from; i <= to; i += 50)); do
    sql --node "$at" "INSERT INTO drill SELECT generate_series($i, $((i + 49)))" >/dev/null
  done
}
expect() { echo "$(($2 - $1 + 1)) $(( ($1 + $2) * ($2 - $1 + 1) / 2 ))"; }

# The background writer (`writes start`) notes each acknowledged row in the
# cluster's working directory ($workdir, set after `up`), one a line.
acked() { wc -l <"$workdir/writes.acked"; }

# writer_went_on AT: the writer acknowledges rows past AT (it found the new
# leader). Not a timing check: 60 s only bounds a writer that never comes back.
writer_went_on() {
  local _
  for _ in $(seq 1 600); do
    [ "$(acked)" -gt "$1" ] && return 0
    sleep 0.1
  done
  fail "the writer acknowledged no row after the handover ($1 before it): $(tail -n 3 "$workdir/writes.log")"
}

# writes_check [--strict]: stops the writer; the report (shown) must give the
# client-visible downtime; the numbers are in /tmp/drills-writes-json.$$.
writes_check() {
  "$CL" writes "$spec" check --json "$@" >/tmp/drills-writes-json.$$ 2>/tmp/drills-writes.$$ || { cat /tmp/drills-writes.$$; fail "writes check $* failed"; }
  cat /tmp/drills-writes.$$
  grep -Eq " [0-9]+ lost" /tmp/drills-writes.$$ || fail "writes check did not report its count"
  grep -Eq "downtime [0-9]+\.[0-9]{3} s" /tmp/drills-writes.$$ || fail "writes check did not report the downtime"
}
# checked KEY: a number of the last writes check.
checked() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' /tmp/drills-writes-json.$$ "$1"; }

# writer_followed AT WHAT: the writer reconnected after WHAT and acknowledged
# rows on the new leader (more than the AT it had when WHAT returned).
writer_followed() {
  [ "$(checked reconnects)" -ge 1 ] || fail "the writer did not reconnect after $2: $(cat "$workdir/writes.log")"
  [ "$(checked acknowledged)" -gt "$1" ] || fail "no row acknowledged after $2 ($(checked acknowledged), $1 before)"
  say "the writer followed the new leader after $2: $(checked acknowledged) rows acknowledged, $1 when $2 returned, $(checked reconnects) reconnect(s), downtime $(checked downtime_seconds) s"
}

"$CL" up "$spec"
workdir=$("$CL" status --json "$spec" | python3 -c 'import json,sys; print(json.load(sys.stdin)["workdir"])')
sql "CREATE TABLE drill (id int PRIMARY KEY)"
write "$leader" 1 1000
# verify writes a marker after the rows and waits until every follower has it.
"$CL" -q verify "$spec"

say "crash the leader $leader"
"$CL" fault "$spec" "$leader" kill
must_fail_verify "the leader crashed"

start=$SECONDS
"$CL" promote "$spec" "$f1"
say "promote took $((SECONDS - start)) s"
[ "$(rows "$f1")" = "$(expect 1 1000)" ] || fail "rows acknowledged before the crash are missing on $f1: $(rows "$f1")"
[ "$(rows "$f2")" = "$(expect 1 1000)" ] || fail "$f2 lost rows after following $f1: $(rows "$f2")"
say "every acknowledged row (1000 in 20 transactions) is on the new leader $f1 and on $f2"
status=$("$CL" status "$spec")
[[ $status == *"  $f1 (leader)"* && $status == *"differs from the spec"* ]] || fail "status does not show the live topology: $status"

write "$f1" 1001 1500
start=$SECONDS
"$CL" rejoin "$spec" "$leader" | tee /tmp/drills-rejoin.$$
say "rejoin took $((SECONDS - start)) s"
"$CL" -q verify "$spec"
[ "$(rows "$leader")" = "$(expect 1 1500)" ] || fail "the rejoined $leader does not have every row: $(rows "$leader")"
say "the rejoined $leader has all 1500 rows"

# A planned switchover back to the spec's leader loses no committed row,
# not even one a writer committed while the leader was shutting down; the
# writer goes on on the new leader.
write "$f1" 1501 2000
"$CL" writes "$spec" start
start=$SECONDS
"$CL" switchover "$spec" "$leader"
say "switchover took $((SECONDS - start)) s"
at_handover=$(acked)
writer_went_on "$at_handover"
writes_check --strict
grep -q " 0 lost" /tmp/drills-writes.$$ || fail "writes check --strict passed with lost rows"
writer_followed "$at_handover" "the switchover"
for n in "$leader" "$f1" "$f2"; do
  [ "$(rows "$n")" = "$(expect 1 2000)" ] || fail "$n does not have every committed row after the switchover: $(rows "$n")"
done
say "after the switchover to $leader every node has all 2000 rows"

"$CL" fault "$spec" "$f2" pause
must_fail_verify "$f2 was frozen"
"$CL" fault "$spec" "$f2" heal
"$CL" -q verify "$spec"

"$CL" fault "$spec" "$f2" partition
must_fail_verify "$f2 was cut off from the other nodes"
# The host still reaches it: the drill can look at the node while it is cut off.
[ "$(sql --node "$f2" "SELECT pg_is_in_recovery()")" = t ] || fail "the host cannot reach the partitioned $f2"
"$CL" fault "$spec" "$f2" heal
"$CL" -q verify "$spec"

# A failing archive: verify names it (a warning: replication works), heal
# lets the archiver catch up. Only where the spec archives.
if [ "$(field 'p["archive"]')" = True ]; then
  said=$("$CL" fault "$spec" "$leader" archive-fail)
  [[ $said == *"archive command failed"* ]] || fail "archive-fail did not say what PostgreSQL logs: $said"
  for _ in $(seq 1 100); do
    "$CL" verify "$spec" >/tmp/drills-verify.$$ 2>&1 || fail "verify failed with only the archive failing: $(cat /tmp/drills-verify.$$)"
    grep -q "archiver failing" /tmp/drills-verify.$$ && break
    sleep 0.1
  done
  grep -q "archiver failing" /tmp/drills-verify.$$ || fail "verify did not name the failing archiver: $(cat /tmp/drills-verify.$$)"
  "$CL" fault "$spec" "$leader" heal
  for _ in $(seq 1 100); do
    "$CL" verify "$spec" >/tmp/drills-verify.$$ 2>&1
    grep -q "archiver failing" /tmp/drills-verify.$$ || break
    sleep 0.1
  done
  ! grep -q "archiver failing" /tmp/drills-verify.$$ || fail "the archiver did not catch up after heal: $(cat /tmp/drills-verify.$$)"
  say "archive-fail: verify named the failing archiver; heal let it catch up"
fi

# A slot holding WAL for a stopped follower: verify fails (the follower is
# down) and shows what its slot holds on the upstream; heal brings it back.
"$CL" fault "$spec" "$f2" slot-hold
write "$leader" 2001 2500
rc=0
"$CL" verify --timeout 3 "$spec" >/tmp/drills-verify.$$ 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "verify exited $rc with $f2 stopped, expected 3"
held=$(awk -v n="$f2" '$1 == n {print $8, $9}' /tmp/drills-verify.$$)
[[ $held =~ ^[0-9.]+\ (kB|MB|GB)$ ]] || fail "verify did not show the WAL $f2's slot holds: $(cat /tmp/drills-verify.$$)"
# status shows it too, read from PostgreSQL without a test row; from 17 the
# server says since when the slot is inactive (pg_replication_slots.inactive_since).
"$CL" status "$spec" >/tmp/drills-status.$$ 2>&1 || fail "status failed with $f2 stopped: $(cat /tmp/drills-status.$$)"
grep -Eq "^$f2 .* inactive +[0-9.]+ (kB|MB|GB) .*slot $f2 on $leader is not active" /tmp/drills-status.$$ ||
  fail "status did not show the WAL $f2's slot holds: $(cat /tmp/drills-status.$$)"
major=$(field 'p["version"]')
if [ "${major%%.*}" -ge 17 ]; then
  grep -Eq "slot $f2 on $leader is not active since 20[0-9-]+ [0-9:.]+" /tmp/drills-status.$$ ||
    fail "status did not say since when $f2's slot is inactive: $(cat /tmp/drills-status.$$)"
fi
say "status: $(grep -E "^$f2 " /tmp/drills-status.$$ | tr -s ' ')"
"$CL" fault "$spec" "$f2" heal
"$CL" -q verify "$spec"
[ "$(rows "$f2")" = "$(expect 1 2500)" ] || fail "$f2 did not catch up through its slot after heal: $(rows "$f2")"
say "slot-hold: the stopped $f2's slot held $held; after heal it has every row"

# A slow link (tc netem, where the node's kernel has it: the VM guests; a
# container shares the host's kernel, which has none here): the test row
# verify writes reaches the slowed follower no sooner than the delay; heal
# takes it away. Where netem is missing, the refusal must say so.
row_ms() {
  "$CL" verify --json "$spec" 2>/dev/null | python3 -c "import json,sys; print(next(n['row_ms'] for n in json.load(sys.stdin)['nodes'] if n['node'] == sys.argv[1]))" "$1"
}
if said=$("$CL" fault "$spec" "$f2" lag 400 2>&1); then
  slow=$(row_ms "$f2")
  [ "$slow" -ge 400 ] || fail "with 400 ms of lag the test row reached $f2 in $slow ms"
  "$CL" fault "$spec" "$f2" heal
  fast=$(row_ms "$f2")
  [ "$fast" -lt 400 ] || fail "after heal the test row still took $fast ms to reach $f2"
  say "lag: the test row reached $f2 in $slow ms with 400 ms of lag, in $fast ms after heal"
else
  [[ $said == *"has no netem"* ]] || fail "lag failed without saying why: $said"
  say "lag: refused where the kernel has no netem (as it must be here on docker)"
fi

# The commit log's newest segment lost on a follower: a standby starts
# anyway (recovery reads the missing segment as zeroes, PostgreSQL logs it),
# so rows of transactions before its restartpoint may look uncommitted
# there; status says what is gone; heal puts the segment back and the
# follower has every row. (On a leader PostgreSQL refuses to start:
# clusters/drills/clog-loss.matrix.yaml.)
said=$("$CL" fault "$spec" "$f2" clog-loss)
[[ $said == *"doesn't exist, reading as zeroes"* ]] || fail "clog-loss did not show PostgreSQL's message: $said"
st=$("$CL" status "$spec")
grep -q "$f2 lost " <<<"$st" || fail "status does not say what $f2 lost: $st"
seen=$(rows "$f2" 2>&1 || true)
"$CL" fault "$spec" "$f2" heal
"$CL" -q verify "$spec"
[ "$(rows "$f2")" = "$(expect 1 2500)" ] || fail "$f2 is missing rows after the commit log came back: $(rows "$f2")"
say "clog-loss: $f2 started without its commit log (count and sum of the drill table there: $seen, of $(expect 1 2500)); heal put the segment back"

# The WAL segment f2 needs next gone from the leader (its slot held it):
# f2 cannot stream and says so; rejoin clones it again, with the rows
# written meanwhile.
said=$("$CL" fault "$spec" "$f2" wal-loss)
[[ $said == *"has already been removed"* ]] || fail "wal-loss did not show PostgreSQL's message: $said"
write "$leader" 2501 2600
must_fail_verify "$f2 cannot stream"
"$CL" rejoin "$spec" "$f2"
"$CL" -q verify "$spec"
[ "$(rows "$f2")" = "$(expect 1 2600)" ] || fail "$f2 is missing rows after it was cloned again: $(rows "$f2")"
say "wal-loss: $f2 could not stream; rejoin cloned it again with every row"

# A full disk (specs with resources.disk: a filesystem of each node's own):
# on the leader a write that needs room fails with PostgreSQL's error, status
# says so, heal frees the room and every row written before is there; on a
# follower the WAL it must write next fails, and heal lets it catch up.
if [ "$(field 'p["disk"] and p["disk"]["mib"] or ""')" != "" ]; then
  # PostgreSQL names the device, or (a session that must write the relation
  # cache's init file first) says only that it could not.
  # (miette may fold the message over two lines.)
  full() { [[ $1 == *"No space left"* || $1 == *"could not write init file"* ]]; }
  said=$("$CL" fault "$spec" "$leader" disk-full)
  full "$said" || fail "disk-full did not show PostgreSQL's message: $said"
  if err=$(sql --node "$leader" "INSERT INTO drill SELECT generate_series(100001, 200000)" 2>&1); then
    fail "a write that needs room succeeded on a full disk"
  fi
  full "$err" || fail "the failed write did not say the disk is full: $err"
  st=$("$CL" status "$spec")
  grep -q "disk full.*$leader" <<<"$st" || fail "status does not say $leader's disk is full: $st"
  "$CL" fault "$spec" "$leader" heal
  "$CL" -q verify "$spec"
  sql --node "$leader" "CREATE TABLE after_disk_full AS SELECT generate_series(1, 100000) AS id" >/dev/null
  for n in "$leader" "$f1" "$f2"; do
    [ "$(rows "$n")" = "$(expect 1 2600)" ] || fail "$n is missing rows after the disk was freed: $(rows "$n")"
  done
  said=$("$CL" fault "$spec" "$f1" disk-full)
  full "$said" || fail "disk-full on $f1 did not show PostgreSQL's message: $said"
  "$CL" fault "$spec" "$f1" heal
  "$CL" -q verify "$spec"
  # (What the follower could not write: its next WAL segment, or with pg_wal
  # on a filesystem of its own, a table's file it replays.)
  said=${said#*Its log: }
  say "disk-full: the leader's write failed (${err%%$'\n'*}), and $f1's (${said%%$'\n'*}); heal freed both, every row is on every node"
fi

# Acknowledged writes across a crash: a writer commits rows one by one while
# the leader is killed; after the promote every row whose COMMIT returned is
# there (with sync replication; with async, the check reports the loss), and
# the writer, which lost its leader, reconnected to the new one and wrote on.
sync=$(field 'p["synchronous_standby_names"] or ""')
"$CL" writes "$spec" start --min-rows 200
"$CL" fault "$spec" "$leader" kill
"$CL" promote "$spec" "$f1"
at_handover=$(acked)
writer_went_on "$at_handover"
writes_check
writer_followed "$at_handover" "the promote of $f1"
if [ -n "$sync" ]; then
  grep -q " 0 lost" /tmp/drills-writes.$$ || fail "synchronous replication lost acknowledged rows"
  say "sync ($sync): no acknowledged row lost when the leader was killed mid-write"
fi
"$CL" rejoin "$spec" "$leader"

# Backup and point-in-time restore: a row written before the target is
# there, one written after is not; the other nodes come back on the
# restored history. PITR needs the WAL archive; without it restore refuses.
"$CL" backup "$spec" --name b1 | tee /tmp/drills-backup.$$
grep -q "^b1: " /tmp/drills-backup.$$ || fail "backup printed no summary"
[[ $("$CL" backups "$spec") == *"b1: "* ]] || fail "backups does not list b1"
sql --node "$f1" "CREATE TABLE pitr (id int PRIMARY KEY); INSERT INTO pitr VALUES (1)"
target=$(sql --node "$f1" "SELECT now()")
sleep 1
sql --node "$f1" "INSERT INTO pitr VALUES (2)"
if "$CL" restore "$spec" nosuch --node "$f2" 2>/tmp/drills-err.$$; then fail "restoring a missing backup was accepted"; fi
grep -q "no backup \`nosuch\`" /tmp/drills-err.$$ || fail "missing backup: unclear error: $(cat /tmp/drills-err.$$)"
if [ "$(field 'p["archive"]')" = True ]; then
  if "$CL" restore "$spec" b1 --node "$f2" --target-time "2000-01-01 00:00:00+00" 2>/tmp/drills-err.$$; then fail "a target before the backup was accepted"; fi
  grep -q "before backup b1 ended" /tmp/drills-err.$$ || fail "early target: unclear error: $(cat /tmp/drills-err.$$)"
  if "$CL" restore "$spec" b1 --node "$f2" --target-time "not a time" 2>/tmp/drills-err.$$; then fail "a bad time was accepted"; fi
  "$CL" -q verify "$spec"
  start=$SECONDS
  "$CL" restore "$spec" b1 --node "$f2" --target-time "$target"
  say "restore to $target took $((SECONDS - start)) s"
  [ "$(sql --node "$f2" "SELECT string_agg(id::text, ',' ORDER BY id) FROM pitr")" = 1 ] || fail "PITR: pitr has $(sql --node "$f2" "SELECT string_agg(id::text, ',') FROM pitr"), expected only 1"
  [ "$(rows "$f2")" = "$(expect 1 2600)" ] || fail "PITR: $f2 lost rows of the drill table: $(rows "$f2")"
  "$CL" rejoin "$spec" "$f1"
  "$CL" rejoin "$spec" "$leader"
  "$CL" -q verify "$spec"
  [ "$(sql --node "$leader" "SELECT count(*) FROM pitr")" = 1 ] || fail "$leader did not come back on the restored history"
  say "PITR of $f2 to the time between the two rows: row 1 there, row 2 not; $f1 and $leader follow it again"
  # A standby rebuilt from the backup: the archive carries it across the
  # restore's new timeline, then it streams from the leader.
  "$CL" restore "$spec" b1 --node "$f1" --as follower
  "$CL" -q verify "$spec"
  [ "$(sql --node "$f1" "SELECT count(*) FROM pitr")" = 1 ] || fail "$f1, restored as a follower, is not on the leader's history"
  say "restore --as follower: $f1 follows $f2 again, started from b1"
else
  if "$CL" restore "$spec" b1 --node "$f2" --target-name x 2>/tmp/drills-err.$$; then fail "PITR without an archive was accepted"; fi
  grep -q "needs the WAL archive" /tmp/drills-err.$$ || fail "PITR without archive: unclear error: $(cat /tmp/drills-err.$$)"
fi

# Bad input leaves the cluster as it was.
now_leader=$("$CL" status --json "$spec" | python3 -c 'import json,sys; print((json.load(sys.stdin)["state"].get("live") or {}).get("leader", ""))')
now_leader=${now_leader:-$leader}
if "$CL" promote "$spec" "$now_leader" 2>/tmp/drills-err.$$; then fail "promoting the leader was accepted"; fi
grep -q "already" /tmp/drills-err.$$ || fail "promoting the leader: unclear error: $(cat /tmp/drills-err.$$)"
if "$CL" promote "$spec" nosuchnode 2>/tmp/drills-err.$$; then fail "promoting a missing node was accepted"; fi
if "$CL" rejoin "$spec" "$now_leader" 2>/tmp/drills-err.$$; then fail "rejoining the leader was accepted"; fi
if "$CL" backup "$spec" --name b1 2>/tmp/drills-err.$$; then fail "a second backup named b1 was accepted"; fi
rm -f /tmp/drills-status.$$ /tmp/drills-verify.$$ /tmp/drills-err.$$ /tmp/drills-rejoin.$$ /tmp/drills-writes.$$ /tmp/drills-writes-json.$$ /tmp/drills-backup.$$
"$CL" -q verify "$spec"

"$CL" fault "$spec" "$f1" pause
"$CL" reset "$spec"
[ "$(sql "SELECT to_regclass('drill') IS NULL")" = t ] || fail "the drill's table survived the reset"
status=$("$CL" status "$spec")
[[ $status != *"live topology"* ]] || fail "reset left a live topology: $status"
say "reset brought back $leader as the leader, thawed $f1 and removed the drill's rows"

if [ -z "$sync" ]; then
  # A follower ahead of the one promoted (asynchronous replication): $f1 is
  # stopped while a table reaches $f2 only, the leader dies, $f1 starts
  # again (with no upstream to stream from) and is promoted. (Not a
  # partition: the killed leader's kernel still retransmits what its socket
  # held once the routes are back, so $f1 may get the table after all.)
  # $f2 has WAL $f1 never received and cannot stream from it: the promote
  # must see that and rewind (or re-clone) $f2, whose extra table is gone,
  # as it is from every surviving node in a real failover.
  "$CL" fault "$spec" "$f1" stop
  sql "CREATE TABLE ahead AS SELECT generate_series(1, 100) AS x"
  for _ in $(seq 1 100); do
    [ "$(sql --node "$f2" "SELECT to_regclass('ahead') IS NOT NULL")" = t ] && break
    sleep 0.1
  done
  [ "$(sql --node "$f2" "SELECT to_regclass('ahead') IS NOT NULL")" = t ] || fail "the table did not reach $f2"
  "$CL" fault "$spec" "$leader" kill
  "$CL" fault "$spec" "$f1" heal
  "$CL" promote "$spec" "$f1" 2>&1 | tee /tmp/drills-ahead.$$
  grep -q "$f2 replayed WAL $f1 never received" /tmp/drills-ahead.$$ || fail "the promote did not notice that $f2 was ahead of $f1"
  # (The promote's verify proved that $f2 streams from $f1 again.)
  has_ahead() { sql --node "$1" "SELECT count(*) FROM pg_class WHERE relname = 'ahead'"; }
  [ "$(has_ahead "$f2")" = "$(has_ahead "$f1")" ] || fail "$f2 and the new leader $f1 disagree on the table only $f2 and the dead leader had"
  rm -f /tmp/drills-ahead.$$
  say "a follower ahead of the promoted one was rewound onto its timeline and streams from it"
  "$CL" -q reset "$spec"
fi

"$CL" destroy "$spec"
trap - EXIT
say "PASSED"
