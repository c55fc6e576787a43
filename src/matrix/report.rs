//! What happened to each cell, and the ways it is shown: the summary table,
//! JUnit XML, the JSON summary; and the formats of `--list`.

use super::args::ListFormat;
use super::cell::Cell;
use super::load::Matrix;
use crate::cluster::Cluster;
use crate::error::Error;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Lines of it repeated under the summary table.
const SUMMARY_TAIL_LINES: usize = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed,
    Interrupted,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseTime {
    /// `up` (or `reset`, on a cluster cells share), `verify`, `step NAME` or `destroy`.
    pub name: String,
    pub seconds: f64,
    pub ok: bool,
    /// What a step said in one line: the first line of its output, or the
    /// failure's message. The report page reads rows lost and downtime from
    /// it (a `writes check` prints them there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The server log line a log expectation step matched (`expect: {log: ...}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl PhaseTime {
    pub fn new(name: impl Into<String>, seconds: f64, ok: bool) -> PhaseTime {
        PhaseTime { name: name.into(), seconds, ok, detail: None, message: None }
    }
}

/// What happened to one cell: the JSON summary's entries.
#[derive(Debug, Clone, Serialize)]
pub struct CellReport {
    /// The cell's name; `file/cell` when several matrix files ran.
    pub name: String,
    /// The stem of the cell's matrix file.
    pub matrix: String,
    pub result: Outcome,
    pub seconds: f64,
    pub phases: Vec<PhaseTime>,
    /// The phase that failed, for failed and interrupted cells.
    pub failed_phase: Option<String>,
    pub error: Option<String>,
    /// The tail of the failing phase's output (a step's stdout and stderr).
    pub output: Option<String>,
    pub spec: PathBuf,
    /// Left up by --keep-failed.
    pub kept: bool,
    /// The cell's vagrant logs: saved beside its spec before destroy, or in its kept working directory.
    pub logs: Option<PathBuf>,
    /// The cell's values as planned (version, followers, ...).
    pub values: serde_json::Value,
    /// The cell's progress lines and step output, for JUnit's system-out.
    #[serde(skip)]
    pub log: Vec<String>,
}

impl CellReport {
    pub(super) fn new(cell: &Cell, cluster: &Cluster) -> CellReport {
        CellReport {
            name: cell.name.clone(),
            matrix: cell.matrix.clone(),
            result: Outcome::Skipped,
            seconds: 0.0,
            phases: Vec::new(),
            failed_phase: None,
            error: None,
            output: None,
            spec: cell.spec_path.clone(),
            kept: false,
            logs: None,
            values: values_json(cell, cluster),
            log: Vec::new(),
        }
    }

    fn phase_seconds(&self, pred: impl Fn(&str) -> bool) -> Option<f64> {
        let matching: Vec<f64> = self.phases.iter().filter(|p| pred(&p.name)).map(|p| p.seconds).collect();
        (!matching.is_empty()).then(|| matching.iter().sum())
    }
}

/// The cell's values from its plan: what `--list --format github` prints and reports carry.
fn values_json(cell: &Cell, c: &Cluster) -> serde_json::Value {
    let p = &c.plan;
    serde_json::json!({
        "cell": cell.name,
        "version": p.version,
        "followers": p.nodes.len() - 1,
        "slots": p.slots,
        "mode": if p.sync { "sync" } else { "async" },
        "box": p.box_name,
        "provider": p.provider,
    })
}

/// Seconds, to the millisecond (the reports need no more).
pub(super) fn millis(d: Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}

/// The last `n` lines of `text`.
pub(super) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// With several files, text lists name each cell's file too (`clog-loss/pg94-f2-slots`).
pub(super) fn list(cells: &[(&Cell, &Cluster)], format: ListFormat, several_files: bool) -> String {
    match format {
        ListFormat::Text if several_files => cells.iter().map(|(c, _)| format!("{}/{}\n", c.matrix, c.name)).collect(),
        ListFormat::Text => cells.iter().map(|(c, _)| format!("{}\n", c.name)).collect(),
        ListFormat::Github => {
            let include: Vec<serde_json::Value> = cells.iter().map(|(c, cl)| values_json(c, cl)).collect();
            format!("{}\n", serde_json::json!({ "include": include }))
        }
        ListFormat::Gitlab => {
            let names: Vec<String> = cells.iter().map(|(c, _)| serde_json::Value::from(c.name.as_str()).to_string()).collect();
            format!("parallel:\n  matrix:\n    - CELL: [{}]\n", names.join(", "))
        }
    }
}

fn secs(s: Option<f64>) -> String {
    s.map_or_else(|| "-".into(), |s| format!("{s:.1}s"))
}

pub(super) fn summary_table(reports: &[CellReport], elapsed: Duration) -> String {
    let mut rows = vec![["CELL", "RESULT", "UP", "RESET", "VERIFY", "STEPS", "DESTROY", "TOTAL"].map(String::from).to_vec()];
    for r in reports {
        let word = match r.result {
            Outcome::Passed => "passed",
            Outcome::Failed => "FAILED",
            Outcome::Interrupted => "interrupted",
            Outcome::Skipped => "skipped",
        };
        rows.push(vec![
            r.name.clone(),
            word.into(),
            secs(r.phase_seconds(|p| p == "up")),
            secs(r.phase_seconds(|p| p == "reset")),
            secs(r.phase_seconds(|p| p == "verify")),
            secs(r.phase_seconds(|p| p.starts_with("step "))),
            secs(r.phase_seconds(|p| p == "destroy")),
            if r.result == Outcome::Skipped { "-".into() } else { secs(Some(r.seconds)) },
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap()).collect();
    let mut out = String::from("\n");
    for row in &rows {
        let cols: Vec<String> = row.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect();
        out += cols.join("  ").trim_end();
        out.push('\n');
    }
    let count = |o: Outcome| reports.iter().filter(|r| r.result == o).count();
    out += &format!(
        "{} passed, {} failed, {} interrupted, {} skipped in {:.1}s\n",
        count(Outcome::Passed),
        count(Outcome::Failed),
        count(Outcome::Interrupted),
        count(Outcome::Skipped),
        elapsed.as_secs_f64()
    );
    for r in reports.iter().filter(|r| matches!(r.result, Outcome::Failed | Outcome::Interrupted)) {
        out += &format!("\n{}: {}: {}\n", r.name, r.failed_phase.as_deref().unwrap_or("?"), r.error.as_deref().unwrap_or(""));
        if let Some(o) = r.output.as_deref().filter(|o| !o.trim().is_empty()) {
            out += &format!("  | {}\n", tail(o, SUMMARY_TAIL_LINES).replace('\n', "\n  | "));
        }
        if r.kept {
            out += &format!("  kept: `clusterlab status {}`\n", r.spec.display());
        }
    }
    out
}

/// One test suite per matrix file, one test case per cell.
pub(super) fn junit(matrices: &[Matrix], reports: &[CellReport], elapsed: Duration) -> String {
    let mut report = quick_junit::Report::new("clusterlab matrix");
    report.set_time(elapsed);
    for matrix in matrices {
        let cells: Vec<&CellReport> = reports.iter().filter(|r| r.matrix == matrix.stem).collect();
        if !cells.is_empty() || matrices.len() == 1 {
            report.add_test_suite(junit_suite(matrix, &cells, elapsed));
        }
    }
    report.to_string().expect("a JUnit report serializes")
}

fn junit_suite(matrix: &Matrix, reports: &[&CellReport], elapsed: Duration) -> quick_junit::TestSuite {
    use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
    let file_name = matrix.path.file_name().map_or_else(|| matrix.stem.clone(), |f| f.to_string_lossy().into_owned());
    let mut suite = TestSuite::new(file_name);
    suite.set_time(elapsed);
    for r in reports {
        let status = match r.result {
            Outcome::Passed => TestCaseStatus::success(),
            Outcome::Skipped => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(r.error.clone().unwrap_or_default());
                s
            }
            Outcome::Failed | Outcome::Interrupted => {
                let kind = if r.result == Outcome::Failed { NonSuccessKind::Failure } else { NonSuccessKind::Error };
                let mut s = TestCaseStatus::non_success(kind);
                let phase = r.failed_phase.clone().unwrap_or_default();
                s.set_message(format!("{phase}: {}", r.error.as_deref().unwrap_or_default()));
                s.set_type(phase);
                if let Some(o) = &r.output {
                    s.set_description(o.clone());
                }
                s
            }
        };
        let mut case = TestCase::new(r.name.clone(), status);
        case.set_classname(format!("clusterlab.matrix.{}", matrix.stem));
        case.set_time(Duration::from_secs_f64(r.seconds));
        if let Some(values) = r.values.as_object() {
            for (k, v) in values.iter().filter(|(k, _)| *k != "cell") {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                case.add_property(Property::new(k.as_str(), v));
            }
        }
        for p in &r.phases {
            case.add_property(Property::new(format!("phase {} seconds", p.name), format!("{:.1}", p.seconds)));
        }
        case.set_system_out(r.log.join("\n") + "\n");
        suite.add_test_case(case);
    }
    suite
}

#[derive(Serialize)]
struct Summary<'a> {
    /// The first file's path (the only one, usually); `files` has them all.
    matrix: &'a Path,
    files: Vec<&'a Path>,
    jobs: usize,
    seconds: f64,
    passed: usize,
    failed: usize,
    interrupted: usize,
    skipped: usize,
    cells: &'a [CellReport],
}

pub(super) fn json_summary(matrices: &[Matrix], reports: &[CellReport], elapsed: Duration, jobs: usize) -> String {
    let count = |o: Outcome| reports.iter().filter(|r| r.result == o).count();
    let summary = Summary {
        matrix: &matrices[0].path,
        files: matrices.iter().map(|m| m.path.as_path()).collect(),
        jobs,
        seconds: millis(elapsed),
        passed: count(Outcome::Passed),
        failed: count(Outcome::Failed),
        interrupted: count(Outcome::Interrupted),
        skipped: count(Outcome::Skipped),
        cells: reports,
    };
    serde_json::to_string_pretty(&summary).expect("the summary serializes") + "\n"
}
/// Why a cell failed: the phase, one line, and the output worth keeping.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) phase: String,
    pub(super) message: String,
    pub(super) output: Option<String>,
    pub(super) interrupted: bool,
}

impl Failure {
    pub(super) fn new(phase: &str, message: impl Into<String>, output: Option<String>) -> Failure {
        Failure { phase: phase.into(), message: message.into(), output, interrupted: crate::signals::requested() }
    }

    /// The first line is the message; the rest (a command's output tail) and the hint are output.
    pub(super) fn from_error(phase: &str, e: &Error) -> Failure {
        let text = e.with_hint();
        let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
        let mut f = Failure::new(phase, first, (!rest.trim().is_empty()).then(|| rest.to_string()));
        f.interrupted |= matches!(e, Error::Interrupted(_));
        f
    }
}


