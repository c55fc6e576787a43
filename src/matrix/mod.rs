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
//!   `logwait`: a log expectation, and the log offsets it reads from;
//! - `report`: what happened to each cell, as a table, JUnit, JSON; and `--list`;
//!   `report_page`: the same for people, `--report` as HTML with a chart or Markdown.
//!
//! `run` below is that flow from start to exit code.

mod args;
mod cell;
mod expand;
mod file;
mod jobs;
mod load;
mod logwait;
mod report;
mod report_page;
mod rows;
mod select;
mod session;
mod step;

pub use args::{ListFormat, MatrixArgs, PageFormat, ReportPage};
pub use cell::Cell;
pub use file::Step;
pub use load::Matrix;
pub use report::{CellReport, Outcome, PhaseTime};

use jobs::default_jobs;
use report::{json_summary, junit, list, summary_table};
use select::select;
use session::Session;

use crate::cluster::{Cluster, Ctx};
use crate::error::{exit, Error, Result};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

pub fn run(ctx: &Ctx, args: &MatrixArgs) -> Result<i32> {
    let matrix = Matrix::load(&args.file)?;
    let clusters = matrix.validate()?;
    let all: Vec<(&Cell, &Cluster)> = matrix.cells.iter().zip(&clusters).collect();
    let selected = select(&matrix, &all, args)?;

    if args.list {
        print!("{}", list(&selected, args.format));
        return Ok(exit::OK);
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
    if let Some(page) = &args.report {
        let title = matrix.path.file_name().map_or_else(|| matrix.stem.clone(), |f| f.to_string_lossy().into_owned());
        let text = report_page::render(page.format, &title, &reports, elapsed);
        std::fs::write(&page.path, text).map_err(|e| Error::io(&page.path, e))?;
    }
    Ok(if crate::signals::requested() {
        exit::INTERRUPTED
    } else if reports.iter().any(|r| r.result != Outcome::Passed) {
        exit::FAILED
    } else {
        exit::OK
    })
}
