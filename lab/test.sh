#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this):
#   1. unit and integration tests (cargo test: parsing, errors, plans, facts,
#      rendered snapshots per major, shellcheck/ruby/vagrant validate, CLI),
#   2. real clusters on Vagrant's docker provider for every major 10-18,
#      plus a sync and a cascading cluster, and the matrix on real containers,
#   3. real clusters on libvirt VMs (software emulation) for 13, 15 and 17,
#      including an interrupted `up` that `destroy` must clean completely.
# Boxes and images are built from scratch into a cache of this checkout's own
# (CLUSTERLAB_CACHE), so a leftover from an earlier run cannot hide a broken build.
#
#   lab/test.sh                 everything
#   LAB_TEST_ONLY="unit docker" lab/test.sh   some phases: unit docker matrix libvirt
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
export CLUSTERLAB_CACHE=${CLUSTERLAB_CACHE:-$ROOT/target/clusterlab-cache}
export CLUSTERLAB=$ROOT/target/debug/clusterlab
ONLY=${LAB_TEST_ONLY:-unit docker matrix libvirt}
passed=0
failed=0
report=()

want() { [[ " $ONLY " == *" $1 "* ]]; }
# shellcheck disable=SC2317 # called through check/setup
lab() { lab/lab.sh exec "$@"; }

# Runs one check, timing it; a failure is counted, not fatal.
check() {
  local name=$1 start=$SECONDS
  shift
  echo "=== $name"
  if "$@"; then
    passed=$((passed + 1))
    report+=("$(printf '%-34s ok      %5d s' "$name" $((SECONDS - start)))")
  else
    failed=$((failed + 1))
    report+=("$(printf '%-34s FAILED  %5d s' "$name" $((SECONDS - start)))")
  fi
}

# For real VMs under software emulation: a guest occasionally hangs at boot
# (seen once in about 20 boots, under heavy host load); vagrant then gives up
# after its boot timeout. Such a check is run once more, and says so.
check_vm() {
  local name=$1
  shift
  echo "=== $name"
  if "$@"; then
    check "$name" true
    return
  fi
  echo "=== $name failed once: destroying and retrying (emulated VMs can hang at boot)"
  check "$name (after one retry)" "$@"
}

# Setup steps must succeed, or nothing after them means anything.
setup() {
  local name=$1 start=$SECONDS
  shift
  echo "=== $name"
  "$@" || { echo "=== $name FAILED: stopping"; finish 1; }
  report+=("$(printf '%-34s done    %5d s' "$name" $((SECONDS - start)))")
}

LAB_STARTED=0
finish() {
  if [ "$LAB_STARTED" = 1 ]; then
    lab/lab.sh down >/dev/null 2>&1 || true
  fi
  echo
  echo "phase                              result   time"
  printf '%s\n' "${report[@]}"
  echo "total: $SECONDS s"
  echo "lab-test: $passed passed, $failed failed"
  exit "${1:-$([ $failed = 0 ] && echo 0 || echo 1)}"
}
trap 'echo "interrupted"; finish 130' INT TERM

setup "install packages" lab/install-deps.sh
# Crates are fetched here, outside the lab namespace (it has no uplink).
setup "build" cargo build --locked --all-targets
setup "build tests" cargo test --locked --no-run

if ! lab/lab.sh status >/dev/null 2>&1; then LAB_STARTED=1; fi
setup "start the lab (dockerd, libvirtd)" lab/lab.sh up

if want unit; then
  check "cargo test" lab cargo test --offline --locked
fi

# shellcheck disable=SC2317 # called through setup
box() { lab "$CLUSTERLAB" -q box build "$@"; }
# shellcheck disable=SC2317 # called through setup
tarball_image() {
  lab/fetch-pg.sh "$1" "$CLUSTERLAB_CACHE/tarballs" &&
    box --provider docker --release trixie --postgres 17 \
      --tarball "$CLUSTERLAB_CACHE/tarballs/pg-$1.tar.gz" --name "clusterlab/trixie-pg$1"
}

if want docker || want matrix; then
  setup "docker image bullseye-pg13" box --provider docker --release bullseye --postgres 13
  setup "docker image bookworm-pg15" box --provider docker --release bookworm --postgres 15
  setup "docker image trixie-pg17" box --provider docker --release trixie --postgres 17
fi
if want docker; then
  # Majors no Debian suite here carries: upstream server builds on trixie (whose
  # 17 client tools serve servers up to 17; 18 brings its own).
  for v in 10 11 12 14 16 18; do
    setup "docker image trixie-pg$v (tarball)" tarball_image "$v"
  done
  for v in 10 11 12 13 14 15 16 17 18; do
    check "docker e2e PostgreSQL $v" lab tests/e2e/cluster.sh "tests/e2e/specs/docker-pg$v.yaml"
  done
  check "docker e2e sync (15)" lab tests/e2e/cluster.sh clusters/pg15-sync.yaml
  check "docker e2e cascade + delayed (17)" lab tests/e2e/cluster.sh clusters/pg17-cascade.yaml
  check "docker reprovision is idempotent" lab tests/e2e/reprovision.sh clusters/pg15-docker.yaml
fi

if want matrix; then
  check "matrix: 3 cells, --jobs 2" lab tests/e2e/matrix.sh
fi

# The libvirt specs as this host can run them: KVM where a KVM guest really
# boots, else software emulation (what the specs in clusters/ say).
LIBVIRT_DRIVER=qemu
libvirt_spec() {
  local spec=$1 out
  if [ "$LIBVIRT_DRIVER" = qemu ]; then
    echo "$spec"
    return
  fi
  mkdir -p target/e2e-specs
  out=target/e2e-specs/$(basename "$spec")
  sed -e 's/driver: qemu/driver: kvm/' -e 's/cpu_mode: custom/cpu_mode: host-passthrough/' -e '/cpu_model:/d' "$spec" >"$out"
  echo "$out"
}

if want libvirt; then
  setup "libvirt box bookworm-pg15" box --provider libvirt --release bookworm --postgres 15
  kernel=$(find /var/lib/clusterlab-lab/vagrant.d/boxes/clusterlab-VAGRANTSLASH-bookworm-pg15 -name vmlinuz | head -1)
  LIBVIRT_DRIVER=$(lab/kvm-check.sh "$kernel" 2>/dev/null)
  echo "=== libvirt VMs run with driver: $LIBVIRT_DRIVER ($([ "$LIBVIRT_DRIVER" = kvm ] && echo "a KVM guest booted" || echo "no KVM guest boots here: software emulation"))"
  check_vm "libvirt e2e PostgreSQL 15 (both resets)" lab env E2E_RESETS="snapshot data" tests/e2e/cluster.sh "$(libvirt_spec clusters/pg15-libvirt.yaml)"
  check_vm "libvirt interrupted up, destroy" lab tests/e2e/interrupt.sh "$(libvirt_spec clusters/pg15-libvirt.yaml)"
  setup "libvirt box bullseye-pg13" box --provider libvirt --release bullseye --postgres 13
  check_vm "libvirt e2e PostgreSQL 13" lab tests/e2e/cluster.sh "$(libvirt_spec clusters/pg13-libvirt.yaml)"
  check_vm "libvirt reprovision is idempotent (13)" lab tests/e2e/reprovision.sh "$(libvirt_spec clusters/pg13-libvirt.yaml)"
  setup "libvirt box trixie-pg17" box --provider libvirt --release trixie --postgres 17
  check_vm "libvirt e2e PostgreSQL 17" lab tests/e2e/cluster.sh "$(libvirt_spec clusters/pg17-libvirt.yaml)"
fi

finish
