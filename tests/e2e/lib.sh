# shellcheck shell=bash
# Sourced by the e2e scripts: the clusterlab binary, the spec's plan, and
# the names every script needs. Expects $spec to be set.
: "${spec:?set spec before sourcing lib.sh}"
CL=${CLUSTERLAB:-target/debug/clusterlab}
plan=$("$CL" check --json "$spec")
# field PYTHON-EXPR: evaluates an expression over the plan `p`.
field() { python3 -c "import json,sys; p=json.load(sys.stdin); print($1)" <<<"$plan"; }
name=$(field 'p["name"]')
provider=$(field 'p["provider"]')
workdir="$(dirname "$spec")/.clusterlab/$name"
export CL plan name provider workdir
