#!/usr/bin/env bash
# End-to-end on real machines, for one spec: up -> verify -> write rows ->
# break a follower (verify must fail) -> reset (rows gone, follower back,
# verify passes) -> destroy -> nothing left behind. Cleans up on any failure.
# Runs on the test's own copy of SPEC (see lib.sh), never on a user's cluster.
#
#   tests/e2e/cluster.sh SPEC
#   E2E_RESETS="snapshot data" tests/e2e/cluster.sh SPEC   # keep both known states, reset with each
#   E2E_REPROVISION=1 tests/e2e/cluster.sh SPEC            # also: provisioning twice is a no-op
#   E2E_UPGRADE="15:link" tests/e2e/cluster.sh SPEC        # also: upgrade.sh on the same machines, before destroy
#
# Run it inside the lab (`lab/lab.sh exec tests/e2e/cluster.sh SPEC`).
set -euo pipefail
spec=$1
resets=${E2E_RESETS:-default}
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
followers=$(field '" ".join(n["name"] for n in p["nodes"] if n["role"] == "follower")')
first_follower=${followers%% *}
first_machine=$(field '[n["machine"] for n in p["nodes"] if n["role"] == "follower"][0]')

say() { echo "e2e[$name]: $*"; }
vagrant_provision() { (cd "$workdir" && vagrant provision); }
fail() { say "FAILED: $*"; exit 1; }
timed() {
  local start=$SECONDS
  "$@"
  say "$(basename "$1") ${2:-} took $((SECONDS - start)) s"
}
cleanup() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    say "cleaning up after a failure (exit $rc)"
    "$CL" status "$spec" || true
  fi
  "$CL" -q destroy "$spec" >/dev/null 2>&1 || true
}
trap cleanup EXIT

baseline=()
[ "$resets" = default ] || baseline=(--baseline both)
timed "$CL" up "${baseline[@]}" "$spec"
saved_at=$(date +%s)
timed "$CL" verify "$spec"
# Every node says what its WAL directory and its databases take: a disk
# statement that fails on some major shows as a warning, not as a failure,
# so only this catches it.
disk=$("$CL" verify --json "$spec" | python3 -c '
import json, sys
r = json.load(sys.stdin)
bad = [n["node"] for n in r["nodes"] if not n.get("wal_dir_bytes") or not n.get("databases_bytes") or any(w.startswith("disk use not read") for w in n.get("warnings", []))]
if bad:
    sys.exit("no disk use from %s: %s" % (bad, json.dumps(r["nodes"])))
print(", ".join("%s %s/%s" % (n["node"], n["wal_dir_bytes"], n["databases_bytes"]) for n in r["nodes"]))
') || fail "verify did not report disk use on every node"
say "disk use (WAL directory/databases, bytes): $disk"
# What the known state's replication timeouts are: a VM snapshot holds them
# off for its own restore, and the reset must put these back.
timeouts() {
  for n in $(field '" ".join(n["name"] for n in p["nodes"])'); do
    echo "$n $("$CL" sql "$spec" --node "$n" "SELECT current_setting('wal_sender_timeout') || ' ' || current_setting('wal_receiver_timeout')")"
  done
}
timeouts_before=$(timeouts)

# Idempotent provisioning, on the same cluster: a second `vagrant provision`
# of every node changes no file clusterlab writes and restarts no server.
fingerprint() {
  local n
  for n in $(field '" ".join(n["name"] for n in p["nodes"])'); do
    "$CL" ssh "$spec" "$n" -c 'sudo sh -c "md5sum /etc/postgresql/*/main/conf.d/clusterlab.conf /etc/postgresql/*/main/pg_hba.conf /var/lib/postgresql/*/main/postgresql.auto.conf /var/lib/postgresql/*/main/recovery.conf /var/lib/postgresql/*/main/standby.signal /usr/local/sbin/clusterlab-pg 2>/dev/null; true"' </dev/null
    "$CL" sql "$spec" --node "$n" "SELECT pg_postmaster_start_time()"
  done
}
if [ "${E2E_REPROVISION:-0}" = 1 ]; then
  before=$(fingerprint)
  # Guard against a fingerprint that silently captured nothing.
  [ "$(grep -c 'clusterlab.conf' <<<"$before")" -ge 3 ] || fail "no fingerprint: $before"
  timed vagrant_provision
  after=$(fingerprint)
  if [ "$before" != "$after" ]; then
    diff <(echo "$before") <(echo "$after") || true
    fail "a second provisioning changed files or restarted a server"
  fi
  "$CL" -q verify "$spec"
  say "a second provisioning changed nothing and restarted nothing"
fi

"$CL" sql "$spec" "CREATE TABLE e2e_after_up AS SELECT generate_series(1, 100) AS x"
"$CL" -q verify "$spec" # the table has reached every follower now
# Delayed standbys (and those below one) apply the rows only after their delay.
prompt=$(field '" ".join(n["name"] for n in p["nodes"] if n["role"] == "follower" and not any(m.get("apply_delay") for m in p["nodes"] if m["name"] in (n["name"], n["upstream"])))')
for n in $prompt; do
  [ "$("$CL" sql "$spec" --node "$n" "SELECT count(*) FROM e2e_after_up")" = 100 ] || fail "rows did not reach $n"
done

# A verify that cannot fail is worthless: stop one follower and expect a failure.
if [ "$provider" = docker ]; then
  docker exec "$first_machine" clusterlab-pg stop
else
  "$CL" ssh "$spec" "$first_follower" -c "sudo clusterlab-pg stop" </dev/null
fi
set +e
"$CL" verify --timeout 5 "$spec" > /tmp/e2e-broken.$$ 2>&1
rc=$?
set -e
grep -q "$first_follower" /tmp/e2e-broken.$$ || { cat /tmp/e2e-broken.$$; fail "verify did not name the broken follower"; }
rm -f /tmp/e2e-broken.$$
[ $rc = 3 ] || fail "verify of a broken cluster exited $rc, expected 3"
say "verify caught the stopped follower $first_follower (exit 3)"

# pg_wal on a filesystem of its own (resources.wal_disk): a follower's, filled,
# stops streaming; the resets below must keep each pg_wal a link to it.
wal_disk=$(field 'p["wal_disk"] and p["wal_disk"]["mount"] or ""')
wal_links() {
  local n link
  link=$(field 'p["facts"]["data_dir"] + "/" + p["facts"]["wal_dir"]')
  for n in $(field '" ".join(n["name"] for n in p["nodes"])'); do
    "$CL" -q ssh "$spec" "$n" -c "sudo test -L $link" || fail "$1: $link on $n is not a link to $wal_disk"
  done
  say "$1: $link is a link to $wal_disk on every node"
}
if [ -n "$wal_disk" ]; then
  wal_links "after up"
  last=${followers##* }
  said=$("$CL" fault "$spec" "$last" disk-full --wal)
  [[ $said == *"No space left"* ]] || fail "disk-full --wal did not show PostgreSQL's message: $said"
  say "disk-full --wal: ${said%%$'\n'*}"
fi
# A data directory on a filesystem of its own (resources.disk): filled, the
# leader says so in PostgreSQL's words; the reset below must free it (a VM
# snapshot holds the second disk too), and destroy must leave no volume.
if [ -n "$(field 'p["disk"] and p["disk"]["mib"] or ""')" ]; then
  leader=$(field 'p["nodes"][0]["name"]')
  said=$("$CL" fault "$spec" "$leader" disk-full)
  [[ $said == *"No space left"* || $said == *"could not write init file"* ]] || fail "disk-full did not show PostgreSQL's message: $said"
  say "disk-full: ${said%%$'\n'*}"
fi

for method in $resets; do
  opts=()
  [ "$method" = default ] || opts=(--method "$method")
  if [ "$method" = snapshot ]; then
    # The clock check below can only fail if the snapshot is older than
    # its tolerance: make it at least 20 s old.
    age=$(( $(date +%s) - saved_at ))
    [ "$age" -ge 20 ] || sleep $(( 20 - age ))
  fi
  if [ "$method" = snapshot ] && [ "$provider" = libvirt ]; then
    # Each node's clock and timeouts must have gone through the box's
    # clusterlab-settle: the guest agent, the fallback for other boxes, would
    # hide a helper that does not work.
    RUST_LOG=clusterlab::providers::libvirt=debug timed "$CL" reset "${opts[@]}" "$spec" 2>/tmp/e2e-reset.$$
    settled=$(grep -c "done by clusterlab-settle" /tmp/e2e-reset.$$ || true)
    nodes=$(field 'len(p["nodes"])')
    [ "$settled" = $((2 * nodes)) ] || { cat /tmp/e2e-reset.$$; rm -f /tmp/e2e-reset.$$; fail "clusterlab-settle did $settled of the $((2 * nodes)) requests (clock, timeouts) of the snapshot reset"; }
    rm -f /tmp/e2e-reset.$$
    say "clusterlab-settle set the clock and the timeouts on all $nodes nodes"
  else
    timed "$CL" reset "${opts[@]}" "$spec"
  fi
  for n in $(field '" ".join(n["name"] for n in p["nodes"])'); do
    [ "$("$CL" sql "$spec" --node "$n" "SELECT to_regclass('e2e_after_up') IS NULL")" = t ] ||
      fail "rows written after up survived the reset ($method) on $n"
  done
  say "reset ($method) removed the rows written after up on every node"
  if [ "$method" = snapshot ]; then
    # A loaded snapshot brings back the clock of the moment it was taken (the
    # up, minutes ago): the reset must set each guest clock to the host's.
    for n in $(field '" ".join(n["name"] for n in p["nodes"])'); do
      skew=$(( $(date +%s) - $("$CL" sql "$spec" --node "$n" "SELECT extract(epoch FROM now())::bigint") ))
      [ "${skew#-}" -le 2 ] || fail "after the snapshot reset $n's clock is ${skew} s off the host's"
    done
    say "after the snapshot reset every guest clock is within 2 s of the host's (the snapshot was $(( $(date +%s) - saved_at )) s old)"
    [ "$(timeouts)" = "$timeouts_before" ] || { echo "before: $timeouts_before"; echo "after: $(timeouts)"; fail "the snapshot reset left the replication timeouts changed"; }
    say "after the snapshot reset the replication timeouts are the known state's ($(printf '%s\n' "$timeouts_before" | sed -n '1s/^[^ ]* //p'))"
  fi
  [ -z "$wal_disk" ] || wal_links "after the reset ($method)"
  "$CL" sql "$spec" "CREATE TABLE e2e_after_up AS SELECT 1 AS x" # dirty it again for the next method
  "$CL" -q verify "$spec"
done
timed "$CL" reset "${opts[@]}" "$spec"
timed "$CL" verify "$spec"

# Secrets stay secret: no password in the logs, the state or the rendered files.
while IFS='=' read -r _ pw; do
  if grep -rqF --exclude-dir=secrets -- "$pw" "$workdir"; then
    fail "a password appears in $(grep -rlF --exclude-dir=secrets -- "$pw" "$workdir")"
  fi
done < "$workdir/secrets/passwords"
[ "$(stat -c %a "$workdir/secrets/passwords")" = 600 ] || fail "secrets/passwords is not mode 600"

if [ -n "${E2E_UPGRADE:-}" ]; then
  # The same machines serve the upgrade drill (VMs take minutes to come up).
  # shellcheck disable=SC2086 # one word per TO:METHOD
  E2E_REUSE=1 "$(dirname "$0")/upgrade.sh" "$spec" $E2E_UPGRADE
fi

timed "$CL" destroy "$spec"
trap - EXIT
case "$provider" in
  docker) left=$(docker ps -a --format '{{.Names}}' | grep "^clusterlab-$name-" || true) ;;
  libvirt) left=$( (virsh list --all --name; virsh vol-list default | awk 'NR>2 {print $1}') | grep "^clusterlab-$name-" || true) ;;
  *) left= ;;
esac
[ -z "$left" ] || fail "destroy left behind: $left"
[ ! -e "$(dirname "$spec")/.clusterlab/$name" ] || fail "destroy left the working directory"
say "PASSED"
