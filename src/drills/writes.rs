//! Acknowledged writes across a failure (Jepsen's rule: a write whose COMMIT
//! returned must survive). `writes start` runs a writer in the background
//! that commits numbered rows to the leader, one transaction each, and notes
//! every id whose COMMIT returned; then the drill breaks something; `writes
//! check` stops the writer and reads every noted id back from the leader of
//! the moment.
//!
//! The writer is a process of its own (this binary, `writes-worker`), so it
//! outlives a `clusterlab writes start` on the command line and writes on
//! while a matrix runs the next steps.

use super::context::DrillCtx;
use crate::cluster::{Cluster, Ctx};
use crate::error::{exit, Error, Result};
use crate::state::Operation;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct WritesArgs {
    #[arg(value_enum)]
    pub action: WritesAction,
    /// `start` returns once this many rows are acknowledged.
    #[arg(long, default_value_t = 50)]
    pub min_rows: u64,
    /// `check` fails on any lost row even with asynchronous replication
    /// (after a switchover, where nothing may be lost).
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WritesAction {
    Start,
    Check,
}

/// What the worker needs to write (it has no spec: a matrix cell's lives in memory).
#[derive(Debug, Serialize, Deserialize)]
struct Target {
    node: String,
    host: String,
    user: String,
    password: String,
    database: String,
}

/// Writers this process started, to reap after `check` kills them.
static WORKERS: Mutex<Vec<std::process::Child>> = Mutex::new(Vec::new());

const TABLE: &str = "clusterlab_writes";

fn paths(dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    (dir.join("writes.json"), dir.join("writes.acked"), dir.join("writes.pid"), dir.join("writes.log"))
}

pub(super) fn run(ctx: &Ctx, c: &Cluster, args: &WritesArgs) -> Result<String> {
    match args.action {
        WritesAction::Start => start(ctx, c, args.min_rows),
        WritesAction::Check => check(ctx, c, args.strict),
    }
}

/// A writer process on the live leader, once it has `min_rows` acknowledged.
fn start(ctx: &Ctx, c: &Cluster, min_rows: u64) -> Result<String> {
    let vagrant = c.vagrant(ctx);
    let d = DrillCtx::begin(ctx, c, &vagrant, Operation::Writes, "write to")?;
    let (start, plan) = (d.start, &d.plan);
    let leader = plan.leader();
    if !ctx.runner.is_real() {
        return Ok(String::new());
    }
    let dir = c.workdir.root.clone();
    let (target, acked, pid, log) = paths(&dir);
    stop_worker(&pid);
    let t = Target { node: leader.name.clone(), host: leader.address.clone(), user: plan.lab_user.into(), password: c.workdir.lab_password()?, database: plan.lab_database.into() };
    std::fs::write(&target, serde_json::to_string(&t).expect("target serializes")).map_err(|e| Error::io(&target, e))?;
    let _ = std::fs::remove_file(&acked);
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    let log_file = std::fs::File::create(&log).map_err(|e| Error::io(&log, e))?;
    let mut child = std::process::Command::new(exe)
        .arg("writes-worker")
        .arg(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| Error::io(&log, e))?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| Error::io("clusterlab writes-worker", e))?;
    std::fs::write(&pid, child.id().to_string()).map_err(|e| Error::io(&pid, e))?;
    ctx.progress(start, &format!("writer started on {} (pid {}), waiting for {min_rows} acknowledged rows", leader.name, child.id()));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = read_acked(&acked).len() as u64;
        if n >= min_rows {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let why = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(Error::Verify(format!("the writer stopped ({status}) after {n} rows: {}", why.trim())));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Verify(format!("the writer acknowledged only {n} rows in 60 s; {}", log.display())));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    WORKERS.lock().expect("writers lock").push(child);
    Ok(format!("writer on {} running", leader.name))
}

/// Stops the writer; every acknowledged row must be on the live leader.
fn check(ctx: &Ctx, c: &Cluster, strict: bool) -> Result<String> {
    let plan = c.current_plan()?;
    let dir = c.workdir.root.clone();
    let (target, acked_path, pid, log) = paths(&dir);
    if !target.is_file() {
        return Err(Error::usage("no writer was started for this cluster", "`clusterlab writes SPEC start` first"));
    }
    if !ctx.runner.is_real() {
        return Ok(String::new());
    }
    stop_worker(&pid);
    let acked = read_acked(&acked_path);
    let leader = plan.leader();
    let mut client = crate::verify::connect(leader, &c.workdir.lab_password()?, &plan, Duration::from_secs(10))?;
    let ids: Vec<i64> = acked.clone();
    let rows = client
        .query(&format!("SELECT id FROM {TABLE} WHERE id = ANY($1)"), &[&ids])
        .map_err(|e| Error::sql(&leader.name, format!("reading the written rows back: {}", crate::verify::pg_message(&e))))?;
    let present: std::collections::HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
    let lost: Vec<i64> = acked.iter().copied().filter(|id| !present.contains(id)).collect();
    let total: i64 = client.query_one(&format!("SELECT count(*) FROM {TABLE}"), &[]).map(|r| r.get(0)).unwrap_or(0);
    let stopped = std::fs::read_to_string(&log).unwrap_or_default();
    let why = stopped.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("stopped by check");
    let unacked = total - present.len() as i64;
    let mut report = format!(
        "{} rows acknowledged, {} of them on the leader {}, {} lost; {} more committed without an acknowledgement (writer: {why})",
        acked.len(),
        present.len(),
        leader.name,
        lost.len(),
        unacked.max(0)
    );
    if !lost.is_empty() {
        let first: Vec<String> = lost.iter().take(10).map(|i| i.to_string()).collect();
        report += &format!("; lost ids: {}{}", first.join(", "), if lost.len() > 10 { ", ..." } else { "" });
        let sync = plan.synchronous_standby_names.is_some();
        if sync || strict {
            let why = if sync { "replication is synchronous" } else { "--strict" };
            return Err(Error::Verify(format!("acknowledged rows were lost although {why}: {report}")));
        }
    }
    if !ctx.quiet {
        eprintln!("{report}");
    }
    Ok(report)
}

/// Stops a writer this tool started (its pid is in the working directory).
fn stop_worker(pid_file: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file).ok().and_then(|p| p.trim().parse::<u32>().ok()) else { return };
    let mut workers = WORKERS.lock().expect("writers lock");
    if let Some(i) = workers.iter().position(|c| c.id() == pid) {
        let mut child = workers.remove(i);
        let _ = child.kill();
        let _ = child.wait();
    } else if Path::new(&format!("/proc/{pid}/cmdline")).is_file()
        && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("writes-worker"))
    {
        // Started by an earlier `clusterlab writes start`; still ours by its
        // command line. SIGKILL: it would finish its statement on SIGTERM.
        let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        for _ in 0..50 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_file(pid_file);
}

fn read_acked(path: &Path) -> Vec<i64> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// The writer itself: one INSERT per transaction, each acknowledged id
/// appended to `writes.acked` only after its COMMIT returned. It stops at the
/// first error (the leader is gone) and says so in `writes.log`.
pub fn worker(dir: &Path) -> Result<i32> {
    let (target, acked, _, _) = paths(dir);
    let text = std::fs::read_to_string(&target).map_err(|e| Error::io(&target, e))?;
    let t: Target = serde_json::from_str(&text).map_err(|e| Error::usage(format!("{}: {e}", target.display()), "run `clusterlab writes SPEC start`"))?;
    let mut client = crate::verify::connect_as(&t.host, &t.user, &t.password, &t.database, "clusterlab-writer", Duration::from_secs(5))
        .map_err(|e| Error::Verify(format!("writer: cannot connect to {}: {e}", t.node)))?;
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {TABLE}; CREATE TABLE {TABLE} (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"))
        .map_err(|e| Error::Verify(format!("writer: {}", crate::verify::pg_message(&e))))?;
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(&acked).map_err(|e| Error::io(&acked, e))?;
    let insert = client.prepare(&format!("INSERT INTO {TABLE} (id) VALUES ($1)")).map_err(|e| Error::Verify(format!("writer: {e}")))?;
    // Ten minutes at most: a writer must not outlive a forgotten drill for long.
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut id: i64 = 1;
    while Instant::now() < deadline {
        if let Err(e) = client.execute(&insert, &[&id]) {
            println!("stopped at row {id}: {}", crate::verify::pg_message(&e));
            return Ok(exit::OK);
        }
        writeln!(out, "{id}").map_err(|e| Error::io(&acked, e))?;
        id += 1;
    }
    println!("stopped after 10 minutes at row {id}");
    Ok(exit::OK)
}
