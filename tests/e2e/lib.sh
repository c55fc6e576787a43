# shellcheck shell=bash
# Sourced by the e2e scripts: the clusterlab binary, the spec's plan, and
# the names every script needs. Expects $spec to be set.
#
# E2E_BOX=NAME puts the copy on another box, E2E_DISK=MIB gives it `resources.disk` (a filesystem of each node's
# own, for `fault disk-full`) and E2E_WAL_DISK=MIB `resources.wal_disk` (pg_wal's, for `disk-full --wal`).
#
# Tests never touch a user's clusters. A spec that is not already a test's own
# (named e2e-*) is copied to target/e2e/specs/ as e2e-NAME, on a network of its
# own (second octet + 100), and the script runs on the copy: `lab/demo.sh`'s
# cluster, or one a user brought up from clusters/, stays as it is. A test that
# finds its name already in use stops instead of taking the cluster over.
: "${spec:?set spec before sourcing lib.sh}"
CL=${CLUSTERLAB:-target/debug/clusterlab}
E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# e2e_copy SPEC: prints the path of the test's own copy of SPEC.
e2e_copy() {
  local src=$1 plan out
  plan=$("$CL" check --json "$src") || return 1
  out=$(PLAN_JSON=$plan python3 - "$src" "$E2E_ROOT/target/e2e/specs" <<'PY'
import json, os, re, sys
src, outdir = sys.argv[1], sys.argv[2]
p = json.loads(os.environ["PLAN_JSON"])
if p["name"].startswith("e2e-"):
    print(src)
    sys.exit(0)
text = open(src).read()
name = "e2e-" + p["name"]
a, b, rest = p["network"].split(".", 2)
ours = f"{a}.{(int(b) + 100) % 256}."
text = re.sub(r"^name:.*$", f"name: {name}", text, count=1, flags=re.M)
# Addresses written in the spec move with the network.
text = text.replace(f"{a}.{b}.", ours)
if not re.search(r"^network:", text, flags=re.M):
    text += f"\nnetwork: {ours}{rest}/{p['prefix_len']}\n"
# E2E_BOX=NAME: the copy runs on another box (one that carries the major too).
if os.environ.get("E2E_BOX"):
    text = re.sub(r"^box:.*$", "box: " + os.environ["E2E_BOX"], text, count=1, flags=re.M)
# E2E_DISK=MIB: each node's data directory on a filesystem of its own;
# E2E_WAL_DISK=MIB: each node's pg_wal on one too.
for var, key in (("E2E_DISK", "disk"), ("E2E_WAL_DISK", "wal_disk")):
    if os.environ.get(var):
        disk = f"resources:\n  {key}: {int(os.environ[var])}"
        text, n = re.subn(r"^resources:[ \t]*$", disk, text, count=1, flags=re.M)
        if n == 0:
            text += f"\n{disk}\n"
os.makedirs(outdir, exist_ok=True)
# Relative paths in a spec (sql files) are read beside it.
for f in p.get("sql", []):
    link = os.path.join(outdir, os.path.basename(f["source"]))
    if not os.path.lexists(link):
        os.symlink(os.path.abspath(f["source"]), link)
out = os.path.join(outdir, name + ".yaml")
with open(out, "w") as fh:
    fh.write(f"# Written by tests/e2e/lib.sh from {src}: the test's own copy.\n" + text)
print(out)
PY
  ) || return 1
  echo "$out"
}

# in_use NAME: says what of cluster NAME exists already, if anything.
in_use() {
  local n=$1 dir=$2 what=()
  [ ! -e "$dir" ] || what+=("its working directory $dir")
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    local c
    c=$(docker ps -a --format '{{.Names}}' | grep "^clusterlab-$n-" || true)
    [ -z "$c" ] || what+=("containers: ${c//$'\n'/ }")
  fi
  if command -v virsh >/dev/null; then
    local d
    d=$(virsh list --all --name 2>/dev/null | grep "^clusterlab-$n-" || true)
    [ -z "$d" ] || what+=("domains: ${d//$'\n'/ }")
  fi
  [ ${#what[@]} -eq 0 ] || printf '%s; ' "${what[@]}"
}

spec=$(e2e_copy "$spec") || { echo "e2e: cannot read the spec"; exit 1; }
plan=$("$CL" check --json "$spec")
# field PYTHON-EXPR: evaluates an expression over the plan `p`.
field() { python3 -c "import json,sys; p=json.load(sys.stdin); print($1)" <<<"$plan"; }
name=$(field 'p["name"]')
provider=$(field 'p["provider"]')
workdir="$(dirname "$spec")/.clusterlab/$name"
busy=$(in_use "$name" "$workdir")
# E2E_REUSE=1: a test handed the cluster by another (cluster.sh's E2E_UPGRADE).
if [ -n "$busy" ] && [ "${E2E_REUSE:-0}" != 1 ]; then
  echo "e2e[$name]: FAILED: a cluster named $name exists already (${busy%; }). This test does not take over a cluster it did not create: if it is a leftover of an earlier test run, remove it with \`$CL destroy $spec\` and run the test again."
  exit 1
fi
export CL plan name provider workdir spec
