#!/usr/bin/env bash
# Provisioning is idempotent: a second `vagrant provision` of every node
# changes no file, restarts no server, and the cluster still replicates.
#
#   tests/e2e/reprovision.sh SPEC     (inside the lab)
set -euo pipefail
spec=$1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
nodes=$(field '" ".join(n["name"] for n in p["nodes"])')
trap '"$CL" -q destroy "$spec" >/dev/null 2>&1 || true' EXIT

# What must not change: every file clusterlab writes, and each server's start time.
fingerprint() {
  local n
  for n in $nodes; do
    "$CL" ssh "$spec" "$n" -c 'sudo sh -c "md5sum /etc/postgresql/*/main/conf.d/clusterlab.conf /etc/postgresql/*/main/pg_hba.conf /var/lib/postgresql/*/main/postgresql.auto.conf /var/lib/postgresql/*/main/recovery.conf /var/lib/postgresql/*/main/standby.signal /usr/local/sbin/clusterlab-pg 2>/dev/null; true"' </dev/null
    "$CL" sql "$spec" --node "$n" "SELECT pg_postmaster_start_time()"
  done
}

"$CL" up --baseline skip "$spec"
before=$(fingerprint)
# Guard against a fingerprint that silently captured nothing.
[ "$(grep -c 'clusterlab.conf' <<<"$before")" -ge 3 ] || { echo "reprovision[$name]: FAILED: no fingerprint: $before"; exit 1; }
(cd "$workdir" && vagrant provision)
after=$(fingerprint)
if [ "$before" != "$after" ]; then
  diff <(echo "$before") <(echo "$after") || true
  echo "reprovision[$name]: FAILED: a second provisioning changed files or restarted a server"
  exit 1
fi
"$CL" verify "$spec"
echo "reprovision[$name]: PASSED: nothing changed, replication OK"
