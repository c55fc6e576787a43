#!/usr/bin/env bash
# An `up` interrupted midway (SIGTERM, as CI or a user's kill sends it) stops,
# records the phase, exits non-zero; `status` explains it and `destroy` then
# leaves no domain, volume, snapshot or network of the cluster in libvirt.
#
#   tests/e2e/interrupt.sh SPEC     (a libvirt spec, inside the lab)
set -euo pipefail
spec=$1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
prefix=$(field 'p["network"].rsplit(".", 1)[0] + "."')
say() { echo "interrupt[$name]: $*"; }
fail() { say "FAILED: $*"; exit 1; }
trap '"$CL" -q destroy "$spec" >/dev/null 2>&1 || true' EXIT

"$CL" up "$spec" > "/tmp/interrupt-$name.log" 2>&1 &
pid=$!
# Midway: once the first machine of the cluster runs.
for _ in $(seq 1 600); do
  [[ $'\n'$(virsh list --name) == *$'\n'"clusterlab-$name-"* ]] && break
  kill -0 "$pid" 2>/dev/null || fail "up ended before any machine ran: $(tail -5 "/tmp/interrupt-$name.log")"
  sleep 1
done
sleep 5
say "sending SIGTERM to clusterlab up (PID $pid)"
kill -TERM "$pid"
set +e
wait "$pid"
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "an interrupted up exited 0"
phase=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["phase"])' "$workdir/state.json")
[ "$phase" = interrupted ] || fail "state.json says phase $phase, expected interrupted"
"$CL" status "$spec" | tee "/tmp/interrupt-$name.status"
grep -q "phase: interrupted" "/tmp/interrupt-$name.status" || fail "status does not explain the interrupted up"
say "up exited $rc, phase recorded: $phase"

"$CL" destroy "$spec"
left=$(virsh list --all --name | grep "^clusterlab-$name-" || true)
[ -z "$left" ] || fail "domains left: $left"
vols=$(virsh vol-list default | awk 'NR > 2 && $1 != "" {print $1}' | grep "^clusterlab-$name-" || true)
[ -z "$vols" ] || fail "volumes left: $vols"
for net in $(virsh net-list --all --name); do
  if [[ $(virsh net-dumpxml "$net") == *"address='$prefix"* ]]; then
    fail "libvirt network $net for $prefix* is left"
  fi
done
[ ! -e "$workdir" ] || fail "the working directory is left"
trap - EXIT
say "PASSED: no domain, volume, snapshot or network left"
