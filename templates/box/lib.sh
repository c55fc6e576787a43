# shellcheck shell=bash
# What clusterlab's two box recipes share: build.sh (the box) and compile.sh (PostgreSQL from
# source) both log the same way, time their steps the same way and make their Debian root from
# the same cached mmdebstrap tarballs, so one change here serves both. Sourced, never run: like
# them it is a template (--templates overrides it by the name box/lib.sh), and clusterlab
# writes it into the cache dir beside them.
#
# Environment shared by both recipes (each validates it where its own checks are):
#   CL_RELEASE          Debian suite: bullseye | bookworm | trixie
#   CL_CACHE            cache dir, absolute; rootfs/ holds the mmdebstrap tarballs
#   CL_MIRROR           Debian mirror; default http://deb.debian.org/debian
#   CL_SECURITY_MIRROR  Debian security mirror; default http://deb.debian.org/debian-security
#   CL_FETCH_NETNS      network namespace file to run mmdebstrap in; default
#                       $CLUSTERLAB_HOST_NETNS (see build.sh)

# fd 3 is the caller's stderr, also from inside a phase (whose output goes to the log).
exec 3>&2
log() { printf 'box: %s\n' "$*" >&3; }
die() { log "error: $*"; exit 1; }

CL_RELEASE=${CL_RELEASE:-}
CL_CACHE=${CL_CACHE:-}
CL_MIRROR=${CL_MIRROR:-http://deb.debian.org/debian}
CL_SECURITY_MIRROR=${CL_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CL_FETCH_NETNS=${CL_FETCH_NETNS:-${CLUSTERLAB_HOST_NETNS:-}}

# The checks are functions, not run here, so each recipe keeps its own order of checks (the
# first bad input is the one reported).
check_release() {
  case $CL_RELEASE in
    bullseye | bookworm | trixie) ;;
    *) die "CL_RELEASE must be bullseye, bookworm or trixie (got '${CL_RELEASE}')" ;;
  esac
}
check_cache() {
  [ -n "$CL_CACHE" ] || die "CL_CACHE is required (e.g. /var/lib/clusterlab/cache)"
  [[ $CL_CACHE == /* ]] || die "CL_CACHE must be an absolute path (got '${CL_CACHE}')"
}
fetch_net=()
check_fetch_netns() {
  if [ -n "$CL_FETCH_NETNS" ]; then
    [ -e "$CL_FETCH_NETNS" ] || die "CL_FETCH_NETNS: no such namespace file: $CL_FETCH_NETNS"
    fetch_net=(nsenter "--net=$CL_FETCH_NETNS")
  fi
}
need() { command -v "$1" >/dev/null || die "missing tool '$1' (lab/install-deps.sh installs it)"; }

# work_dir PREFIX: WORK, a new directory under CL_CACHE that goes when the recipe exits. Under
# CL_CACHE so that a result moved out of it is a rename on one file system. Nothing is ever
# mounted below it (see the recipes), so removing it cannot reach into this host.
work_dir() {
  WORK=$(mktemp -d "$CL_CACHE/$1.XXXXXX")
  trap cleanup EXIT
}
cleanup() { rm -rf "$WORK"; }

# ---------------------------------------------------------------- phases
# Set by the recipe before its first phase:
#   LOG       the file each step's output is appended to
#   LOG_KEPT  1 when LOG outlives the run (compile.sh's), so a failure names it; build.sh's is
#             in its work dir and goes with it
LOG_KEPT=0
PHASE_JOB=0
PHASE_PGID=

# phase NAME CMD...: run one step with its output in the log, print its elapsed seconds.
# The step runs in a subshell with `set -e` switched on again: a function called from an
# `if` would otherwise run with errexit silently off.
phase() {
  local name=$1 t0=$EPOCHREALTIME rc where
  shift
  log "$name ..."
  printf '\n=== %s\n' "$name" >>"$LOG"
  set +e
  if [ "$PHASE_JOB" = 1 ]; then
    # A background job with job control on just for its start: it gets a process group of
    # its own for on_signal, and `wait` returns as soon as a signal arrives, where a
    # foreground step would first have to finish.
    set -m
    (set -e; "$@") </dev/null >>"$LOG" 2>&1 &
    PHASE_PGID=$!
    set +m
    wait "$PHASE_PGID"
    rc=$?
    PHASE_PGID=
  else
    (set -e; "$@") >>"$LOG" 2>&1
    rc=$?
  fi
  set -e
  if [ "$rc" -ne 0 ]; then
    where="the log"
    if [ "$LOG_KEPT" = 1 ]; then where=$LOG; fi
    log "$name FAILED (exit $rc); last lines of $where:"
    tail -n 40 "$LOG" >&2
    if [ "$LOG_KEPT" = 1 ]; then log "full log: $LOG"; fi
    exit "$rc"
  fi
  log "$name done in $(elapsed "$t0")s"
}
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# interruptible_phases NOTE: from now on an interrupt (Ctrl-C, or clusterlab passing on
# SIGTERM as SIGINT) stops the running step at once, chroot'ed compilers included, before the
# work dir is removed: bash alone would wait for the step to finish, and a later SIGKILL would
# leave the step running and the work dir (a GB) behind. NOTE ends the message then logged.
interruptible_phases() {
  INTERRUPTED_NOTE=$1
  PHASE_JOB=1
  trap 'on_signal SIGINT 130' INT
  trap 'on_signal SIGTERM 143' TERM
}
on_signal() {
  trap - INT TERM
  if [ -n "$PHASE_PGID" ]; then
    kill -TERM -- "-$PHASE_PGID" 2>/dev/null || true
    wait "$PHASE_PGID" 2>/dev/null || true
  fi
  log "interrupted ($1): $INTERRUPTED_NOTE"
  exit "$2"
}

# ---------------------------------------------------------------- cached rootfs
# rootfs_plan RECIPE FLAVOUR PKG... [-- MMDEBSTRAP_OPTION...]: sets ROOTFS_PKGS, ROOTFS_KEY and
# ROOTFS_TAR, the cached tarball of a minbase root of CL_RELEASE with PKG... RECIPE is the
# caller's number to bump when anything else that shapes the tarball changes. The key text is
# the one both recipes always hashed, so the tarballs already in a cache stay valid.
rootfs_plan() {
  local recipe=$1 flavour=$2 include
  shift 2
  ROOTFS_PKGS=()
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
    ROOTFS_PKGS+=("$1")
    shift
  done
  if [ "$#" -gt 0 ]; then shift; fi
  include=$(IFS=,; printf '%s' "${ROOTFS_PKGS[*]}")
  # Docs, man pages and translations are never read in a test box or a build root; leaving
  # them out makes the tarball, the image and the disk smaller and every later step faster.
  mm_opts=(
    --variant=minbase
    "--include=$include"
    --aptopt='Acquire::Retries "3"'
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    "$@"
  )
  # Explicit sources: without a mirror argument mmdebstrap may read sources from a non-tty
  # stdin, and its default security host differs from the one this machine's apt uses.
  sources=(
    "deb $CL_MIRROR $CL_RELEASE main"
    "deb $CL_MIRROR $CL_RELEASE-updates main"
    "deb $CL_SECURITY_MIRROR $CL_RELEASE-security main"
  )
  ROOTFS_KEY=$(printf '%s\n' "recipe=$recipe" "release=$CL_RELEASE" "flavour=$flavour" \
    "${ROOTFS_PKGS[@]}" "${mm_opts[@]}" "${sources[@]}" | sha256sum | cut -c1-16)
  ROOTFS_TAR=$CL_CACHE/rootfs/$CL_RELEASE-$flavour-$ROOTFS_KEY.tar
}

make_rootfs() {
  # Written under a temporary name and renamed: an interrupted run never leaves a tarball
  # that a later run would take for a good one.
  local tmp=$ROOTFS_TAR.partial
  rm -f "$tmp"
  # Without the lock fds: mmdebstrap has apt run `cat >&N` with N a descriptor it opened,
  # and with fds 8 and 9 also open N came out as 11, which dash (apt's /bin/sh) rejects:
  # it reads a single digit there ("Syntax error: Bad fd number").
  "${fetch_net[@]}" mmdebstrap "${mm_opts[@]}" --format=tar "$CL_RELEASE" "$tmp" "${sources[@]}" \
    </dev/null 8>&- 9>&-
  printf '%s\n' "${ROOTFS_PKGS[@]}" >"${ROOTFS_TAR%.tar}.packages"
  mv -f "$tmp" "$ROOTFS_TAR"
}

# ensure_rootfs WHAT PHASE_NAME: ROOTFS_TAR from the cache, else made by mmdebstrap (the only
# step that needs the mirror, so it alone needs mmdebstrap installed).
ensure_rootfs() {
  mkdir -p "$CL_CACHE/rootfs"
  # Two builds of the same tarball at once must not both run mmdebstrap.
  exec 9>"$ROOTFS_TAR.lock"
  flock 9
  if [ -s "$ROOTFS_TAR" ]; then
    log "cached $1 $ROOTFS_TAR"
  else
    need mmdebstrap
    phase "$2" make_rootfs
  fi
  flock -u 9
  exec 9>&-
}
