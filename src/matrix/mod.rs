//! `clusterlab matrix`: one scenario over many versions and topologies.
//!
//! A matrix file names a base spec and axes (`version`, `followers`, `slots`,
//! `mode`, `box`, `provider`). Expansion follows GitHub Actions: the product
//! of the axes, minus `exclude`, plus or extended by `include`. Every cell
//! becomes a full spec of its own (own name, so own VM names and working
//! directory; own /24 network), written under
//! `.clusterlab/matrix-<stem>/` beside the matrix file and validated by the
//! planner before anything starts. Cells then run on `--jobs` worker threads:
//! up -> verify -> steps -> destroy, reported as progress lines, a summary
//! table, JUnit and JSON.
//!
//! One module per step of that flow:
//! - `file`: the matrix file's format, the checks serde cannot make, and
//!   errors placed at their line and column;
//! - `expand`: axes, `exclude` and `include` -> combinations of values;
//! - `cell`: a combination -> a named cell with a spec of its own, planned;
//! - `load`: `Matrix::load` (file -> combinations -> cells, each with its
//!   /24) and `Matrix::validate` (every cell through the planner);
//! - `select`: `--cell` and `--filter`; `jobs`: how many cells at once;
//! - `session`: worker threads run each cell, phase by phase; `step`: one step;
//! - `report`: what happened to each cell, as a table, JUnit, JSON; and `--list`.
//!
//! `run` below is that flow from start to exit code.

mod cell;
mod expand;
mod file;
mod jobs;
mod load;
mod report;
mod select;
mod session;
mod step;

pub use cell::Cell;
pub use file::Step;
pub use load::Matrix;
pub use report::{CellReport, Outcome, PhaseTime};

use jobs::default_jobs;
use report::{json_summary, junit, list, summary_table};
use select::select;
use session::Session;

use crate::cluster::{Cluster, Ctx};
use crate::error::{Error, Result};
use miette::Diagnostic;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

#[derive(Debug, Clone, clap::Args)]
pub struct MatrixArgs {
    /// The matrix file (e.g. clusters/ci.matrix.yaml).
    pub file: PathBuf,
    /// Cells run at once (default: as many as fit in available memory).
    #[arg(short, long, value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// After the first failure start no new cell (the running ones finish).
    #[arg(long)]
    pub fail_fast: bool,
    /// Leave failed or interrupted cells up for debugging, and print how to reach them.
    #[arg(long)]
    pub keep_failed: bool,
    /// Only cells whose name contains PATTERN, or matches it with `*` as a wildcard (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub filter: Vec<String>,
    /// Only the cell NAME (for CI fan-out: one runner per cell, see --list).
    #[arg(long, value_name = "NAME", conflicts_with = "filter")]
    pub cell: Option<String>,
    /// Skip the replication check after up (steps still run).
    #[arg(long)]
    pub no_verify: bool,
    /// Write a JUnit XML report: one testcase per cell.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a JSON summary: cells with result, phase timings and error.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Print the cells instead of running them.
    #[arg(long)]
    pub list: bool,
    /// Format of --list.
    #[arg(long, value_enum, default_value_t = ListFormat::Text, requires = "list")]
    pub format: ListFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// One cell name per line.
    Text,
    /// `{"include": [...]}` for a GitHub Actions `strategy.matrix: ${{ fromJSON(...) }}`.
    Github,
    /// A `parallel: matrix:` snippet for GitLab CI.
    Gitlab,
}

pub fn run(ctx: &Ctx, args: &MatrixArgs) -> Result<i32> {
    let matrix = Matrix::load(&args.file)?;
    let clusters = matrix.validate()?;
    let all: Vec<(&Cell, &Cluster)> = matrix.cells.iter().zip(&clusters).collect();
    let selected = select(&matrix, &all, args)?;

    if args.list {
        print!("{}", list(&selected, args.format));
        return Ok(0);
    }

    let jobs = match args.jobs {
        Some(j) => (j as usize).min(selected.len()),
        None => default_jobs(&selected.iter().map(|(_, c)| *c).collect::<Vec<_>>()),
    };
    let session = Session {
        ctx: Ctx { runner: ctx.runner, quiet: true, templates: ctx.templates.clone() },
        args,
        start: Instant::now(),
        show_progress: !ctx.quiet,
        stop: AtomicBool::new(false),
    };
    if !ctx.quiet {
        eprintln!("matrix {}: {} of {} cells, {jobs} at a time", matrix.path.display(), selected.len(), matrix.cells.len());
    }
    let reports = session.run_all(&selected, jobs);
    let elapsed = session.start.elapsed();

    print!("{}", summary_table(&reports, elapsed));
    if let Some(p) = &args.junit {
        std::fs::write(p, junit(&matrix, &reports, elapsed)).map_err(|e| Error::io(p, e))?;
    }
    if let Some(p) = &args.json {
        std::fs::write(p, json_summary(&matrix, &reports, elapsed, jobs)).map_err(|e| Error::io(p, e))?;
    }
    Ok(if crate::signals::requested() {
        130
    } else if reports.iter().any(|r| r.result != Outcome::Passed) {
        1
    } else {
        0
    })
}

/// An error on one line-ish, with its help when it has one.
fn describe(e: &Error) -> String {
    match e.help() {
        Some(h) => format!("{e}\nhint: {h}"),
        None => e.to_string(),
    }
}
