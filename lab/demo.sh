#!/usr/bin/env bash
# The main job on a new machine, in one command: install what is needed, build
# clusterlab and the offline PostgreSQL 15 image, bring up the bundled example
# (clusters/pg15-docker.yaml: a leader and two followers streaming through
# slots, as Vagrant docker containers) and verify it. Leaves it running.
#
# On this project's machines dockerd runs inside a private network namespace
# (lab/lab.sh); with a docker of your own, run the same clusterlab commands
# without the `lab/lab.sh exec` prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
lab/install-deps.sh
cargo build --release --locked
lab/lab.sh up
CL="lab/lab.sh exec target/release/clusterlab"
$CL box build --provider docker --release bookworm --postgres 15
$CL up clusters/pg15-docker.yaml
$CL verify clusters/pg15-docker.yaml
cat <<'NEXT'

The cluster is up. Try (each command prefixed with `lab/lab.sh exec target/release/clusterlab`):
  sql clusters/pg15-docker.yaml "CREATE TABLE t AS SELECT 1 AS x"   # write on the leader
  reset clusters/pg15-docker.yaml                                    # back to the known state (~1 s)
  status clusters/pg15-docker.yaml
  ssh clusters/pg15-docker.yaml pg2
  destroy clusters/pg15-docker.yaml
NEXT
