#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this):
#   1. unit and integration tests (cargo test: parsing, errors, plans, facts,
#      rendered snapshots per major, shellcheck/ruby/vagrant validate, CLI),
#      and clippy with warnings as errors,
#   2. real clusters on Vagrant's docker provider: PostgreSQL 9.4 compiled from
#      source, the full cycle for the majors whose provisioning differs, sync,
#      cascade, idempotent provisioning; the drills (failover, rejoin, faults,
#      lost commit log and WAL, acknowledged writes, backup and PITR) on 9.4,
#      12 and 18 and the shipped drill files; major-version upgrades (pg_upgrade --link and --copy, dump)
#      under a writer, and back by reset; one matrix call over 9.4 and 10-18,
#   3. real clusters on libvirt VMs (software emulation): the 9.4 headline spec,
#      13, 15, drills on 17, and an interrupted `up` that `destroy` must clean
#      completely.
# Boxes and images are built from scratch into a cache of this checkout's own
# (CLUSTERLAB_CACHE), so a leftover from an earlier run cannot hide a broken build.
#
#   lab/test.sh                 everything
#   LAB_TEST_ONLY="unit docker" lab/test.sh   some phases: unit docker drills upgrade matrix libvirt
#
# PostgreSQL 9.4 is compiled from its release source, which the repository
# does not carry and nothing here downloads (docs/pg94-source.md). It is
# looked up in this order:
#   1. $PG94_SOURCE, when set (to a path that does not exist: run without 9.4),
#   2. ../shared/sources/postgresql-9.4.26.tar.gz, beside the repository.
# Without it every 9.4 check is reported `skipped`, with what to do, and the
# rest runs; with CI=true a missing source fails the run instead.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
export CLUSTERLAB_CACHE=${CLUSTERLAB_CACHE:-$ROOT/target/clusterlab-cache}
export CLUSTERLAB=$ROOT/target/debug/clusterlab
ONLY=${LAB_TEST_ONLY:-unit docker drills upgrade matrix libvirt}
passed=0
failed=0
skipped=0
report=()

PG94_URL=https://ftp.postgresql.org/pub/source/v9.4.26/postgresql-9.4.26.tar.gz
if [ -n "${PG94_SOURCE+set}" ]; then
  PG94_SOURCE=$(realpath -m -- "$PG94_SOURCE")
else
  PG94_SOURCE=$(realpath -m -- "$ROOT/../shared/sources/postgresql-9.4.26.tar.gz")
fi
PG94_MISSING=
if [ ! -f "$PG94_SOURCE" ]; then
  PG94_MISSING="no 9.4 source at $PG94_SOURCE: get $PG94_URL, put it there or set PG94_SOURCE (docs/pg94-source.md)"
fi

want() { [[ " $ONLY " == *" $1 "* ]]; }
# shellcheck disable=SC2317 # called through check/setup
lab() { lab/lab.sh exec "$@"; }

# record NAME RESULT START: one line of the phase table, with the time since START.
record() {
  report+=("$(printf '%-48s %-7s %5d s' "$1" "$2" $((SECONDS - $3)))")
}

# tally NAME RC START: counts a check's result and records it.
tally() {
  if [ "$2" = 0 ]; then
    passed=$((passed + 1))
    record "$1" ok "$3"
  else
    failed=$((failed + 1))
    record "$1" FAILED "$3"
  fi
}

# skip94 NAME: a 9.4 check that cannot run without the 9.4 source.
skip94() {
  skipped=$((skipped + 1))
  report+=("$(printf '%-48s %-7s %s' "$1" skipped "$PG94_MISSING")")
  echo "=== $1: skipped: $PG94_MISSING"
}
# with94 KIND NAME CMD...: `KIND NAME CMD...` (KIND: check, check_vm or
# setup) where the 9.4 source is, skip94 NAME where not.
with94() {
  if [ -n "$PG94_MISSING" ]; then skip94 "$2"; else "$@"; fi
}

# Runs one check, timing it; a failure is counted, not fatal.
check() {
  local name=$1 start=$SECONDS rc=0
  shift
  echo "=== $name"
  "$@" || rc=$?
  tally "$name" "$rc" "$start"
}

# What vagrant says when a guest never came up (vagrant's boot_timeout, or
# vagrant-libvirt giving up on the guest's address).
BOOT_HANG='Timed out while waiting for the machine to boot|Fog::Errors::TimeoutError|The specified wait_for timeout'

# For real VMs under software emulation: a guest occasionally hangs at boot
# (seen once in about 20 boots, under heavy host load). Only a failure that
# shows that signature is run once more, and the table says so; any other
# failure counts at once. The time recorded covers both attempts.
check_vm() {
  local name=$1 start=$SECONDS out rc
  shift
  out=$(mktemp)
  echo "=== $name"
  "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  if [ "$rc" != 0 ] && grep -Eq "$BOOT_HANG" "$out"; then
    echo "=== $name: a guest hung at boot; retrying once"
    name="$name (after one retry: boot hang)"
    rc=0
    "$@" || rc=$?
  fi
  rm -f "$out"
  tally "$name" "$rc" "$start"
}

# Setup steps must succeed, or nothing after them means anything.
setup() {
  local name=$1 start=$SECONDS
  shift
  echo "=== $name"
  "$@" || { echo "=== $name FAILED: stopping"; finish 1; }
  record "$name" "done" "$start"
}

LAB_STARTED=0
finish() {
  if [ "$LAB_STARTED" = 1 ]; then
    lab/lab.sh down >/dev/null 2>&1 || true
  fi
  echo
  printf '%-48s %-7s %s\n' phase result time
  printf '%s\n' "${report[@]}"
  echo "total: $SECONDS s"
  echo "lab-test: $passed passed, $failed failed, $skipped skipped"
  exit "${1:-$([ $failed = 0 ] && echo 0 || echo 1)}"
}
trap 'echo "interrupted"; finish 130' INT TERM

# Only the phases that build 9.4 need its source.
if [ -n "$PG94_MISSING" ] && [ "${CI:-}" = true ] && { want docker || want drills || want matrix || want libvirt; }; then
  echo "lab-test: CI=true and $PG94_MISSING" >&2
  record "PostgreSQL 9.4 source (CI=true: required)" FAILED "$SECONDS"
  failed=$((failed + 1))
  finish 1
fi

setup "install packages" lab/install-deps.sh
# Crates are fetched here, outside the lab namespace (it has no uplink).
setup "build" cargo build --locked --all-targets
setup "build tests" cargo test --locked --no-run

if ! lab/lab.sh status >/dev/null 2>&1; then LAB_STARTED=1; fi
setup "start the lab (dockerd, libvirtd)" lab/lab.sh up

if want unit; then
  check "cargo test" lab cargo test --offline --locked
  check "cargo clippy (no warnings)" cargo clippy --offline --locked --all-targets -- -D warnings
fi

# shellcheck disable=SC2317 # called through setup
box() { lab "$CLUSTERLAB" -q box build "$@"; }
# shellcheck disable=SC2317 # called through setup
tarball_image() {
  lab/fetch-pg.sh "$1" "$CLUSTERLAB_CACHE/tarballs" &&
    box --provider docker --postgres "$1" --tarball "$CLUSTERLAB_CACHE/tarballs/pg-$1.tar.gz"
}
# PostgreSQL 9.4, compiled once from its release source (PG94_SOURCE, above;
# the first build compiles; the docker images and the libvirt box share the result).
# shellcheck disable=SC2317 # called through setup
source_box() { box --provider "$1" --postgres 9.4 --source "$PG94_SOURCE" "${@:2}"; }

if want docker || want drills || want matrix; then
  setup "docker image bullseye-pg13" box --provider docker --release bullseye --postgres 13
  setup "docker image bookworm-pg15" box --provider docker --release bookworm --postgres 15
  setup "docker image trixie-pg17" box --provider docker --release trixie --postgres 17
  # Majors no Debian suite here carries: upstream server builds on trixie (whose
  # 17 client tools serve servers up to 17; 18 brings its own).
  for v in 10 11 12 14 16 18; do
    setup "docker image trixie-pg$v (tarball)" tarball_image "$v"
  done
  with94 setup "docker image bookworm-pg9.4 (compiled from source)" source_box docker
fi
if want docker; then
  # The full cycle (up, verify, break, reset, destroy) for every major whose
  # provisioning differs (the facts table: 9.4 before slots in pg_basebackup,
  # 10 recovery.conf, 12 standby.signal, 13 wal_keep_size, 18 its own client
  # tools and no SSL); 11, 14 and 16 come up and verify in the matrix below.
  # Provisioning twice must be a no-op: checked on a compiled server (9.4), a
  # Debian one with SSL (15) and an upstream one without (18).
  with94 check "docker e2e PostgreSQL 9.4 (+ reprovision)" lab env E2E_REPROVISION=1 tests/e2e/cluster.sh clusters/pg94-docker.yaml
  for v in 10 12 13 17; do
    check "docker e2e PostgreSQL $v" lab tests/e2e/cluster.sh "tests/e2e/specs/docker-pg$v.yaml"
  done
  check "docker e2e PostgreSQL 15 (+ reprovision)" lab env E2E_REPROVISION=1 tests/e2e/cluster.sh tests/e2e/specs/docker-pg15.yaml
  check "docker e2e PostgreSQL 18 (+ reprovision)" lab env E2E_REPROVISION=1 tests/e2e/cluster.sh tests/e2e/specs/docker-pg18.yaml
  check "docker e2e sync (15)" lab tests/e2e/cluster.sh clusters/pg15-sync.yaml
  check "docker e2e cascade + delayed (17)" lab tests/e2e/cluster.sh clusters/pg17-cascade.yaml
  # More followers than max_wal_senders' default has room for while they all
  # take their base backups (2 walsenders each): the plan sizes it.
  check "docker e2e 1 leader + 8 followers (15)" lab tests/e2e/cluster.sh tests/e2e/specs/docker-pg15-8-followers.yaml
fi

if want drills; then
  # Failover, rejoin, faults, acknowledged writes, backup and PITR: re-clone,
  # recovery.conf and pause_at_recovery_target (9.4); auto.conf, restart, no
  # pg_rewind in the box, sync replication (12); pg_rewind, reload, async
  # loss reported (18). Then the shipped drill files as a user runs them.
  # 9.4's nodes get a filesystem of their own for `fault disk-full`, and their pg_xlog one too
  # (12's and 18's specs have the first, 18's both).
  with94 check "docker drills PostgreSQL 9.4" lab env E2E_DISK=384 E2E_WAL_DISK=384 tests/e2e/drills.sh clusters/pg94-docker.yaml
  for v in 12 18; do
    check "docker drills PostgreSQL $v" lab tests/e2e/drills.sh "tests/e2e/specs/docker-pg$v.yaml"
  done
  if [ -n "$PG94_MISSING" ]; then
    skip94 "shipped drills' 9.4 cells"
    check "shipped drills (clusters/drills) without 9.4" lab env E2E_NO_PG94=1 tests/e2e/drill-files.sh
  else
    check "shipped drills (clusters/drills)" lab tests/e2e/drill-files.sh
  fi
fi

if want upgrade; then
  # Images that carry more than one major: 9.4 (compiled, the build shared
  # with the image above) with Debian's 15 and an upstream 18; Debian's 13
  # with 18; upstream 10, 12 and 15 with 18 (the tarballs are the docker
  # phase's).
  # shellcheck disable=SC2317 # called through setup
  tarballs() { for v in 10 12 15 18; do lab/fetch-pg.sh "$v" "$CLUSTERLAB_CACHE/tarballs" || return 1; done; }
  setup "fetch PostgreSQL 10, 12, 15 and 18 server binaries" tarballs
  with94 setup "docker image bookworm-pg9.4-pg15-pg18" source_box docker --with 15 --with "18=$CLUSTERLAB_CACHE/tarballs/pg-18.tar.gz"
  setup "docker image bullseye-pg13-pg18" box --provider docker --postgres 13 --with "18=$CLUSTERLAB_CACHE/tarballs/pg-18.tar.gz"
  for v in 10 12 15; do
    setup "docker image pg$v with pg18 (tarballs)" box --provider docker --postgres "$v" --tarball "$CLUSTERLAB_CACHE/tarballs/pg-$v.tar.gz" \
      --with "18=$CLUSTERLAB_CACHE/tarballs/pg-18.tar.gz"
  done
  # 9.4 -> 18 by link, 10 and 12 -> 18 by logical, 13 -> 18 by copy and
  # 15 -> 18 by dump run as the shipped matrix below (two cells at a
  # time); these add the check of a table WITH OIDS and a hash index,
  # reset back to the old major, an interrupted upgrade, and 9.4 by dump.
  with94 check "docker upgrade 9.4 -> 15 link, -> 18 dump" lab tests/e2e/upgrade.sh clusters/pg94-upgrade-docker.yaml 15:link 18:dump
  if [ -n "$PG94_MISSING" ]; then
    skip94 "shipped upgrade drills: the 9.4 cell"
    check "shipped upgrade drills (clusters/drills/upgrade.matrix.yaml) without 9.4" lab tests/e2e/drill-files.sh upgrade 'pg1*' 2
  else
    check "shipped upgrade drills (clusters/drills/upgrade.matrix.yaml)" lab tests/e2e/drill-files.sh upgrade '*' 2
  fi
fi

if want matrix; then
  if [ -n "$PG94_MISSING" ]; then
    skip94 "matrix: the 9.4 cell"
    check "matrix: 10-18, --jobs 2" lab env E2E_NO_PG94=1 tests/e2e/matrix.sh
  else
    check "matrix: 9.4 and 10-18, --jobs 2" lab tests/e2e/matrix.sh
  fi
fi

if want libvirt; then
  # The headline box carries Debian's 15 too (for the upgrade drill on VMs),
  # so the 15 checks run on it: one box build fewer. Without the 9.4 source,
  # a box of 15 alone.
  if [ -n "$PG94_MISSING" ]; then
    vm15_box=clusterlab/bookworm-pg15
    setup "libvirt box bookworm-pg15" box --provider libvirt --release bookworm --postgres 15
  else
    vm15_box=clusterlab/bookworm-pg9.4-pg15
    setup "libvirt box bookworm-pg9.4-pg15 (cached build)" source_box libvirt --with 15
  fi
  # KVM or software emulation: clusterlab finds out once (src/providers/libvirt/accel.rs) and `up` says which.
  # Each data directory on a second virtual disk of its own (resources.disk), which `fault disk-full` fills,
  # and each pg_wal on a third (resources.wal_disk), which `disk-full --wal` fills.
  check_vm "libvirt e2e PostgreSQL 15 (both resets, a disk of its own filled, pg_wal on its own too)" lab env E2E_BOX="$vm15_box" E2E_DISK=256 E2E_WAL_DISK=256 E2E_RESETS="snapshot data" tests/e2e/cluster.sh clusters/pg15-libvirt.yaml
  check_vm "libvirt interrupted up, destroy" lab env E2E_BOX="$vm15_box" E2E_DISK=256 E2E_WAL_DISK=256 tests/e2e/interrupt.sh clusters/pg15-libvirt.yaml
  # The same VMs then serve the upgrade drill: 9.4 -> 15 by pg_upgrade --link.
  with94 check_vm "libvirt e2e PostgreSQL 9.4, the headline spec (both resets; upgrade 9.4 -> 15 link)" lab env E2E_RESETS="snapshot data" E2E_UPGRADE=15:link tests/e2e/cluster.sh clusters/pg94-leader-2-followers.yaml
  setup "libvirt box bullseye-pg13" box --provider libvirt --release bullseye --postgres 13
  check_vm "libvirt e2e PostgreSQL 13 (+ reprovision)" lab env E2E_REPROVISION=1 tests/e2e/cluster.sh clusters/pg13-libvirt.yaml
  setup "libvirt box trixie-pg17" box --provider libvirt --release trixie --postgres 17
  check_vm "libvirt drills PostgreSQL 17 (failover, rejoin)" lab tests/e2e/drills.sh clusters/pg17-libvirt.yaml
  # The shipped lag drill (sync mode): netem needs the guest's own kernel.
  check_vm "libvirt drill file lag.matrix.yaml (17, sync)" lab tests/e2e/drill-files.sh lag '*'
fi

finish
