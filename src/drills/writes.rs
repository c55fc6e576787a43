//! Acknowledged writes across a failure (Jepsen's rule: a write whose COMMIT
//! returned must survive). `writes start` runs a writer in the background
//! that commits numbered rows to the leader, one transaction each, and notes
//! every id whose COMMIT returned, with the time it returned; then the drill
//! breaks something, and the writer reconnects to whatever leads next;
//! `writes check` stops the writer, reads every noted id back from the
//! leader of the moment, and reports how long the writer saw no leader.
//!
//! The writer is a process of its own (this binary, `writes-worker`,
//! `worker.rs`), so it outlives a `clusterlab writes start` on the command
//! line and writes on while a matrix runs the next steps. The downtime is
//! computed in `downtime.rs`.

mod downtime;
mod worker;

use super::context::DrillCtx;
use crate::cluster::{Cluster, Ctx};
use crate::error::{Error, Result};
use crate::state::Operation;
use downtime::Interruption;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};
use crate::writer::files;
use worker::{Member, Target, TABLE};

pub use worker::worker;

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
    /// `check` prints its numbers as JSON on stdout (the report stays on stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WritesAction {
    Start,
    Check,
}

/// What `writes check --json` prints.
#[derive(Debug, Serialize)]
struct Checked {
    acknowledged: usize,
    present: usize,
    lost: usize,
    unacknowledged_committed: i64,
    downtime_seconds: Option<f64>,
    interruptions: Vec<Interruption>,
    reconnects: usize,
}

pub(super) fn run(ctx: &Ctx, c: &Cluster, args: &WritesArgs) -> Result<String> {
    match args.action {
        WritesAction::Start => start(ctx, c, args.min_rows),
        WritesAction::Check => check(ctx, c, args.strict, args.json),
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
    let f = files(&dir);
    crate::writer::stop(&f.pid);
    // Every node of the spec: the writer follows the leader to any of them.
    let t = Target {
        nodes: c.plan.nodes.iter().map(|n| Member { name: n.name.clone(), address: n.address.clone() }).collect(),
        spec_leader: c.plan.leader().name.clone(),
        user: plan.lab_user.into(),
        password: c.workdir.lab_password()?,
        database: plan.lab_database.into(),
    };
    std::fs::write(&f.target, serde_json::to_string(&t).expect("target serializes")).map_err(|e| Error::io(&f.target, e))?;
    let _ = std::fs::remove_file(&f.acked);
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    // Replaced while this one runs (a rebuild or an upgrade during a long
    // matrix): Linux names it `PATH (deleted)`; what is at PATH now runs.
    let exe = exe.to_str().and_then(|p| p.strip_suffix(" (deleted)")).map(std::path::PathBuf::from).unwrap_or(exe);
    let log_file = std::fs::File::create(&f.log).map_err(|e| Error::io(&f.log, e))?;
    let mut child = std::process::Command::new(exe)
        .arg("writes-worker")
        .arg(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| Error::io(&f.log, e))?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| Error::io("clusterlab writes-worker", e))?;
    std::fs::write(&f.pid, child.id().to_string()).map_err(|e| Error::io(&f.pid, e))?;
    ctx.progress(start, &format!("writer started on {} (pid {}), waiting for {min_rows} acknowledged rows", leader.name, child.id()));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = read_acked(&f.acked).len() as u64;
        if n >= min_rows {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let why = std::fs::read_to_string(&f.log).unwrap_or_default();
            return Err(Error::Verify(format!("the writer stopped ({status}) after {n} rows: {}", why.trim())));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Verify(format!("the writer acknowledged only {n} rows in 60 s; {}", f.log.display())));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    crate::writer::adopt(child);
    Ok(format!("writer on {} running", leader.name))
}

/// Stops the writer; every acknowledged row must be on the live leader.
/// Its output: the report, or with `json` the numbers as JSON.
fn check(ctx: &Ctx, c: &Cluster, strict: bool, json: bool) -> Result<String> {
    let plan = c.current_plan()?;
    let f = files(&c.workdir.root);
    if !f.target.is_file() {
        return Err(Error::usage("no writer was started for this cluster", "`clusterlab writes SPEC start` first"));
    }
    if !ctx.runner.is_real() {
        return Ok(String::new());
    }
    crate::writer::stop(&f.pid);
    let acked = read_acked(&f.acked);
    let leader = plan.leader();
    let mut client = crate::verify::connect(leader, &c.workdir.lab_password()?, &plan, Duration::from_secs(10))?;
    let ids: Vec<i64> = acked.iter().map(|a| a.id).collect();
    let rows = client
        .query(&format!("SELECT id FROM {TABLE} WHERE id = ANY($1)"), &[&ids])
        .map_err(|e| Error::sql(&leader.name, format!("reading the written rows back: {}", crate::verify::pg_message(&e))))?;
    let present: std::collections::HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
    let lost: Vec<i64> = ids.iter().copied().filter(|id| !present.contains(id)).collect();
    let total: i64 = client.query_one(&format!("SELECT count(*) FROM {TABLE}"), &[]).map(|r| r.get(0)).unwrap_or(0);
    let log = std::fs::read_to_string(&f.log).unwrap_or_default();
    let why = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("stopped by check");
    let unacked = (total - present.len() as i64).max(0);
    let down = downtime::downtime(&acked);
    let reconnects = downtime::reconnects(&log);
    let mut report = format!(
        "{} rows acknowledged, {} of them on the leader {}, {} lost; {}; {unacked} more committed without an acknowledgement (writer: {why})",
        ids.len(),
        present.len(),
        leader.name,
        lost.len(),
        downtime::summary(down.as_ref(), reconnects),
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
    if !json {
        return Ok(report);
    }
    let checked = Checked {
        acknowledged: ids.len(),
        present: present.len(),
        lost: lost.len(),
        unacknowledged_committed: unacked,
        downtime_seconds: down.as_ref().map(|d| d.longest.seconds),
        interruptions: down.map(|d| d.interruptions).unwrap_or_default(),
        reconnects,
    };
    Ok(serde_json::to_string_pretty(&checked).expect("the report serializes"))
}

fn read_acked(path: &Path) -> Vec<downtime::Ack> {
    downtime::parse_acked(&std::fs::read_to_string(path).unwrap_or_default())
}
