//! The binary as a user runs it: exit codes, messages, the command sequence
//! of `up`/`destroy` (through --dry-run and a fake vagrant on PATH), the lock,
//! state after a failure, and secrets staying out of output.

mod support;
use assert_cmd::Command;
use predicates::prelude::*;
use std::fs;
use std::path::{Path, PathBuf};

fn clusterlab() -> Command {
    let mut c = Command::cargo_bin("clusterlab").unwrap();
    c.env_remove("RUST_LOG").env("NO_COLOR", "1");
    c
}

/// A spec in a temp dir; returns (dir guard, spec path).
fn spec(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.yaml");
    fs::write(&p, text).unwrap();
    (dir, p)
}

const DOCKER: &str = "name: t1\nversion: 15\nbox: img\nprovider: docker\nnetwork: 10.60.0.0/24\ntopology: {followers: 2}\n";

#[test]
fn check_reports_bad_input_with_exit_2_and_location() {
    let (_d, p) = spec("name: t1\nversion: 15\ntopology:\n  followers: 2\n  leadr: {}\n");
    clusterlab()
        .arg("check")
        .arg(&p)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("c.yaml:5:3: topology: unknown field `leadr`"));
}

#[test]
fn check_json_prints_the_plan() {
    let (_d, p) = spec(DOCKER);
    let out = clusterlab().args(["check", "--json"]).arg(&p).assert().success().get_output().stdout.clone();
    let plan: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(plan["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(plan["nodes"][1]["primary_conninfo"], "host=10.60.0.10 port=5432 user=replicator sslmode=disable application_name=pg2");
    assert_eq!(plan["facts"]["standby_config"], "standby.signal");
    assert!(plan.get("box_majors").is_none(), "no cluster is up, so no box was looked at: {plan}");
    // Once `up` has read the box's majors into state.json, check --json carries them.
    let wd = p.parent().unwrap().join(".clusterlab/t1");
    std::fs::create_dir_all(&wd).unwrap();
    std::fs::write(wd.join("state.json"), r#"{"cluster": "t1", "provider": "docker", "phase": "ready", "updated_at": 0, "box_majors": ["15", "18"]}"#).unwrap();
    let out = clusterlab().args(["check", "--json"]).arg(&p).assert().success().get_output().stdout.clone();
    let plan: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(plan["box_majors"], serde_json::json!(["15", "18"]));
}

#[test]
fn dry_run_up_prints_the_vagrant_sequence_and_records_nothing() {
    let (d, p) = spec(DOCKER);
    let out = clusterlab().args(["--dry-run", "up"]).arg(&p).assert().success().get_output().stdout.clone();
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].ends_with("vagrant up --no-provision --provider docker)"), "{out}");
    // The provisioners' files and script through docker exec, not `vagrant provision`.
    let run = |node: &str| lines.iter().position(|l| *l == format!("docker exec clusterlab-t1-{node} bash /tmp/clusterlab-provision.sh")).unwrap_or_else(|| panic!("{node}: {out}"));
    let copied = lines.iter().position(|l| *l == "docker exec -i clusterlab-t1-pg1 sh -c 'cat > /tmp/clusterlab-provision.sh'").expect(&out);
    assert!(copied < run("pg1"), "{out}");
    // The followers' wave (in parallel, either order) after the leader.
    assert!(run("pg1") < run("pg2") && run("pg1") < run("pg3"), "{out}");
    let work = d.path().join(".clusterlab/t1");
    assert!(!work.join("state.json").exists(), "a dry run must not record state");
    // The password never shows.
    let secrets = fs::read_to_string(work.join("secrets/passwords")).unwrap();
    for line in secrets.lines() {
        let pw = line.split_once('=').unwrap().1;
        assert!(!out.contains(pw));
        assert!(!fs::read_to_string(work.join("Vagrantfile")).unwrap().contains(pw));
    }
}

#[test]
fn secrets_are_private_and_stable_across_renders() {
    use std::os::unix::fs::PermissionsExt;
    let (d, p) = spec(DOCKER);
    clusterlab().arg("render").arg(&p).assert().success();
    let file = d.path().join(".clusterlab/t1/secrets/passwords");
    let first = fs::read_to_string(&file).unwrap();
    assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(fs::metadata(file.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    clusterlab().arg("render").arg(&p).assert().success();
    assert_eq!(fs::read_to_string(&file).unwrap(), first);
}

#[test]
fn render_is_deterministic() {
    let (d, p) = spec(DOCKER);
    let read = |d: &Path| -> Vec<(String, String)> {
        let mut v = Vec::new();
        for e in walk(&d.join(".clusterlab/t1")) {
            if !e.to_string_lossy().contains("secrets") {
                v.push((e.display().to_string(), fs::read_to_string(&e).unwrap()));
            }
        }
        v.sort();
        v
    };
    clusterlab().arg("render").arg(&p).assert().success();
    let a = read(d.path());
    fs::remove_dir_all(d.path().join(".clusterlab/t1/scripts")).unwrap();
    clusterlab().arg("render").arg(&p).assert().success();
    assert_eq!(a, read(d.path()));
    assert!(a.len() >= 5);
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(p).unwrap() {
        let e = e.unwrap().path();
        if e.is_dir() {
            out.extend(walk(&e));
        } else {
            out.push(e);
        }
    }
    out
}

/// A fake `vagrant` and `docker` that log their arguments; docker fails pg2's
/// provisioning script the way a failing one does.
fn fake_tools(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let log = dir.join("calls.log");
    let vagrant = format!(
        "#!/bin/sh\necho \"vagrant $*\" >> {log}\nexit 0\n",
        log = log.display()
    );
    let docker = format!(
        "#!/bin/sh\necho \"docker $*\" >> {log}\ncase \"$1 $2 $3\" in\n  \"exec -i \"*|\"exec clusterlab-t1-pg1 \"*|\"exec clusterlab-t1-pg3 \"*) exit 0 ;;\n  \"exec clusterlab-t1-pg2 bash\")\n    echo 'clusterlab[pg2]: base backup from pg1'\n    echo 'clusterlab[pg2]: FAILED during: base backup from pg1'\n    exit 1 ;;\nesac\nexit 1\n",
        log = log.display()
    );
    for (name, text) in [("vagrant", vagrant), ("docker", docker)] {
        let p = bin.join(name);
        fs::write(&p, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

fn path_with(bin: &Path) -> String {
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

#[test]
fn failed_provisioning_names_node_and_step_and_status_explains_it() {
    let (d, p) = spec(DOCKER);
    let bin = fake_tools(d.path());
    clusterlab()
        .env("PATH", path_with(&bin))
        .arg("up")
        .arg(&p)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("node pg2 failed during: base backup from pg1"));
    let state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(d.path().join(".clusterlab/t1/state.json")).unwrap()).unwrap();
    assert_eq!(state["phase"], "failed");
    assert_eq!(state["detail"], "pg2, pg3");
    clusterlab()
        .env("PATH", path_with(&bin))
        .arg("status")
        .arg(&p)
        .assert()
        .success()
        .stdout(predicate::str::contains("phase: failed (last operation: up), at pg2, pg3"))
        .stdout(predicate::str::contains("clusterlab destroy SPEC"));
    clusterlab().env("PATH", path_with(&bin)).arg("destroy").arg(&p).assert().success();
    let calls = fs::read_to_string(d.path().join("calls.log")).unwrap();
    // docker: the containers and the cluster's network directly, not through vagrant.
    assert!(calls.contains("docker rm -f -v clusterlab-t1-pg1 clusterlab-t1-pg2 clusterlab-t1-pg3"), "{calls}");
    assert!(calls.contains("docker network rm vagrant_network_"), "{calls}");
    // destroy also looks for containers vagrant may not know about.
    assert!(calls.contains("docker inspect clusterlab-t1-pg1"), "{calls}");
    assert!(!d.path().join(".clusterlab/t1").exists());
}

#[test]
fn a_busy_cluster_is_refused_and_a_stale_lock_taken_over() {
    let (d, p) = spec(DOCKER);
    let work = d.path().join(".clusterlab/t1");
    fs::create_dir_all(&work).unwrap();
    let mut holder = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    fs::write(work.join("lock"), format!("{} up\n", holder.id())).unwrap();
    clusterlab()
        .args(["--dry-run", "up"])
        .arg(&p)
        .assert()
        .code(4)
        .stderr(predicate::str::contains(format!("`clusterlab up` is running as PID {}", holder.id())));
    holder.kill().unwrap();
    holder.wait().unwrap();
    // The holder is gone: its lock is stale and taken over.
    clusterlab().args(["--dry-run", "up"]).arg(&p).assert().success();
    assert!(!work.join("lock").exists(), "the lock is released at exit");
}

#[test]
fn missing_vagrant_says_how_to_install_it() {
    let (d, p) = spec(DOCKER);
    let empty = d.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    clusterlab()
        .env("PATH", &empty)
        .arg("up")
        .arg(&p)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("`vagrant` is not installed"))
        .stderr(predicate::str::contains("apt-get install vagrant"));
}

#[test]
fn reset_without_a_known_state_says_to_run_up() {
    let (_d, p) = spec(DOCKER);
    clusterlab().arg("reset").arg(&p).assert().code(2).stderr(predicate::str::contains("clusterlab up SPEC"));
}

#[test]
fn new_writes_a_spec_that_checks() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("x.yaml");
    clusterlab().args(["new", "lab1", "--version", "9.6", "--followers", "3", "--sync", "-o"]).arg(&out).assert().success();
    clusterlab()
        .arg("check")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("lab1 PostgreSQL 9.6 on docker"))
        .stdout(predicate::str::contains("sync"));
    clusterlab().args(["new", "lab1", "-o"]).arg(&out).assert().code(2).stderr(predicate::str::contains("--force"));
}

#[test]
fn schema_and_completions_print() {
    let out = clusterlab().arg("schema").assert().success().get_output().stdout.clone();
    let schema: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(schema["properties"]["topology"].is_object());
    clusterlab().args(["completions", "bash"]).assert().success().stdout(predicate::str::contains("clusterlab"));
}

#[test]
fn templates_export_then_override() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("t");
    clusterlab().args(["templates", "export"]).arg(&t).assert().success();
    assert!(t.join("Vagrantfile.tera").is_file() && t.join("scripts/leader.sh.tera").is_file());
    let vf = fs::read_to_string(t.join("Vagrantfile.tera")).unwrap();
    fs::write(t.join("Vagrantfile.tera"), format!("# overridden\n{vf}")).unwrap();
    let (sd, p) = spec(DOCKER);
    clusterlab().arg("--templates").arg(&t).arg("render").arg(&p).assert().success();
    let rendered = fs::read_to_string(sd.path().join(".clusterlab/t1/Vagrantfile")).unwrap();
    assert!(rendered.starts_with("# overridden\n"));
}

#[test]
fn help_names_every_exit_code_once() {
    let out = clusterlab().arg("--help").assert().success().get_output().stdout.clone();
    let help = String::from_utf8(out).unwrap();
    let codes = help.split("Exit codes:").nth(1).expect("an exit code table after the commands");
    for (code, meaning) in clusterlab::error::EXIT_CODES {
        assert!(codes.contains(&format!("{code:<4} {meaning}")), "{code} in\n{codes}");
    }
    assert!(codes.contains("3    replication broken") && codes.contains("5    a SQL statement failed"), "{codes}");
}

/// A process that looks like a writer `clusterlab writes start` left running
/// (its command line names `writes-worker`), with its files in `work`.
fn fake_writer(work: &Path) -> std::process::Child {
    let child = std::process::Command::new("bash").args(["-c", "exec -a clusterlab-writes-worker sleep 60"]).spawn().unwrap();
    // Until bash has exec'd, the command line is still bash's.
    let cmdline = format!("/proc/{}/cmdline", child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !fs::read_to_string(&cmdline).unwrap_or_default().contains("writes-worker") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for (file, text) in [("writes.pid", child.id().to_string()), ("writes.json", "{}".into()), ("writes.acked", "1 0\n".into()), ("writes.log", "writing to pg1\n".into())] {
        fs::write(work.join(file), text).unwrap();
    }
    child
}

/// `reset` and `destroy` stop a writer a drill left running and forget its
/// rows (it would write on into the restored cluster); a dry run leaves it.
#[test]
fn reset_and_destroy_stop_a_running_writer() {
    let (d, p) = spec(DOCKER);
    let bin = support::fake_programs(d.path(), &[("vagrant", "#!/bin/sh\nexit 0\n"), ("docker", "#!/bin/sh\n[ \"$1\" = exec ] && exit 0\nexit 1\n")]);
    let run = |args: &[&str]| clusterlab().env("PATH", path_with(&bin)).args(args).arg(&p).assert().success();
    run(&["up", "--no-verify"]);
    let work = d.path().join(".clusterlab/t1");

    let mut writer = fake_writer(&work);
    run(&["--dry-run", "reset", "--no-verify"]);
    assert!(writer.try_wait().unwrap().is_none(), "a dry run stopped the writer");
    assert!(work.join("writes.acked").is_file());

    run(&["reset", "--no-verify"]);
    assert!(writer.wait().unwrap().code().is_none(), "the writer was not killed");
    for gone in ["writes.pid", "writes.json", "writes.acked"] {
        assert!(!work.join(gone).exists(), "{gone} is left after reset");
    }
    assert!(work.join("writes.log").is_file(), "the writer's log is kept");

    let mut writer = fake_writer(&work);
    run(&["destroy"]);
    assert!(writer.wait().unwrap().code().is_none(), "destroy left the writer running");
    assert!(!work.exists());
}
