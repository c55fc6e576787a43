//! `clusterlab matrix` end to end, without machines: `--list`, validation,
//! `--dry-run`, and runs through a fake `vagrant` and `docker` on PATH.

mod support;
use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::BASE_SPEC as BASE;

/// A temp dir with `base.yaml` and `m.matrix.yaml` holding `matrix`.
fn setup(matrix: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.yaml"), BASE).unwrap();
    std::fs::write(dir.path().join("m.matrix.yaml"), matrix).unwrap();
    dir
}

fn matrix_file(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("m.matrix.yaml")
}

fn clusterlab() -> Command {
    Command::cargo_bin("clusterlab").unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether miette's report `err` says `needle`: miette wraps lines at the
/// terminal's width (80 here) inside its frame, so both are compared without
/// whitespace and frame characters.
fn says(err: &str, needle: &str) -> bool {
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace() && !"│×╭╰─·┬".contains(*c)).collect::<String>();
    squash(err).contains(&squash(needle))
}

/// The working directory of a cell of `m.matrix.yaml`.
fn workdir(dir: &tempfile::TempDir, cell: &str) -> PathBuf {
    dir.path().join(".clusterlab/matrix-m/.clusterlab").join(cell)
}

const THREE: &str = "\
base: base.yaml
axes:
  version: [13, 15, 17]
boxes:
  13: clusterlab/bullseye-pg13
  17: clusterlab/trixie-pg17
steps:
  - name: hello
    run: echo hello from the leader
";

#[test]
fn list_github_is_one_matrix_entry_per_cell() {
    let dir = setup(
        "base: base.yaml\naxes:\n  version: [13, 15, 17]\n  followers: [1, 2]\nexclude:\n  - {version: 13, followers: 1}\ninclude:\n  - {version: 16, followers: 3, mode: sync}\n",
    );
    let out = clusterlab().args(["matrix", "--list", "--format", "github"]).arg(matrix_file(&dir)).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let include = json["include"].as_array().unwrap();
    let names: Vec<&str> = include.iter().map(|c| c["cell"].as_str().unwrap()).collect();
    assert_eq!(names, ["pg13-f2-slots", "pg15-f1-slots", "pg15-f2-slots", "pg17-f1-slots", "pg17-f2-slots", "pg16-f3-slots-sync"]);
    assert_eq!(include[5]["version"], "16");
    assert_eq!(include[5]["followers"], 3);
    assert_eq!(include[5]["mode"], "sync");
    assert_eq!(include[0]["provider"], "docker");
    // The base's box is for 15 only; other versions get the default box of theirs.
    assert_eq!(include[0]["box"], "clusterlab/bullseye-pg13");
    assert_eq!(include[2]["box"], "clusterlab/bookworm-pg15");

    // Every cell has its own spec, with its own name and its own /24.
    let mut networks = Vec::new();
    for name in &names {
        let spec: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(dir.path().join(format!(".clusterlab/matrix-m/{name}.yaml"))).unwrap()).unwrap();
        assert_eq!(spec["name"].as_str(), Some(*name));
        networks.push(spec["network"].as_str().unwrap().to_string());
    }
    assert_eq!(networks[0], "10.50.0.0/24");
    assert_eq!(networks[5], "10.50.5.0/24");
    networks.sort();
    networks.dedup();
    assert_eq!(networks.len(), names.len());
}

#[test]
fn list_text_and_gitlab() {
    let dir = setup(THREE);
    let out = clusterlab().args(["matrix", "--list"]).arg(matrix_file(&dir)).output().unwrap();
    assert_eq!(stdout(&out), "pg13-f2-slots\npg15-f2-slots\npg17-f2-slots\n");
    let out = clusterlab().args(["matrix", "--list", "--format", "gitlab"]).arg(matrix_file(&dir)).output().unwrap();
    let yaml: serde_yaml::Value = serde_yaml::from_str(&stdout(&out)).unwrap();
    let cells = yaml["parallel"]["matrix"][0]["CELL"].as_sequence().unwrap();
    assert_eq!(cells.len(), 3);
}

#[test]
fn filter_and_cell_pick_cells() {
    let dir = setup(THREE);
    let list = |args: &[&str]| {
        let out = clusterlab().args(["matrix", "--list"]).args(args).arg(matrix_file(&dir)).output().unwrap();
        (out.status.code(), stdout(&out), stderr(&out))
    };
    assert_eq!(list(&["--filter", "pg13"]).1, "pg13-f2-slots\n");
    assert_eq!(list(&["--filter", "pg1*-f2-*", "--filter", "pg17"]).1, "pg13-f2-slots\npg15-f2-slots\npg17-f2-slots\n");
    assert_eq!(list(&["--filter", "pg1[57]"]).1, "", "no glob but `*`: `[` is literal, so nothing matches");
    assert_eq!(list(&["--cell", "pg15-f2-slots"]).1, "pg15-f2-slots\n");

    let (code, _, err) = list(&["--cell", "pg16-f2-slots"]);
    assert_eq!(code, Some(2));
    assert!(says(&err, "no cell `pg16-f2-slots`") && says(&err, "pg13-f2-slots, pg15-f2-slots, pg17-f2-slots"), "{err}");
    let (code, _, err) = list(&["--filter", "pg9"]);
    assert_eq!(code, Some(2));
    assert!(says(&err, "no cell"), "{err}");
}

#[test]
fn invalid_cells_are_all_reported_before_anything_starts() {
    let dir = setup("base: base.yaml\naxes:\n  version: [9.5, 15, 9.3]\n  mode: [sync]\n");
    // FIRST 1 (...) is PostgreSQL 10 syntax: fine for 15, wrong for 9.5.
    std::fs::write(dir.path().join("base.yaml"), format!("{BASE}replication:\n  mode: sync\n  synchronous_standby_names: FIRST 1 (pg2)\n")).unwrap();
    let out = clusterlab().args(["--dry-run", "matrix"]).arg(matrix_file(&dir)).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(says(&err, "2 of 3 cells are invalid"), "{err}");
    assert!(says(&err, "pg95-f2-slots-sync: ") && says(&err, "FIRST/ANY syntax needs PostgreSQL 10 or later; this cluster is 9.5"), "{err}");
    assert!(says(&err, "pg93-f2-slots-sync: ") && says(&err, "PostgreSQL 9.3 has no physical replication slots"), "{err}");
    assert!(!says(&err, "pg15-f2-slots-sync: "), "the valid cell is not listed: {err}");
    assert!(!stdout(&out).contains("vagrant"), "nothing may start: {}", stdout(&out));
}

#[test]
fn step_on_a_missing_node_is_invalid() {
    let dir = setup("base: base.yaml\naxes:\n  followers: [1, 2]\nsteps:\n  - {name: on-pg3, node: pg3, run: 'true'}\n");
    let out = clusterlab().args(["matrix", "--list"]).arg(matrix_file(&dir)).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(says(&err, "1 of 2 cells are invalid") && says(&err, "pg15-f1-slots: step `on-pg3` runs on `pg3`"), "{err}");
}

#[test]
fn matrix_file_errors_point_at_the_line() {
    let dir = setup("base: base.yaml\naxes:\n  version: [15]\n  folowers: [1]\n");
    let out = clusterlab().args(["matrix", "--list"]).arg(matrix_file(&dir)).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(says(&err, "m.matrix.yaml:4:3: axes: unknown field `folowers`"), "{err}");

    let dir = setup("base: base.yaml\naxes:\n  version: [15]\nsteps:\n  - {name: both, run: 'true', sql: 'select 1'}\n");
    let out = clusterlab().args(["matrix", "--list"]).arg(matrix_file(&dir)).output().unwrap();
    assert!(says(&stderr(&out), "m.matrix.yaml:5:5: steps[0]: step `both` needs exactly one of `run`, `sql`, `sql_file`, `drill`, `expect` and `same_rows`"), "{}", stderr(&out));

    let dir = setup("base: base.yaml\naxes:\n  version: [15]\nsteps:\n  - {name: bad, drill: 'fault pg1 explode'}\n");
    let out = clusterlab().args(["matrix", "--list"]).arg(matrix_file(&dir)).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(says(&stderr(&out), "steps[0].drill: `fault pg1 explode` is not a drill: invalid value 'explode'"), "{}", stderr(&out));
}

#[test]
fn log_expectation_errors_point_at_the_line() {
    let err = |steps: &str| {
        let dir = setup(&format!("base: base.yaml\nsteps:\n  - {{name: kill, drill: 'fault pg1 kill'}}\n{steps}"));
        let out = clusterlab().args(["matrix", "--list"]).arg(matrix_file(&dir)).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        stderr(&out)
    };
    let e = err("  - name: both\n    expect:\n      leader: pg2\n      log: {node: pg1, matches: x}\n");
    assert!(says(&e, "m.matrix.yaml:7:7: steps[1].expect.log: step `both`: `expect` holds either the topology (`leader`, `followers`) or `log`, not both"), "{e}");
    let e = err("  - {name: neither, expect: {followers: [pg2]}}\n");
    assert!(says(&e, "steps[1].expect: step `neither`: `expect` needs `leader` (and `followers`) or `log`"), "{e}");
    let e = err("  - name: bad-regex\n    expect:\n      log: {node: pg1, matches: 'status of (transaction'}\n");
    assert!(says(&e, "m.matrix.yaml:6:24: steps[1].expect.log.matches: `status of (transaction` is not a regex: unclosed group"), "{e}");
    let e = err("  - name: bad-within\n    expect:\n      log: {node: pg1, matches: x, within: 1min}\n");
    assert!(says(&e, "steps[1].expect.log.within: `1min` is not a time"), "{e}");
    let e = err("  - name: no-such-node\n    expect:\n      log: {node: pg9, matches: x}\n");
    assert!(says(&e, "pg15-f2-slots: step `no-such-node` reads the server log of `pg9`, which this cell does not have") && says(&e, "nodes: pg1, pg2, pg3"), "{e}");
}

/// Steps that write to the fake server logs (see `fake_bin`).
const LOG_STEPS: &str = r#"base: base.yaml
steps:
  - name: old-news
    run: |
      mkdir -p "$(dirname "$FAKE_LOG")/pglogs"
      echo 'ERROR:  could not access status of transaction 1' >> "$(dirname "$FAKE_LOG")/pglogs/pg1.log"
  - name: truncate-clog
    run: |
      log="$(dirname "$FAKE_LOG")/pglogs/pg1.log"
      echo 'LOG:  checkpoint starting' >> "$log"
      # Written after the step is over: the expectation has to poll for it.
      (sleep 1; echo '  ERROR:  could not access status of transaction 42  ' >> "$log") >/dev/null 2>&1 &
  - name: clog-gone
    expect:
      log: {node: pg1, matches: 'could not access status of transaction \d+', within: 5s}
  - name: same-mark
    expect:
      log: {node: pg1, matches: 'checkpoint (starting|complete)', within: 500ms}
  - name: quiet
    run: 'true'
  - name: pg2-never-says-it
    expect:
      log: {node: pg2, matches: 'checkpoint', within: 1}
"#;

#[test]
fn a_log_expectation_reads_what_the_step_before_it_wrote() {
    let dir = setup(LOG_STEPS);
    let (json, md) = (dir.path().join("out.json"), dir.path().join("report.md"));
    let (out, calls, _) = fake_run(&dir, "", &["--json", json.to_str().unwrap(), "--report", md.to_str().unwrap()]);
    let se = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{se}");
    // The transaction 1 line came before the mark: 42 is the one found.
    assert!(se.contains("step clog-gone: ok: ERROR:  could not access status of transaction 42\n"), "{se}");
    assert!(se.contains("step same-mark: ok: LOG:  checkpoint starting"), "{se}");
    assert!(se.contains("FAILED in") && se.contains("step pg2-never-says-it: no line of pg2's server log since step `quiet` matches /checkpoint/ within 1 s"), "{se}");

    // Marked before the two steps that log expectations follow, on the nodes those read only.
    let offsets: Vec<&str> = calls.lines().filter(|l| l.starts_with("- clusterlab-pg[") && l.ends_with("log-offset")).collect();
    assert_eq!(offsets, ["- clusterlab-pg[pg1] log-offset", "- clusterlab-pg[pg2] log-offset"], "{calls}");
    let mark = calls.lines().position(|l| l.contains("log-offset")).unwrap();
    let truncate = calls.lines().position(|l| l.contains("checkpoint starting")).unwrap();
    assert!(mark < truncate, "{calls}");
    // pg2 had no log when it was marked: it got an empty mark, and reads any log it grows whole.
    assert!(calls.contains("- clusterlab-pg[pg1] log-since /") && calls.contains("- clusterlab-pg[pg2] log-since\n"), "{calls}");

    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let phases = summary["cells"][0]["phases"].as_array().unwrap();
    let phase = |name: &str| phases.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no {name}: {phases:?}"));
    assert_eq!(phase("step clog-gone")["message"], "ERROR:  could not access status of transaction 42");
    assert!(phase("step old-news").get("message").is_none(), "{phases:?}");
    assert!(phase("step pg2-never-says-it").get("message").is_none(), "a failure matched nothing: {phases:?}");
    assert_eq!(summary["cells"][0]["output"], "(pg2's server log gained nothing)");

    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("| Cell | PostgreSQL | Phase | Outcome | Seconds | Log message | Notes |"), "{text}");
    assert!(text.contains("| step clog-gone | passed | ") && text.contains(" | ERROR:  could not access status of transaction 42 |  |"), "the line once, not again as a note:\n{text}");
}

#[test]
fn a_dry_run_marks_and_reads_no_log() {
    let dir = setup(LOG_STEPS);
    let out = clusterlab().args(["--dry-run", "matrix"]).arg(matrix_file(&dir)).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("clusterlab-pg log-"), "{}", stdout(&out));
}

#[test]
fn dry_run_brings_up_each_cell_in_its_own_workdir() {
    let dir = setup(THREE);
    let junit = dir.path().join("out.xml");
    let json = dir.path().join("out.json");
    let out = clusterlab()
        .args(["--dry-run", "matrix", "--jobs", "2", "--junit"])
        .arg(&junit)
        .arg("--json")
        .arg(&json)
        .arg(matrix_file(&dir))
        .output()
        .unwrap();
    let (so, se) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{se}");
    assert!(se.contains("3 of 3 cells, 2 at a time"), "{se}");
    for cell in ["pg13-f2-slots", "pg15-f2-slots", "pg17-f2-slots"] {
        let wd = shell_words::quote(&workdir(&dir, cell).display().to_string()).into_owned();
        assert!(so.contains(&format!("docker rm -f -v clusterlab-{cell}-pg1 clusterlab-{cell}-pg2 clusterlab-{cell}-pg3")), "{so}");
        let line = format!("(cd {wd} && vagrant up --no-provision --provider docker)");
        assert_eq!(so.matches(&line).count(), 1, "{line} once in:\n{so}");
        for node in ["pg1", "pg2", "pg3"] {
            let line = format!("docker exec clusterlab-{cell}-{node} bash /tmp/clusterlab-provision.sh");
            assert_eq!(so.matches(&line).count(), 1, "{line} once in:\n{so}");
        }
        assert!(so.contains(&format!("docker exec clusterlab-{cell}-pg1 timeout 300 bash -c 'echo hello from the leader'")), "{so}");
        // Up before the step, the step before destroy.
        let up = so.find(&format!("(cd {wd} && vagrant up")).unwrap();
        let step = so.find(&format!("docker exec clusterlab-{cell}-pg1")).unwrap();
        let destroy = so.find(&format!("docker rm -f -v clusterlab-{cell}-pg1")).unwrap();
        assert!(up < step && step < destroy, "{so}");
        assert!(se.contains(&format!("{cell}: verify skipped (dry run)")) && se.contains(&format!("{cell}: PASSED in")), "{se}");
    }
    assert!(so.contains("3 passed, 0 failed"), "{so}");

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
    assert!(xml.contains(r#"<testsuite name="m.matrix.yaml" tests="3" disabled="0" errors="0" failures="0""#), "{xml}");
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(summary["passed"], 3);
    let phases: Vec<&str> = summary["cells"][0]["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(phases, ["up", "step hello", "destroy"]);
}

/// A bin directory with a fake `vagrant` and `docker` that log their calls to
/// `$FAKE_LOG` (prefixed with the cell, from the working directory). vagrant
/// sleeps in `up` for `$FAKE_UP_SLEEP` seconds; docker accepts the
/// provisioning's copies and fails pg2's script in the cell named by
/// `$FAKE_FAIL_CELL`; any other `docker exec` runs the command here, with
/// `$FAKE_NODE` set to the container's node. A fake `clusterlab-pg` has the
/// log verbs of the real one, over `pglogs/NODE.log` beside `$FAKE_LOG`.
fn fake_bin(dir: &Path) -> PathBuf {
    let vagrant = r#"#!/bin/sh
cell=$(basename "$PWD")
echo "$cell vagrant $*" >> "$FAKE_LOG"
if [ "$1" = up ] && [ -n "$FAKE_UP_SLEEP" ]; then exec sleep "$FAKE_UP_SLEEP"; fi
echo "fake vagrant: $*"
"#;
    let docker = r#"#!/bin/sh
echo "- docker $*" >> "$FAKE_LOG"
case "$1" in
  exec)
    case "$2 $3 $4" in
      "-i "*) exit 0 ;;
      *" bash /tmp/clusterlab-provision.sh")
        node=${2##*-}; cell=${2#clusterlab-}; cell=${cell%-*}
        echo "clusterlab[$node]: provisioning"
        if [ "$cell" = "$FAKE_FAIL_CELL" ] && [ "$node" = pg2 ]; then
          echo "clusterlab[pg2]: FAILED during: base backup from pg1"
          exit 1
        fi
        exit 0 ;;
    esac
    export FAKE_NODE="${2##*-}"
    shift 2; exec "$@" ;;
  *) exit 1 ;;
esac
"#;
    let pg = r#"#!/bin/sh
echo "- clusterlab-pg[$FAKE_NODE] $*" >> "$FAKE_LOG"
f="$(dirname "$FAKE_LOG")/pglogs/$FAKE_NODE.log"
case "$1" in
  log-offset) if [ -f "$f" ]; then echo "$f=$(stat -c %s "$f")"; fi ;;
  log-since)
    shift; off=0
    for m in "$@"; do case $m in "$f="*) off=${m#*=} ;; esac; done
    if [ -f "$f" ]; then tail -c +"$((off + 1))" "$f"; fi ;;
  stop|save|start|reset) ;;
  *) exit 2 ;;
esac
"#;
    support::fake_programs(dir, &[("vagrant", vagrant), ("docker", docker), ("clusterlab-pg", pg)])
}

fn path_with(bin: &Path) -> String {
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

/// A real run (no --dry-run) through the fakes. Verify would connect to the
/// cells' addresses, where nothing listens, so it is turned off.
fn fake_run(dir: &tempfile::TempDir, fail_cell: &str, args: &[&str]) -> (std::process::Output, String, String) {
    let bin = fake_bin(dir.path());
    let log = dir.path().join("calls.log");
    let junit = dir.path().join("out.xml");
    let out = clusterlab()
        .env("PATH", path_with(&bin))
        .env("FAKE_LOG", &log)
        .env("FAKE_FAIL_CELL", fail_cell)
        .args(["matrix", "--no-verify", "--junit"])
        .arg(&junit)
        .args(args)
        .arg(matrix_file(dir))
        .output()
        .unwrap();
    (out, std::fs::read_to_string(&log).unwrap_or_default(), std::fs::read_to_string(&junit).unwrap_or_default())
}

#[test]
fn failing_cell_is_reported_with_its_output_and_destroyed() {
    let dir = setup(THREE);
    let (out, calls, xml) = fake_run(&dir, "pg15-f2-slots", &["--jobs", "2"]);
    let (so, se) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{se}");
    assert!(se.contains("pg15-f2-slots: FAILED in") && se.contains("up: `docker exec clusterlab-pg15-f2-slots-pg2 bash /tmp/clusterlab-provision.sh` failed (exit 1)"), "{se}");
    assert!(so.contains("2 passed, 1 failed"), "{so}");

    // The failure, its phase and vagrant's output are in the JUnit report.
    assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
    assert!(xml.contains(r#"failures="1""#), "{xml}");
    assert!(xml.contains(r#"<failure message="up: `docker exec clusterlab-pg15-f2-slots-pg2 bash /tmp/clusterlab-provision.sh` failed (exit 1)" type="up">"#), "{xml}");
    assert!(xml.contains("clusterlab[pg2]: FAILED during: base backup from pg1"), "{xml}");
    assert!(xml.contains("provisioning of node pg2 failed during: base backup from pg1"), "the hint: {xml}");

    // The failed cell ran no step; every cell was destroyed, and its workdir removed.
    assert!(calls.contains("- docker exec clusterlab-pg15-f2-slots-pg2 bash /tmp/clusterlab-provision.sh"), "{calls}");
    assert!(!calls.contains("clusterlab-pg15-f2-slots-pg1 timeout"), "{calls}");
    for cell in ["pg13-f2-slots", "pg15-f2-slots", "pg17-f2-slots"] {
        assert!(calls.contains(&format!("- docker rm -f -v clusterlab-{cell}-pg1")), "{cell}: {calls}");
        assert!(!workdir(&dir, cell).exists(), "{cell}'s workdir is left");
    }
    assert!(calls.contains("- docker exec clusterlab-pg13-f2-slots-pg1 timeout 300 bash -c echo hello from the leader"), "{calls}");

    // Its vagrant logs were saved before destroy, and the hint points there.
    let logs = dir.path().join(".clusterlab/matrix-m/pg15-f2-slots.logs");
    assert!(std::fs::read_to_string(logs.join("provision-pg2.log")).unwrap().contains("FAILED during: base backup"));
    assert!(xml.contains(&format!("Full output: {}", logs.join("provision-pg2.log").display())), "{xml}");
}

#[test]
fn failing_step_keeps_its_output() {
    let dir = setup("base: base.yaml\naxes:\n  version: [15]\nsteps:\n  - {name: deliberate, run: 'echo deliberate failure; echo on stderr >&2; exit 1', timeout: 20}\n");
    let json = dir.path().join("out.json");
    let (out, _, xml) = fake_run(&dir, "", &["--json", json.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(xml.contains(r#"<failure message="step deliberate: exit 1 on pg1" type="step deliberate">"#), "{xml}");
    assert!(xml.contains("stdout:\ndeliberate failure\nstderr:\non stderr"), "{xml}");
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let cell = &summary["cells"][0];
    assert_eq!(cell["result"], "failed");
    assert_eq!(cell["failed_phase"], "step deliberate");
    assert!(cell["output"].as_str().unwrap().contains("deliberate failure"));
    // The failed step's phase carries its one-line summary; up has none.
    let phases = cell["phases"].as_array().unwrap();
    assert_eq!(phases[0]["name"], "up");
    assert!(phases[0].get("detail").is_none(), "{phases:?}");
    assert_eq!(phases[1]["name"], "step deliberate");
    assert_eq!(phases[1]["detail"], "exit 1 on pg1");
    assert_eq!(summary["failed"], 1);
}

#[test]
fn step_timeout_is_a_failure() {
    let dir = setup("base: base.yaml\nsteps:\n  - {name: slow, run: 'sleep 5', timeout: 1}\n");
    let (out, _, xml) = fake_run(&dir, "", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(xml.contains("step slow: timed out after 1 s on pg1"), "{xml}");
}

#[test]
fn keep_failed_leaves_the_cell_up_and_says_how_to_reach_it() {
    let dir = setup(THREE);
    let (out, calls, _) = fake_run(&dir, "pg13-f2-slots", &["--keep-failed", "--filter", "pg13", "--filter", "pg15"]);
    let se = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{se}");
    assert!(!calls.contains("docker rm -f -v clusterlab-pg13-f2-slots"), "{calls}");
    assert!(calls.contains("docker rm -f -v clusterlab-pg15-f2-slots"), "{calls}");
    assert!(!calls.contains("pg17"), "filtered out: {calls}");
    let spec = dir.path().join(".clusterlab/matrix-m/pg13-f2-slots.yaml");
    assert!(se.contains(&format!("`clusterlab ssh {} pg1`", spec.display())), "{se}");
    assert!(se.contains(&format!("`clusterlab status {}`", spec.display())), "{se}");
    assert!(workdir(&dir, "pg13-f2-slots").join("Vagrantfile").is_file());
}

#[test]
fn fail_fast_starts_no_new_cell() {
    let dir = setup(THREE);
    let (out, calls, xml) = fake_run(&dir, "pg13-f2-slots", &["--jobs", "1", "--fail-fast"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!calls.contains("pg15-f2-slots") && !calls.contains("pg17-f2-slots"), "{calls}");
    assert_eq!(xml.matches("<skipped").count(), 2, "{xml}");
    assert!(stdout(&out).contains("0 passed, 1 failed, 0 interrupted, 2 skipped"), "{}", stdout(&out));
}

#[test]
fn sigterm_stops_new_cells_and_destroys_the_started_ones() {
    let dir = setup(THREE);
    let bin = fake_bin(dir.path());
    let log = dir.path().join("calls.log");
    let junit = dir.path().join("out.xml");
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("clusterlab"))
        .env("PATH", path_with(&bin))
        .env("FAKE_LOG", &log)
        .env("FAKE_UP_SLEEP", "30")
        .args(["matrix", "--no-verify", "--jobs", "1", "--junit"])
        .arg(&junit)
        .arg(matrix_file(&dir))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first cell is in `vagrant up`, then stop the run.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("vagrant up") {
        assert!(Instant::now() < deadline, "vagrant up never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(20), "the sleeping vagrant was not interrupted");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));

    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.contains("docker rm -f -v clusterlab-pg13-f2-slots-pg1"), "{calls}");
    assert!(!calls.contains("pg15") && !calls.contains("pg17"), "{calls}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"errors="1""#) && xml.matches("<skipped").count() == 2, "{xml}");
}

#[test]
fn report_other_than_html_or_md_is_refused_before_anything_runs() {
    let dir = setup(THREE);
    let out = clusterlab().args(["--dry-run", "matrix", "--report", "report.pdf"]).arg(matrix_file(&dir)).output().unwrap();
    let se = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{se}");
    assert!(se.contains("--report") && se.contains("report.pdf") && se.contains("ending in .html") && se.contains(".md"), "{se}");
    assert!(!dir.path().join(".clusterlab").exists(), "no cell was written");
}

#[test]
fn report_md_is_a_table_of_cells_and_phases() {
    let dir = setup(THREE);
    let md = dir.path().join("report.md");
    let (out, _, _) = fake_run(&dir, "pg15-f2-slots", &["--report", md.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.starts_with("# clusterlab matrix: m.matrix.yaml\n\n3 cells on PostgreSQL 13, 15, 17: 2 passed, 1 failed"), "{text}");
    assert!(text.contains("| Cell | PostgreSQL | Phase | Outcome | Seconds | Notes |"), "no writes check, no loss columns:\n{text}");
    assert!(text.contains("| pg13-f2-slots | 13 | step hello | passed | "), "{text}");
    assert!(text.contains(" | hello from the leader |"), "{text}");
    assert!(text.contains("| pg15-f2-slots | 15 | up | failed | "), "{text}");
    assert!(text.contains("| **pg17-f2-slots** | **17** | **total** | **passed** |"), "{text}");
    assert!(!text.contains("<svg") && !text.contains("Rows lost"), "{text}");
}

/// Two files whose cells need the same cluster share it: one up with a
/// known state saved, a reset before the second file's cell, one destroy;
/// the reports name each cell with its file, JUnit has a suite per file.
/// A cell of another version gets a cluster of its own.
#[test]
fn cells_of_several_files_share_a_cluster() {
    let dir = setup(THREE);
    let second = dir.path().join("n.matrix.yaml");
    std::fs::write(&second, "base: base.yaml\nnetwork: 10.77.0.0/16\naxes:\n  version: [15, 16]\nsteps:\n  - name: again\n    run: echo second file\n").unwrap();
    let json = dir.path().join("out.json");
    let (out, calls, xml) = fake_run(&dir, "", &["--jobs", "2", "--json", json.to_str().unwrap(), "--filter", "pg15", "--filter", "pg16", second.to_str().unwrap()]);
    let (so, se) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{se}");
    assert!(se.contains("matrix n.matrix.yaml, m.matrix.yaml: 3 of 5 cells on 2 clusters"), "{se}");
    assert!(so.contains("m/pg15-f2-slots") && so.contains("n/pg15-f2-slots") && so.contains("n/pg16-f2-slots") && so.contains("3 passed"), "{so}");
    // n's pg15 cell (the first file's) came up, saving its known state; m's ran on it after a reset.
    assert_eq!(calls.matches("pg15-f2-slots vagrant up").count(), 1, "{calls}");
    assert!(calls.contains("- clusterlab-pg[pg1] save"), "{calls}");
    assert!(calls.contains("- clusterlab-pg[pg2] reset 10.77.0.10"), "{calls}");
    assert!(calls.contains("- docker exec clusterlab-pg15-f2-slots-pg1 timeout 300 bash -c echo hello from the leader"), "{calls}");
    assert_eq!(calls.matches("- docker rm -f -v clusterlab-pg15-f2-slots-pg1").count(), 1, "{calls}");
    assert!(calls.contains("pg16-f2-slots vagrant up"), "{calls}");
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let phases = |cell: &str| -> Vec<String> {
        let c = summary["cells"].as_array().unwrap().iter().find(|c| c["name"] == cell).unwrap();
        c["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(phases("n/pg15-f2-slots"), ["up", "step again"]);
    assert_eq!(phases("m/pg15-f2-slots"), ["reset", "step hello", "destroy"]);
    assert_eq!(phases("n/pg16-f2-slots"), ["up", "step again", "destroy"]);
    assert_eq!(summary["files"].as_array().unwrap().len(), 2);
    assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");
    assert!(xml.contains(r#"classname="clusterlab.matrix.n""#) && xml.contains(r#"classname="clusterlab.matrix.m""#), "{xml}");
}

/// Two files on different bases can name the same cluster (`pg15-f2-slots`
/// both): their machines would have one name, so with two workers the second
/// group waits for the first to be destroyed before it comes up.
#[test]
fn groups_of_one_cluster_name_take_turns() {
    let dir = setup(THREE);
    std::fs::write(dir.path().join("other.yaml"), format!("{BASE}postgresql_conf: {{work_mem: 8MB}}\n")).unwrap();
    let second = dir.path().join("n.matrix.yaml");
    std::fs::write(&second, "base: other.yaml\naxes:\n  version: [15]\nsteps:\n  - name: again\n    run: echo second file\n").unwrap();
    let (out, calls, _) = fake_run(&dir, "", &["--jobs", "2", "--filter", "pg15", second.to_str().unwrap()]);
    let (so, se) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{se}");
    assert!(so.contains("m/pg15-f2-slots") && so.contains("n/pg15-f2-slots") && so.contains("2 passed"), "{so}");
    let ups: Vec<usize> = calls.match_indices("pg15-f2-slots vagrant up").map(|(i, _)| i).collect();
    let destroys: Vec<usize> = calls.match_indices("- docker rm -f -v clusterlab-pg15-f2-slots-pg1").map(|(i, _)| i).collect();
    assert_eq!((ups.len(), destroys.len()), (2, 2), "two clusters, one after the other: {calls}");
    assert!(destroys[0] < ups[1], "the second came up before the first was destroyed: {calls}");
}

/// `--cell` and the fan-out lists are of one file.
#[test]
fn cell_and_fan_out_lists_with_several_files_are_refused() {
    let dir = setup(THREE);
    let out = clusterlab().args(["matrix", "--list", "--cell", "pg15-f2-slots"]).arg(matrix_file(&dir)).arg(matrix_file(&dir)).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(says(&stderr(&out), "--cell picks a cell of one matrix file"), "{}", stderr(&out));
    let out = clusterlab().args(["matrix", "--list", "--format", "github"]).arg(matrix_file(&dir)).arg(matrix_file(&dir)).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(says(&stderr(&out), "a CI fan-out list (--format github or gitlab) is of one matrix file's cells"), "{}", stderr(&out));
    let out = clusterlab().args(["matrix", "--list"]).arg(matrix_file(&dir)).arg(dir.path().join("n.matrix.yaml")).output().unwrap();
    assert!(!out.status.success(), "a missing second file must be refused");
}

/// Every shipped drill file loads, its base spec and steps valid, and names
/// at least one cell (the CI runs every cell of each for real: all but
/// two in one call, `lag` on VMs, `upgrade` in the upgrade phase).
#[test]
fn every_shipped_drill_file_loads() {
    let mut seen = 0;
    for entry in std::fs::read_dir("clusters/drills").unwrap() {
        let p = entry.unwrap().path();
        if !p.to_string_lossy().ends_with(".matrix.yaml") {
            continue;
        }
        let out = clusterlab().args(["matrix", p.to_str().unwrap(), "--list"]).output().unwrap();
        assert!(out.status.success(), "{}: {}", p.display(), stderr(&out));
        assert!(!stdout(&out).trim().is_empty(), "{}: no cell", p.display());
        seen += 1;
    }
    assert!(seen >= 15, "only {seen} drill files found");
}
