#!/usr/bin/env bash
# Measures clusterlab against raw vagrant on a hand-written Vagrantfile
# (bench/raw/), same 3-node PostgreSQL 15 cluster, same machine, one run, and
# prints a Markdown table. Run it inside the lab:
#
#   lab/lab.sh exec bench/bench.sh [docker] [libvirt] [box] [matrix] [pg94] [drills] [followers] [failover] [upgrade]
#
# followers: docker clusters of PostgreSQL 15 with 2, 5 and 8 followers (1
# leader each), one after the other: up, verify and reset (median of 3),
# destroy; how each step grows with the follower count.
#
# verify and reset are the median of 3 runs (libvirt's snapshot reset: of 5). pg94 compiles PostgreSQL 9.4 from
# its release source (docs/pg94-source.md) into an empty cache (cold), again (cached), then brings up
# the 9.4 and the 15 docker clusters one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
CL=${CLUSTERLAB:-target/release/clusterlab}
[ -x "$CL" ] || cargo build --release --offline -q
what=${*:-docker libvirt}
rows=()

secs() { # run a command quietly, print its wall time in seconds
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || { echo "bench: FAILED: $*" >&2; return 1; }
  end=$(date +%s.%N)
  # Hundredths: a reset is compared with a target of 1.5 s.
  printf '%.2f' "$(echo "$end - $start" | bc)"
}
median3() { # median wall time of three runs
  local a b c
  a=$(secs "$@"); b=$(secs "$@"); c=$(secs "$@")
  printf '%s\n%s\n%s\n' "$a" "$b" "$c" | sort -n | sed -n 2p
}
median5() { # median wall time of five runs
  local t=()
  for _ in 1 2 3 4 5; do t+=("$(secs "$@")"); done
  printf '%s\n' "${t[@]}" | sort -n | sed -n 3p
}
row() { rows+=("$(printf '| %-34s | %10s | %10s |' "$1" "$2" "$3")"); }
# failover_rows SPEC: up, a writer, kill the leader, promote pg2, the writer's
# downtime; then destroy.
failover_rows() {
  local spec=$1 v p promote json
  v=$("$CL" check --json "$spec" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
  p=$("$CL" check --json "$spec" | python3 -c 'import json,sys; print(json.load(sys.stdin)["provider"])')
  "$CL" -q destroy "$spec" >/dev/null 2>&1 || true
  "$CL" -q up --baseline skip "$spec" >/dev/null
  "$CL" -q writes "$spec" start --min-rows 200 >/dev/null
  "$CL" -q fault "$spec" pg1 kill
  promote=$(secs "$CL" -q promote "$spec" pg2)
  # Let the writer commit on the new leader before it is stopped.
  sleep 2
  json=$("$CL" -q writes "$spec" check --json)
  row "**$p, PostgreSQL $v: kill pg1, promote pg2, under a writer**" "" ""
  row "promote (fence, repoint, verify)" "$promote" ""
  row "client-visible downtime (longest gap between acknowledged rows)" \
    "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.2f" % d["downtime_seconds"])' <<<"$json")" ""
  row "acknowledged rows lost (asynchronous replication)" \
    "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["lost"])' <<<"$json")" ""
  "$CL" -q destroy "$spec" >/dev/null
}
# upgrade_rows SPEC TO METHOD...: one cluster up, then per METHOD: a writer,
# `upgrade --to TO`, the writer's downtime and losses, and reset (back to the
# spec's major for the next method); then destroy.
upgrade_rows() {
  local spec=$1 to=$2 v method took json
  shift 2
  v=$("$CL" check --json "$spec" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
  "$CL" -q destroy "$spec" >/dev/null 2>&1 || true
  "$CL" -q up "$spec" >/dev/null
  for method in "$@"; do
    "$CL" -q writes "$spec" start --min-rows 200 >/dev/null
    took=$(secs "$CL" -q upgrade "$spec" --to "$to" --method "$method")
    sleep 2
    json=$("$CL" -q writes "$spec" check --json)
    row "**docker, 3 nodes, PostgreSQL $v -> $to, --method $method, under a writer**" "" ""
    row "upgrade (every node, verify included)" "$took" ""
    row "client-visible downtime" "$(python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["downtime_seconds"])' <<<"$json")" ""
    row "acknowledged rows lost" "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["lost"])' <<<"$json")" ""
    row "reset (back to $v), with verify" "$(secs "$CL" -q reset "$spec")" ""
  done
  "$CL" -q destroy "$spec" >/dev/null
}
# cluster_rows SPEC: a cluster's up (cold), verify and reset (medians of 3) and destroy.
cluster_rows() {
  row "up (cold, known state saved)" "$(secs "$CL" -q up "$1")" ""
  row "verify (median of 3)" "$(median3 "$CL" -q verify "$1")" ""
  row "reset (data), with verify (median of 3)" "$(median3 "$CL" -q reset "$1")" ""
  row "destroy" "$(secs "$CL" -q destroy "$1")" ""
}

raw_verify() { # what one checks by hand: the leader sees two streaming followers, they are in recovery
  (cd bench/raw &&
    [[ $(vagrant ssh pg1 -c "sudo -u postgres psql -tAc \"select count(*) from pg_stat_replication where state='streaming'\"") == 2* ]] &&
    [[ $(vagrant ssh pg2 -c "sudo -u postgres psql -tAc 'select pg_is_in_recovery()'") == t* ]] &&
    [[ $(vagrant ssh pg3 -c "sudo -u postgres psql -tAc 'select pg_is_in_recovery()'") == t* ]])
}
raw() { (cd bench/raw && "$@"); }

bench_provider() {
  local p=$1 spec=bench/specs/pg15-$1.yaml
  RAW_NET=10.48.1
  [ "$p" = libvirt ] && RAW_NET=10.48.2
  export RAW_PROVIDER=$p RAW_NET
  "$CL" -q destroy "$spec" >/dev/null 2>&1 || true
  raw vagrant destroy -f >/dev/null 2>&1 || true

  # One cluster at a time: clusterlab's, then raw vagrant's, so neither is
  # measured while the other's machines take the CPU (3 emulated VMs on 2
  # cores are load enough).
  local cl_up cl_verify cl_snap="-" cl_both="-" cl_data cl_destroy
  # up: all nodes provisioned and streaming, and the known state saved where
  # the provider can (raw docker has no way to save one).
  cl_up=$(secs "$CL" -q up "$spec")
  cl_verify=$(median3 "$CL" -q verify "$spec")
  if [ "$p" = libvirt ]; then
    cl_snap=$(median5 "$CL" -q reset --method snapshot "$spec")
    # The data-directory copies as well: provisioning again is a no-op.
    cl_both=$(secs "$CL" -q up --baseline both "$spec")
  fi
  cl_data=$(median3 "$CL" -q reset --method data "$spec")
  cl_destroy=$(secs "$CL" -q destroy "$spec")

  local raw_up raw_verify raw_snap="-" raw_redo="-" raw_destroy
  if [ "$p" = docker ]; then
    raw_up=$(secs raw vagrant up --no-parallel)
  else
    raw_up=$(secs bash -c 'cd bench/raw && vagrant up --no-provision && vagrant provision pg1 && vagrant provision pg2 && vagrant provision pg3 && vagrant snapshot save --force known')
  fi
  raw_verify=$(median3 raw_verify)
  if [ "$p" = libvirt ]; then
    raw_snap=$(median3 raw vagrant snapshot restore --no-provision known)
  else
    raw_redo=$(secs bash -c 'cd bench/raw && vagrant destroy -f && vagrant up --no-parallel')
  fi
  raw_destroy=$(secs raw vagrant destroy -f)

  row "**$p**" "clusterlab" "raw vagrant"
  row "up (3 nodes, cold, known state saved)" "$cl_up" "$raw_up"
  row "verify" "$cl_verify" "$raw_verify"
  if [ "$p" = libvirt ]; then
    row "reset --method snapshot, with verify (median of 5)" "$cl_snap" "$raw_snap"
    row "up again, adding data copies (--baseline both)" "$cl_both" "-"
  fi
  row "reset --method data, with verify" "$cl_data" "-"
  if [ "$p" = docker ]; then
    row "reset by destroy + up (no snapshots)" "-" "$raw_redo"
  fi
  row "destroy" "$cl_destroy" "$raw_destroy"
}

for w in $what; do
  case $w in
    docker|libvirt) bench_provider "$w" ;;
    box)
      cache=$(mktemp -d /var/tmp/clusterlab-bench-cache.XXXX)
      row "**box build (docker, bookworm-pg15)**" "" ""
      row "cold (empty cache)" "$(secs "$CL" -q box build --provider docker --release bookworm --postgres 15 --cache "$cache")" ""
      row "cached rootfs" "$(secs "$CL" -q box build --provider docker --release bookworm --postgres 15 --cache "$cache")" ""
      row "**box build (libvirt, bookworm-pg15)**" "" ""
      row "cold rootfs (kernel flavour)" "$(secs "$CL" -q box build --provider libvirt --release bookworm --postgres 15 --cache "$cache")" ""
      row "cached rootfs" "$(secs "$CL" -q box build --provider libvirt --release bookworm --postgres 15 --cache "$cache")" ""
      rm -rf "$cache" ;;
    pg94)
      cache=$(mktemp -d /var/tmp/clusterlab-bench-cache.XXXX)
      # Looked up as lab/test.sh does (docs/pg94-source.md); never downloaded.
      src=${PG94_SOURCE-../shared/sources/postgresql-9.4.26.tar.gz}
      [ -f "$src" ] || { echo "bench: pg94: no PostgreSQL 9.4 source at ${src:-(empty PG94_SOURCE)}; see docs/pg94-source.md" >&2; exit 2; }
      row "**PostgreSQL 9.4 from source (docker image)**" "" ""
      row "box build --source, cold (compile)" "$(secs "$CL" -q box build --provider docker --postgres 9.4 --source "$src" --cache "$cache")" ""
      row "box build --source, cached build" "$(secs "$CL" -q box build --provider docker --postgres 9.4 --source "$src" --cache "$cache")" ""
      rm -rf "$cache"
      for spec in clusters/pg94-docker.yaml bench/specs/pg15-docker.yaml; do
        v=$("$CL" check --json "$spec" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
        "$CL" -q destroy "$spec" >/dev/null 2>&1 || true
        row "**docker, PostgreSQL $v, 3 nodes**" "" ""
        cluster_rows "$spec"
      done ;;
    drills)
      spec=bench/specs/pg15-docker-drills.yaml
      "$CL" -q destroy "$spec" >/dev/null 2>&1 || true
      "$CL" -q up "$spec"
      row "**drills (docker, PostgreSQL 15, 3 nodes)**" "" ""
      "$CL" -q fault "$spec" pg1 kill
      row "promote pg2 (repoint pg3, fence pg1, verify)" "$(secs "$CL" -q promote "$spec" pg2)" ""
      row "rejoin pg1 (pg_rewind, verify)" "$(secs "$CL" -q rejoin "$spec" pg1)" ""
      row "switchover back to pg1 (clean stop, catch-up, verify)" "$(secs "$CL" -q switchover "$spec" pg1)" ""
      row "reset after the drill (data), with verify" "$(secs "$CL" -q reset "$spec")" ""
      row "backup of the fresh cluster (to the host)" "$(secs "$CL" -q backup "$spec" --name bench)" ""
      "$CL" -q sql "$spec" "CREATE TABLE t AS SELECT 1 AS x"
      target=$("$CL" -q sql "$spec" "SELECT now()")
      "$CL" -q sql "$spec" "INSERT INTO t VALUES (2)"
      row "restore pg3 to a target time (verify)" "$(secs "$CL" -q restore "$spec" bench --node pg3 --target-time "$target")" ""
      [ "$("$CL" -q sql --node pg3 "$spec" "SELECT string_agg(x::text, ',') FROM t")" = 1 ] || { echo "bench: the restore did not stop at the target" >&2; exit 1; }
      row "rejoin pg1 after the restore (pg_rewind)" "$(secs "$CL" -q rejoin "$spec" pg1)" ""
      row "writes start (200 rows acknowledged)" "$(secs "$CL" -q writes "$spec" start --min-rows 200)" ""
      row "writes check" "$(secs "$CL" -q writes "$spec" check)" ""
      "$CL" -q destroy "$spec" ;;
    followers)
      dir=$(mktemp -d /var/tmp/clusterlab-bench-followers.XXXX)
      for n in 2 5 8; do
        spec=$dir/pg15-docker-f$n.yaml
        sed -e "s/^name: .*/name: bench-f$n/" -e "s/^  followers: .*/  followers: $n/" \
          -e "s|^network: .*|network: 10.46.$((10 + n)).0/24|" bench/specs/pg15-docker.yaml >"$spec"
        "$CL" -q destroy "$spec" >/dev/null 2>&1 || true
        row "**docker, PostgreSQL 15, 1 + $n followers**" "" ""
        cluster_rows "$spec"
      done
      rm -rf "$dir" ;;
    failover)
      # The client-visible failover time: a writer commits rows on the leader,
      # the leader is killed (its postmaster and backends), pg2 is promoted at
      # once, the writer finds the new leader; `writes check` reports the
      # longest gap between two acknowledged rows. Docker 15 and 9.4, VMs 15.
      src=${PG94_SOURCE-../shared/sources/postgresql-9.4.26.tar.gz}
      specs=(bench/specs/pg15-docker.yaml bench/specs/pg15-libvirt.yaml)
      if [ -f "$src" ]; then specs=(bench/specs/pg15-docker.yaml clusters/pg94-docker.yaml bench/specs/pg15-libvirt.yaml); fi
      for spec in "${specs[@]}"; do
        failover_rows "$spec"
      done ;;
    upgrade)
      # Upgrade time and client-visible downtime per method, 3-node docker:
      # 9.4 -> 18 (link, copy, dump; the box docs/upgrades.md builds) and
      # 12 -> 18 (logical, dump: the upstream 12 build has no pg_controldata,
      # which pg_upgrade needs of the old major).
      upgrade_rows clusters/pg94-upgrade-docker.yaml 18 link copy dump
      upgrade_rows bench/specs/pg12-upgrade-docker.yaml 18 logical dump ;;
    matrix)
      row "**matrix (3 docker cells: 13, 15, 17)**" "" ""
      row "--jobs 1" "$(secs "$CL" -q matrix clusters/ci.matrix.yaml --jobs 1)" ""
      row "--jobs 2" "$(secs "$CL" -q matrix clusters/ci.matrix.yaml --jobs 2)" ""
      ;;
  esac
done

echo
# The commit measured: the checkout's (with `+changes` when it differs from it).
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit+changes"
echo "bench: $(date -u +%Y-%m-%d), commit $commit, $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(grep -oP "(?<=PRETTY_NAME=\")[^\"]*" /etc/os-release), seconds"
echo "| step                               | clusterlab | raw vagrant|"
echo "|------------------------------------|-----------:|-----------:|"
printf '%s\n' "${rows[@]}"
