#!/usr/bin/env bash
# The main job on a new machine, in one command: install what is needed, build
# clusterlab and an offline PostgreSQL image, bring up a bundled example (a
# leader and two followers streaming through slots, as Vagrant docker
# containers) and verify it. Leaves it running.
#
#   lab/demo.sh              PostgreSQL 15 (Debian's packages): clusters/pg15-docker.yaml
#   lab/demo.sh 9.4 [SRC]    the headline case, PostgreSQL 9.4 compiled from its release
#                            source, looked up in this order (docs/pg94-source.md): SRC,
#                            $PG94_SOURCE, ../shared/sources/postgresql-9.4.26.tar.gz
#                            beside the repository; nothing is downloaded:
#                            clusters/pg94-docker.yaml, the docker twin of
#                            clusters/pg94-leader-2-followers.yaml
#
# On this project's machines dockerd runs inside a private network namespace
# (lab/lab.sh); with a docker of your own, run the same clusterlab commands
# without the `lab/lab.sh exec` prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-15}
case $version in
  15) spec=clusters/pg15-docker.yaml build=(--postgres 15) ;;
  9.4)
    spec=clusters/pg94-docker.yaml
    src=${2:-${PG94_SOURCE:-../shared/sources/postgresql-9.4.26.tar.gz}}
    [ -f "$src" ] || {
      echo "demo: no PostgreSQL 9.4 source at $src: get https://ftp.postgresql.org/pub/source/v9.4.26/postgresql-9.4.26.tar.gz and pass it (lab/demo.sh 9.4 FILE), set PG94_SOURCE to it, or put it at ../shared/sources/ beside the repository (docs/pg94-source.md)" >&2
      exit 2
    }
    build=(--postgres 9.4 --source "$(cd "$(dirname "$src")" && pwd)/$(basename "$src")") ;;
  *) echo "demo: usage: lab/demo.sh [15 | 9.4 [SOURCE-TARBALL]]" >&2; exit 2 ;;
esac
lab/install-deps.sh
cargo build --release --locked
lab/lab.sh up
CL="lab/lab.sh exec target/release/clusterlab"
$CL box build --provider docker "${build[@]}"
$CL up "$spec"
$CL verify "$spec"
cat <<NEXT

The cluster is up. Try (each command prefixed with \`lab/lab.sh exec target/release/clusterlab\`):
  sql $spec "CREATE TABLE t AS SELECT 1 AS x"   # write on the leader
  fault $spec pg1 kill                          # crash the leader
  promote $spec pg2                             # fail over to pg2
  rejoin $spec pg1                              # the old leader follows pg2
  reset $spec                                   # back to the known state (~1 s)
  status $spec
  ssh $spec pg2
  destroy $spec
NEXT
