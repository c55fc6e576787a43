//! Running the cells: worker threads take them from a queue, each goes
//! up -> verify -> steps -> destroy (or stays up with --keep-failed), and
//! Ctrl-C or --fail-fast start no new ones. Cells that share a cluster
//! (`share.rs`) go up -> verify -> steps, reset -> verify -> steps, ...,
//! destroy.

use super::report::{millis, tail, CellReport, Failure, Outcome, PhaseTime};
use super::step::run_step;
use super::args::MatrixArgs;
use super::cell::Cell;
use super::file::Step;
use super::logwait::Marks;
use crate::cluster::{Cluster, Ctx, Method};
use crate::error::Result;
use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long verify waits for replication to settle (as `up` does).
const VERIFY_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of output kept for a failure in the reports.
const TAIL_LINES: usize = 60;

pub(super) struct Session<'a> {
    /// Quiet: the cells' vagrant output goes to their logs/ only.
    pub(super) ctx: Ctx<'a>,
    pub(super) args: &'a MatrixArgs,
    pub(super) start: Instant,
    pub(super) show_progress: bool,
    /// Set by --fail-fast after a failure: start no new cells.
    pub(super) stop: AtomicBool,
    /// Cells are named `file/cell` in the reports.
    pub(super) several_files: bool,
}

impl Session<'_> {
    /// A progress line for the terminal, also kept in the cell's log.
    fn note(&self, r: &mut CellReport, msg: &str) {
        let line = format!("[{:>6.1}s] {}: {msg}", self.start.elapsed().as_secs_f64(), r.name);
        if self.show_progress {
            eprintln!("{line}");
        }
        r.log.push(line);
    }

    fn timed<T>(&self, r: &mut CellReport, phase: &str, body: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
        let t = Instant::now();
        let out = body();
        r.phases.push(PhaseTime::new(phase, millis(t.elapsed()), out.is_ok()));
        out
    }

    /// A cell's report, named `file/cell` when several files run.
    fn report(&self, cell: &Cell, cluster: &Cluster) -> CellReport {
        let mut r = CellReport::new(cell, cluster);
        if self.several_files {
            r.name = format!("{}/{}", cell.matrix, cell.name);
        }
        r
    }

    /// The cells of one group on the first one's cluster: up (or reset),
    /// verify and steps each, and one destroy after the last that ran. A
    /// cell that fails does not stop the next, which starts from a reset;
    /// a cluster that cannot come up or be reset does, as does one kept by
    /// --keep-failed.
    fn run_group(&self, cells: &[(&Cell, &Cluster)], group: &[usize]) -> Vec<(usize, CellReport)> {
        let host = Host { cell: cells[group[0]].0, cluster: cells[group[0]].1, shared: group.len() > 1 };
        let mut done = Vec::new();
        // The last cell that ran, finished once the cluster is torn down.
        let mut open: Option<(usize, CellReport, Option<Failure>, Instant)> = None;
        let mut no_more: Option<String> = None;
        for (k, &i) in group.iter().enumerate() {
            let cell = cells[i].0;
            if let Some(reason) = self.why_not_start().map(String::from).or_else(|| no_more.clone()) {
                done.push((i, self.skipped(cell, cells[i].1, &reason)));
                continue;
            }
            if let Some((j, r, f, t0)) = open.take() {
                done.push((j, self.finish(r, f, t0, &host)));
            }
            let t0 = Instant::now();
            let mut r = self.report(cell, cells[i].1);
            let failure = self.phases(cell, &host, k == 0, &mut r).err();
            if let Some(f) = &failure {
                if self.args.keep_failed {
                    no_more = Some(format!("the cluster it shares was kept for debugging after {} failed", r.name));
                } else if f.phase == "up" || f.phase == "reset" {
                    no_more = Some(format!("the cluster it shares failed to {} for {}", f.phase, r.name));
                }
            }
            open = Some((i, r, failure, t0));
        }
        if let Some((j, mut r, mut f, t0)) = open {
            self.tear_down(&mut r, &mut f, &host);
            done.push((j, self.finish(r, f, t0, &host)));
        }
        done
    }

    /// Destroys the group's cluster, its logs saved first; or, after a
    /// failure with --keep-failed, leaves it up and says how to reach it.
    fn tear_down(&self, r: &mut CellReport, failure: &mut Option<Failure>, host: &Host) {
        let cluster = host.cluster;
        if failure.is_some() && self.args.keep_failed {
            r.kept = true;
            r.logs = Some(cluster.workdir.path("logs"));
            let p = shell_words::quote(&host.cell.spec_path.display().to_string()).into_owned();
            let leader = &cluster.plan.leader().name;
            self.note(r, &format!("kept for debugging: `clusterlab status {p}`, `clusterlab ssh {p} {leader}`; `clusterlab destroy {p}` when done"));
            return;
        }
        if self.ctx.runner.is_real() {
            r.logs = save_logs(&cluster.workdir.path("logs"), &host.saved_logs());
        }
        self.note(r, "destroy");
        let destroyed = self.timed(r, "destroy", || cluster.destroy(&self.ctx).map_err(|e| Failure::from_error("destroy", &e)));
        match (destroyed, failure) {
            (Err(e), f @ None) => *f = Some(e),
            (Err(e), Some(f)) => f.output = Some(format!("{}\n(destroy failed too: {})", f.output.take().unwrap_or_default(), e.message)),
            (Ok(()), _) => {}
        }
    }

    /// The cell's result, time and progress line.
    fn finish(&self, mut r: CellReport, failure: Option<Failure>, t0: Instant, host: &Host) -> CellReport {
        let total = millis(t0.elapsed());
        r.seconds = total;
        let Some(mut f) = failure else {
            r.result = Outcome::Passed;
            self.note(&mut r, &format!("PASSED in {total:.1}s"));
            return r;
        };
        // The hints of cluster operations say `clusterlab status SPEC` and
        // point into logs/, which destroy removes: name the spec the cluster
        // came up from and where its logs are saved.
        let workdir_logs = host.cluster.workdir.path("logs");
        let spec = format!(" {}", shell_words::quote(&host.cell.spec_path.display().to_string()));
        let logs = if r.kept { workdir_logs.clone() } else { r.logs.clone().unwrap_or_else(|| host.saved_logs()) };
        f.output = f.output.map(|o| o.replace(" SPEC", &spec).replace(&workdir_logs.display().to_string(), &logs.display().to_string()));
        r.result = if f.interrupted { Outcome::Interrupted } else { Outcome::Failed };
        let word = if f.interrupted { "INTERRUPTED" } else { "FAILED" };
        self.note(&mut r, &format!("{word} in {total:.1}s: {}: {}", f.phase, f.message));
        r.failed_phase = Some(f.phase);
        r.error = Some(f.message);
        r.output = f.output.map(|o| tail(&o, TAIL_LINES));
        r
    }

    /// up (or, on a shared cluster after its first cell, reset), verify and
    /// the steps; the first failure ends the cell.
    fn phases(&self, cell: &Cell, host: &Host, first: bool, r: &mut CellReport) -> Result<(), Failure> {
        let real = self.ctx.runner.is_real();
        let cluster = host.cluster;
        if first {
            self.note(r, "up");
            // Render + up + provision. Verify is done here rather than by `up`, so
            // its time is its own phase and its report goes to the cell, not stdout.
            // A shared cluster keeps its known state for the resets; one cell needs none.
            let baseline = if host.shared { None } else { Some(Method::Skip) };
            self.timed(r, "up", || cluster.up(&self.ctx, false, baseline).map_err(|e| Failure::from_error("up", &e)))?;
        } else {
            interrupted("reset")?;
            self.note(r, &format!("reset (the cluster of {})", host.cell.spec_path.display()));
            self.timed(r, "reset", || {
                crate::drills::clear_leftovers(cluster);
                cluster.reset(&self.ctx, None, false).map_err(|e| Failure::from_error("reset", &e))
            })?;
        }
        if self.args.no_verify {
            self.note(r, "verify skipped (--no-verify)");
        } else if !real {
            self.note(r, "verify skipped (dry run)");
        } else {
            interrupted("verify")?;
            self.timed(r, "verify", || {
                let password = cluster.workdir.lab_password().map_err(|e| Failure::from_error("verify", &e))?;
                let report = crate::verify::verify(&cluster.plan, &password, VERIFY_TIMEOUT);
                if report.ok {
                    return Ok(());
                }
                let first = report.nodes.iter().find(|n| !n.problems.is_empty()).map(|n| format!("{}: {}", n.node, n.problems.join("; ")));
                Err(Failure::new("verify", format!("replication broken: {}", first.unwrap_or_default()), Some(report.table())))
            })?;
            self.note(r, "verify ok");
        }
        self.steps(cell, cluster, r)
    }

    fn steps(&self, cell: &Cell, cluster: &Cluster, r: &mut CellReport) -> Result<(), Failure> {
        let real = self.ctx.runner.is_real();
        let mut marks = Marks::default();
        for (i, step) in cell.steps.iter().enumerate() {
            let phase = format!("step {}", step.name);
            interrupted(&phase)?;
            // Only the steps right before log expectations are marked, and
            // only on the nodes those read: the mark costs a call per node.
            let awaited: Vec<&str> = cell.steps[i + 1..].iter().map_while(Step::log_expect).map(|l| l.node.as_str()).collect();
            if real && step.log_expect().is_none() && !awaited.is_empty() {
                marks = Marks::take(&self.ctx, cluster, &step.name, &awaited);
            }
            let result = self.timed(r, &phase, || run_step(&self.ctx, cluster, step, &phase, &marks));
            if let Some(p) = r.phases.last_mut() {
                p.detail = step_detail(&result);
                if step.log_expect().is_some() && result.is_ok() {
                    p.message = p.detail.clone();
                }
            }
            let output = result?;
            let how = if !real && step.sql.is_some() {
                " (dry run: SQL not sent)".to_string()
            } else if step.drill.is_some() || step.expect.is_some() || step.same_rows.is_some() {
                // What a drill found (rows lost, the backup taken) belongs on the progress line.
                output.lines().next().filter(|l| !l.is_empty()).map(|l| format!(": {l}")).unwrap_or_default()
            } else {
                String::new()
            };
            self.note(r, &format!("{phase}: ok{how}"));
            if !output.trim().is_empty() {
                r.log.push(tail(&output, TAIL_LINES));
            }
        }
        Ok(())
    }

    /// Workers take groups of cells from a shared queue until it is empty,
    /// or until Ctrl-C / --fail-fast say to stop; cells not started are
    /// skipped. Two groups whose clusters have one name (cells of two files
    /// on different bases, both `pg94-f2-slots`) would have machines of one
    /// name: such a group waits for the other to finish.
    pub(super) fn run_all(&self, cells: &[(&Cell, &Cluster)], groups: &[Vec<usize>], jobs: usize) -> Vec<CellReport> {
        // The queue and the names in use change together, under one lock; a
        // worker with nothing it may start sleeps until a group finishes.
        let state = Mutex::new((groups.iter().collect::<VecDeque<_>>(), HashSet::new()));
        let finished = Condvar::new();
        let results: Mutex<Vec<Option<CellReport>>> = Mutex::new(cells.iter().map(|_| None).collect());
        let name = |g: &Vec<usize>| cells[g[0]].1.plan.name.as_str();
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(|| loop {
                    let group = {
                        let mut guard = state.lock().unwrap();
                        loop {
                            let (queue, busy) = &mut *guard;
                            if queue.is_empty() {
                                break None;
                            }
                            if let Some(p) = queue.iter().position(|g| !busy.contains(name(g))) {
                                let g = queue.remove(p).expect("a position found in the queue");
                                busy.insert(name(g));
                                break Some(g);
                            }
                            guard = finished.wait(guard).unwrap();
                        }
                    };
                    let Some(group) = group else { break };
                    for (i, report) in self.run_group(cells, group) {
                        if self.args.fail_fast && matches!(report.result, Outcome::Failed | Outcome::Interrupted) {
                            self.stop.store(true, Ordering::SeqCst);
                        }
                        results.lock().unwrap()[i] = Some(report);
                    }
                    state.lock().unwrap().1.remove(name(group));
                    finished.notify_all();
                });
            }
        });
        let results = results.into_inner().unwrap();
        results.into_iter().zip(cells).map(|(r, (cell, cluster))| r.unwrap_or_else(|| self.skipped(cell, cluster, "not started"))).collect()
    }

    fn why_not_start(&self) -> Option<&'static str> {
        if crate::signals::requested() {
            Some("interrupted before it started")
        } else if self.stop.load(Ordering::SeqCst) {
            Some("not started after a failure (--fail-fast)")
        } else {
            None
        }
    }

    fn skipped(&self, cell: &Cell, cluster: &Cluster, reason: &str) -> CellReport {
        let mut r = self.report(cell, cluster);
        r.error = Some(reason.into());
        self.note(&mut r, &format!("skipped: {reason}"));
        r
    }
}

/// The cluster a group of cells runs on: the first cell's.
struct Host<'a> {
    cell: &'a Cell,
    cluster: &'a Cluster,
    /// More than one cell runs on it (so it keeps a known state to reset to).
    shared: bool,
}

impl Host<'_> {
    /// Where the cluster's logs are copied before destroy removes them.
    fn saved_logs(&self) -> PathBuf {
        self.cell.spec_path.with_extension("logs")
    }
}

/// Longest detail kept: a `writes check` line is about 250 characters, and
/// the reports show the detail in a table cell.
const DETAIL_CHARS: usize = 400;

/// A step's one-line summary for the reports: its first non-empty output
/// line (what the progress line shows for a drill), or the failure's
/// message (where a failed `writes check` says how many rows were lost).
/// JSON output (`writes check --json`) is kept whole, on one line, so that
/// its numbers can be read back.
fn step_detail(result: &Result<String, Failure>) -> Option<String> {
    let line = match result {
        Ok(out) => match serde_json::from_str::<serde_json::Value>(out) {
            Ok(v) if v.is_object() => v.to_string(),
            _ => out.lines().map(str::trim).find(|l| !l.is_empty())?.to_string(),
        },
        Err(f) => f.message.trim().to_string(),
    };
    if line.is_empty() {
        return None;
    }
    Some(match line.char_indices().nth(DETAIL_CHARS) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    })
}

fn interrupted(phase: &str) -> Result<(), Failure> {
    if crate::signals::requested() {
        return Err(Failure { phase: phase.into(), message: "interrupted before it started".into(), output: None, interrupted: true });
    }
    Ok(())
}

/// Copies a cell's logs out of its working directory, which destroy removes.
/// Best effort: the logs help, but their loss must not fail the cell.
fn save_logs(from: &Path, to: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(from).ok()?;
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).ok()?;
    for e in entries.flatten() {
        let _ = std::fs::copy(e.path(), to.join(e.file_name()));
    }
    Some(to.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_detail_is_one_line() {
        let ok = |s: &str| step_detail(&Ok(s.to_string()));
        assert_eq!(ok(""), None);
        assert_eq!(ok("\n  first line  \nsecond").as_deref(), Some("first line"));
        let json = ok("{\n  \"lost\": 0,\n  \"downtime_seconds\": 1.5\n}").unwrap();
        assert!(!json.contains('\n'), "{json}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap(), serde_json::json!({"lost": 0, "downtime_seconds": 1.5}));
        let long = ok(&"x".repeat(DETAIL_CHARS + 10)).unwrap();
        assert_eq!(long.len(), DETAIL_CHARS + 3);
        let failed = step_detail(&Err(Failure::new("step w", "acknowledged rows were lost: 3 lost", Some("more".into()))));
        assert_eq!(failed.as_deref(), Some("acknowledged rows were lost: 3 lost"));
    }
}
