#!/usr/bin/env bash
# clusterlab's PostgreSQL source build: compiles a release source tarball inside a Debian build
# root (mmdebstrap + chroot, never on this host) into a tarball of MAJOR/{bin,lib,share} for
# build.sh's CL_EXTRA_TARBALL, and lists the Debian packages its binaries need, so the box gets
# the server without any compiler. `clusterlab box build --source FILE` runs it before
# build.sh; it can also be run by hand (as root, inside the lab: lab/lab.sh exec env CL_...=...
# bash templates/box/compile.sh).
#
# Environment (validated below):
#   CL_SOURCE           PostgreSQL release source tarball, .tar.gz/.tar.bz2/.tar.xz (required)
#   CL_MAJOR            the major it must hold, e.g. 9.4 or 11                     (required)
#   CL_RELEASE          Debian suite of the build root: the box's own suite, so the
#                       libraries linked against are the ones the box has       (required)
#   CL_CACHE            cache dir, absolute                                        (required)
#                       pgbuild/RELEASE-KEY/ holds a finished build: pg.tar.gz, depends (one
#                       Debian package per line), version, info; KEY = the source's sha256 +
#                       release + COMPILE_RECIPE + configure flags. pgbuild/logs/ holds the
#                       logs, rootfs/RELEASE-build-*.tar the build root (as build.sh's rootfs)
#   CL_CONFIGURE_FLAGS  space-separated flags for ./configure (clusterlab passes the facts'
#                       source_configure_flags); --prefix is always /usr/lib/postgresql/MAJOR
#   CL_MIRROR, CL_SECURITY_MIRROR, CL_FETCH_NETNS (default $CLUSTERLAB_HOST_NETNS)
#                       as in build.sh: only mmdebstrap needs the mirror
#
# Output: the path of pg.tar.gz as the only line on stdout (last, once everything worked); one
# line per phase with its elapsed seconds on stderr; the tools' output goes to a log whose tail
# and path are shown when a phase fails.
#
# lib.sh, beside this file, holds what build.sh shares with it: log/die, phase, and the cached
# rootfs tarball (its key, mmdebstrap options and sources), here the build root's.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Bump when anything that shapes a build changes (steps, pruning, depends): cached builds
# made by an older recipe are then rebuilt instead of reused.
COMPILE_RECIPE=1
# Bump when the build root's package list or mmdebstrap options change.
BUILDROOT_RECIPE=1

# ---------------------------------------------------------------- environment
CL_SOURCE=${CL_SOURCE:-}
CL_MAJOR=${CL_MAJOR:-}
CL_CONFIGURE_FLAGS=${CL_CONFIGURE_FLAGS:-}
CL_RELEASE_PATTERNS=${CL_RELEASE_PATTERNS:-}

[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap root mode, chroot)"

check_release
# (read -a: no word of them is globbed against files.)
read -r -a RELEASE_PATTERNS <<<"$CL_RELEASE_PATTERNS"
[ "${#RELEASE_PATTERNS[@]}" -gt 0 ] || die "CL_RELEASE_PATTERNS is required (clusterlab passes the majors' release patterns)"
[[ " ${RELEASE_PATTERNS[*]%%=*} " == *" $CL_MAJOR "* ]] || die "CL_MAJOR must be a PostgreSQL major clusterlab knows (got '${CL_MAJOR}')"
[ -n "$CL_SOURCE" ] || die "CL_SOURCE is required (a PostgreSQL source tarball)"
[ -f "$CL_SOURCE" ] || die "CL_SOURCE: no such file: $CL_SOURCE"
[ -r "$CL_SOURCE" ] || die "CL_SOURCE: cannot read $CL_SOURCE"
CL_SOURCE=$(readlink -f "$CL_SOURCE")
check_cache
read -r -a flags <<<"$CL_CONFIGURE_FLAGS"
for f in "${flags[@]}"; do
  # Words handed to configure as they are: no shell syntax can get through.
  [[ $f =~ ^--[a-z][a-z0-9-]*(=[A-Za-z0-9_.,:/+=-]*)?$ ]] \
    || die "CL_CONFIGURE_FLAGS: '$f' does not look like a configure flag (--with-x, --enable-y=z)"
  [[ $f != --prefix* ]] || die "CL_CONFIGURE_FLAGS: --prefix is fixed to /usr/lib/postgresql/$CL_MAJOR"
done

check_fetch_netns
need tar; need chroot; need flock; need sha256sum; need gzip

# major_of VERSION: 9.4.26 -> 9.4, 11.22 -> 11, 17beta1 -> 17, by the patterns clusterlab's
# facts hand over in CL_RELEASE_PATTERNS ("MAJOR=REGEX", space-separated).
major_of() {
  local entry
  for entry in "${RELEASE_PATTERNS[@]}"; do
    if [[ $1 =~ ${entry#*=} ]]; then
      printf '%s\n' "${entry%%=*}"
      return 0
    fi
  done
  return 1
}
# The one check a cached build and a fresh source share.
check_major() {
  local version=$1 major
  major=$(major_of "$version") || die "$CL_SOURCE: cannot tell the major of PostgreSQL version '$version'"
  [ "$major" = "$CL_MAJOR" ] \
    || die "$CL_SOURCE is PostgreSQL $version (major $major), but --postgres $CL_MAJOR was asked; pass --postgres $major, or the source of $CL_MAJOR"
}

PREFIX=/usr/lib/postgresql/$CL_MAJOR
SOURCE_SHA=$(sha256sum <"$CL_SOURCE")
SOURCE_SHA=${SOURCE_SHA%% *}
key=$(printf '%s\n' "recipe=$COMPILE_RECIPE" "release=$CL_RELEASE" "source=$SOURCE_SHA" \
  "flags=${flags[*]}" | sha256sum | cut -c1-16)
PGBUILD=$CL_CACHE/pgbuild
RESULT=$PGBUILD/$CL_RELEASE-$key
LOG=$PGBUILD/logs/$CL_RELEASE-$key.log
mkdir -p "$PGBUILD/logs"

# One source build at a time: a second build of the same source waits and then finds the
# first one's result instead of compiling it again (and two compiles on a small machine
# would only slow each other down). The lock file lives beside pgbuild/, not in it.
exec 8>"$CL_CACHE/pgbuild.lock"
if ! flock -n 8; then
  log "waiting for another source build to finish ($CL_CACHE/pgbuild.lock)"
  flock 8
fi

# ---------------------------------------------------------------- cached build
if [ -s "$RESULT/pg.tar.gz" ] && [ -s "$RESULT/version" ] && [ -s "$RESULT/depends" ]; then
  version=$(<"$RESULT/version")
  # The key does not include the major asked for: a cached build must still be refused
  # for another one.
  check_major "$version"
  log "cached build of PostgreSQL $version ($RESULT, from ${CL_SOURCE##*/} on $CL_RELEASE)"
  printf '%s\n' "$RESULT/pg.tar.gz"
  exit 0
fi
# Only whole results are ever renamed into place, so anything else there is debris.
rm -rf "$RESULT"

T_START=$EPOCHREALTIME
# Nothing is mounted into the build root (configure, make and ldd work without /proc or
# /sys in the chroot; the /dev nodes come from mmdebstrap's tarball), so removing the work
# dir is all the cleaning there is, and never reaches into this host's /proc or /dev.
work_dir compile
# A failed build's log is kept in pgbuild/logs, for its whole story.
LOG_KEPT=1
interruptible_phases "nothing was added to the cache"

# ---------------------------------------------------------------- the source
# Checked before anything is downloaded: a wrong file must fail in a second, not after the
# build root.
mkdir "$WORK/src"
if ! tar_err=$(tar -xf "$CL_SOURCE" -C "$WORK/src" --no-same-owner 2>&1); then
  # tar reads gzip, bzip2 and xz by their magic; anything else, or a cut-off copy, ends here.
  tar_err=$(printf '%s\n' "$tar_err" | sed '/^[[:space:]]*$/d; s/^/    /')
  die "$CL_SOURCE is not a complete tar archive (.tar.gz, .tar.bz2 or .tar.xz); tar says:
$tar_err"
fi
shopt -s nullglob
configures=("$WORK"/src/postgresql-*/configure)
shopt -u nullglob
[ "${#configures[@]}" -eq 1 ] \
  || die "$CL_SOURCE is not a PostgreSQL source tarball (no postgresql-*/configure at its top)"
# Read from the file into a variable: a producer piped into `grep -q` or `head` can die of
# SIGPIPE, and under pipefail the pipeline then fails although it matched.
version=$(sed -n "s/^PACKAGE_VERSION='\([^']*\)'\$/\1/p" "${configures[0]}")
version=${version%%$'\n'*}
if [ -z "$version" ] || ! grep -qx "PACKAGE_NAME='PostgreSQL'" "${configures[0]}"; then
  die "$CL_SOURCE is not a PostgreSQL source tarball (its configure names no PostgreSQL version)"
fi
check_major "$version"
SRC=${configures[0]%/configure}
# Started only now, so a rejected file leaves no log behind either.
: >"$LOG"
log "source ${CL_SOURCE##*/}: PostgreSQL $version; log $LOG"

if [ ! -d "$SRC/src/test" ]; then
  # Some copies leave out src/test (the regression suite, as in some
  # trimmed copies of postgresql-9.4.26.tar.gz). The install never needs it, but src/Makefile still descends
  # into test/regress and test/perl for `all` and `install` and fails on the missing
  # directories. Drop every test/* entry from that one SUBDIRS assignment (it spans
  # backslash-continued lines); a complete tarball keeps its Makefile as it is.
  sed -i '/^SUBDIRS[[:space:]]*=/,/[^\\]$/ s#[[:space:]]test/[^[:space:]\\]*##g' "$SRC/src/Makefile"
  subdirs=$(sed -n '/^SUBDIRS[[:space:]]*=/,/[^\\]$/p' "$SRC/src/Makefile")
  [[ $subdirs != *test/* ]] || die "could not drop test/* from SUBDIRS in src/Makefile"
  log "the source has no src/test: test/* dropped from src/Makefile's SUBDIRS"
fi

# ---------------------------------------------------------------- build root
# What compiling PostgreSQL needs, and nothing of it reaches the box: bison and flex because
# copies without the pre-generated parser and scanner sources exist (trimmed tarballs), readline
# and zlib headers for psql's line editing and compressed dumps.
build_pkgs=(build-essential bison flex perl libreadline-dev zlib1g-dev pkg-config)
rootfs_plan "$BUILDROOT_RECIPE" build "${build_pkgs[@]}"
ensure_rootfs "build root" "mmdebstrap build root $CL_RELEASE (${#build_pkgs[@]} packages)"

ROOT=$WORK/root
unpack_root() {
  mkdir "$ROOT"
  tar -xpf "$ROOTFS_TAR" -C "$ROOT" --numeric-owner
  mkdir "$ROOT/build"
  mv "$SRC" "$ROOT/build/src"
}
phase "unpack build root" unpack_root

# Runs a command in the build root with a clean environment: nothing of this host's (CL_*,
# DOCKER_HOST, a locale the root lacks) leaks into configure.
in_root() {
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LC_ALL=C "$@"
}

# ---------------------------------------------------------------- compile
JOBS=$(nproc)
run_configure() {
  # shellcheck disable=SC2016 # $@ is expanded by the shell in the build root
  in_root /bin/sh -c 'cd /build/src && exec ./configure "$@"' configure "--prefix=$PREFIX" "${flags[@]}"
}
run_make() { in_root make -C /build/src -j"$JOBS"; }
# pg_archivecleanup (archive_cleanup_command) is in contrib until 9.4 and in src/bin from
# 9.5, where `make` already builds it.
ARCHIVECLEANUP=
if [ ! -d "$ROOT/build/src/src/bin/pg_archivecleanup" ] && [ -d "$ROOT/build/src/contrib/pg_archivecleanup" ]; then
  ARCHIVECLEANUP=contrib/pg_archivecleanup
fi
run_make_contrib() { in_root make -C "/build/src/$ARCHIVECLEANUP" -j"$JOBS"; }
STAGE=$ROOT/build/stage
run_install() {
  in_root make -C /build/src install-strip DESTDIR=/build/stage
  if [ -n "$ARCHIVECLEANUP" ]; then
    in_root make -C "/build/src/$ARCHIVECLEANUP" install-strip DESTDIR=/build/stage
  fi
  # Headers and static libraries serve only a compiler, and the box has none.
  rm -rf "$STAGE$PREFIX/include"
  find "$STAGE$PREFIX/lib" -name '*.a' -delete
  # install-strip may not place anything outside the prefix: build.sh unpacks only MAJOR/.
  local outside
  outside=$(find "$STAGE" -mindepth 1 -not -path "$STAGE/usr" -not -path "$STAGE/usr/lib" \
    -not -path "$STAGE/usr/lib/postgresql" -not -path "$STAGE$PREFIX" -not -path "$STAGE$PREFIX/*")
  [ -z "$outside" ] || { echo "installed outside $PREFIX:"; echo "$outside"; return 1; }
}
verify_stage() {
  local tool want=(postgres psql pg_basebackup pg_ctl initdb pg_controldata pg_archivecleanup) out
  # pg_rewind is in core from 9.5 (src/bin/pg_rewind): where the source has it, the box
  # must have it too (rejoining a former leader uses it).
  if [ -d "$ROOT/build/src/src/bin/pg_rewind" ]; then want+=(pg_rewind); fi
  for tool in "${want[@]}"; do
    [ -x "$STAGE$PREFIX/bin/$tool" ] || { echo "missing after install: $PREFIX/bin/$tool"; return 1; }
  done
  # They must run, and be the version the source says. libpq comes from the stage: the
  # binaries look for it under $PREFIX/lib, which exists only in the box.
  for tool in postgres psql; do
    out=$(in_root env "LD_LIBRARY_PATH=/build/stage$PREFIX/lib" "/build/stage$PREFIX/bin/$tool" --version)
    echo "$out"
    [ "$out" = "$tool (PostgreSQL) $version" ] || { echo "$tool --version: expected $version"; return 1; }
  done
}
log "configure --prefix=$PREFIX ${flags[*]}"
phase "configure" run_configure
phase "make -j$JOBS" run_make
if [ -n "$ARCHIVECLEANUP" ]; then phase "make $ARCHIVECLEANUP" run_make_contrib; fi
phase "install" run_install
phase "verify binaries" verify_stage

# ---------------------------------------------------------------- depends
# The box gets no -dev packages and no compiler, only the runtime packages the binaries link:
# each ELF file's libraries (ldd in the build root, so the paths are the suite's own), mapped
# to their package by dpkg. Base packages (libc6) stay in the list; every rootfs has them, and
# naming them costs nothing.
cat >"$ROOT/build/depends.sh" <<'DEPENDS'
set -euo pipefail
stage=$1 prefix=$2
export LD_LIBRARY_PATH=$stage$prefix/lib
declare -A pkgs=()
missing=()
# owner PATH: the package that ships PATH. dpkg knows a file by the path it was packaged
# under, which can differ from the loader's (symlinks, /lib vs /usr/lib after usrmerge).
owner() {
  local p real cand out line
  p=$1
  real=$(readlink -f "$p")
  for cand in "$p" "$real" "/usr$p" "/usr$real" "${p#/usr}" "${real#/usr}"; do
    out=$(dpkg -S "$cand" 2>/dev/null) || continue
    while IFS= read -r line; do
      # "libreadline8:amd64: /lib/x86_64-linux-gnu/libreadline.so.8"; skip "diversion by".
      case $line in diversion*) continue ;; esac
      line=${line%%: *}
      line=${line%%, *}
      printf '%s\n' "${line%%:*}"
      return 0
    done <<<"$out"
  done
  return 1
}
# Through a file, not a process substitution: that needs /dev/fd, which is /proc's, and the
# build root has no /proc.
find "$stage" -type f -print0 >/build/files
while IFS= read -r -d '' f; do
  magic=
  IFS= read -r -n 4 magic <"$f" || true
  [ "$magic" = $'\x7fELF' ] || continue
  # Not dynamic (or not for this loader): nothing to install for it.
  out=$(ldd "$f" 2>&1) || continue
  while read -r a b c _; do
    if [ "$b" = "=>" ]; then
      if [ "$c" = not ]; then missing+=("${f#"$stage"}: $a"); continue; fi
      path=$c
    elif [[ $a == /* ]]; then
      path=$a
    else
      continue # linux-vdso.so.1 and the like: in the kernel, not in a package
    fi
    [[ $path != "$stage"/* ]] || continue
    if pkg=$(owner "$path"); then
      pkgs[$pkg]=1
    else
      missing+=("${f#"$stage"}: $path (no package ships it)")
    fi
  done <<<"$out"
done </build/files
if [ "${#missing[@]}" -gt 0 ]; then
  printf 'unresolved library: %s\n' "${missing[@]}"
  exit 1
fi
[ "${#pkgs[@]}" -gt 0 ] || { echo "no library packages found: ldd found nothing?"; exit 1; }
printf '%s\n' "${!pkgs[@]}" | sort >/build/depends
DEPENDS
find_depends() {
  in_root bash /build/depends.sh /build/stage "$PREFIX"
  local p pkgs
  mapfile -t pkgs <"$ROOT/build/depends"
  for p in "${pkgs[@]}"; do
    [[ $p =~ ^[a-z0-9][a-z0-9+.-]+$ ]] || { echo "not a package name: '$p'"; return 1; }
  done
  echo "runtime packages: ${pkgs[*]}"
}
phase "runtime packages (ldd + dpkg -S)" find_depends

# ---------------------------------------------------------------- result
pack() {
  local out=$WORK/result
  mkdir "$out"
  # MAJOR/{bin,lib,share}: the layout --tarball uses, unpacked under /usr/lib/postgresql.
  tar -C "$STAGE/usr/lib/postgresql" --owner=0 --group=0 --numeric-owner -czf "$out/pg.tar.gz" "$CL_MAJOR"
  cp "$ROOT/build/depends" "$out/depends"
  printf '%s\n' "$version" >"$out/version"
  printf '%s\n' "source=${CL_SOURCE##*/}" "sha256=$SOURCE_SHA" "release=$CL_RELEASE" \
    "configure=--prefix=$PREFIX ${flags[*]}" "recipe=$COMPILE_RECIPE" \
    "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$out/info"
  du -sh "$STAGE$PREFIX" "$out/pg.tar.gz"
  # WORK is under CL_CACHE, so this is a rename on one file system: the result appears whole
  # or not at all, and an interrupted or failed build leaves nothing in pgbuild/ but its log.
  mv -T "$out" "$RESULT"
}
phase "pack" pack
log "built PostgreSQL $version in $(elapsed "$T_START")s: $RESULT"
printf '%s\n' "$RESULT/pg.tar.gz"
