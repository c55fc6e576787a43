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
//! - `share`: which cells share a cluster (several files, the same cluster);
//! - `session`: worker threads run each cluster's cells, phase by phase; `step`: one step;
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
mod share;
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
    let matrices = args.files.iter().map(|f| Matrix::load(f)).collect::<Result<Vec<_>>>()?;
    if args.cell.is_some() && matrices.len() > 1 {
        return Err(Error::usage("--cell picks a cell of one matrix file", "give one file with --cell, or --filter with several"));
    }
    if args.list && args.format != ListFormat::Text && matrices.len() > 1 {
        // Each runner of a fan-out runs `clusterlab matrix FILE --cell NAME`.
        return Err(Error::usage("a CI fan-out list (--format github or gitlab) is of one matrix file's cells", "list each file on its own, or use --format text"));
    }
    let clusters = matrices.iter().map(Matrix::validate).collect::<Result<Vec<_>>>()?;
    let mut selected = Vec::new();
    for (matrix, clusters) in matrices.iter().zip(&clusters) {
        let all: Vec<(&Cell, &Cluster)> = matrix.cells.iter().zip(clusters).collect();
        match select(matrix, &all, args) {
            Ok(cells) => selected.extend(cells),
            // With several files a filter may pick nothing in some of them.
            Err(_) if matrices.len() > 1 => {}
            Err(e) => return Err(e),
        }
    }
    if selected.is_empty() {
        return Err(Error::usage(format!("no cell of {} matches {}", names(&matrices), args.filter.join(", ")), "`clusterlab matrix FILE --list` shows the cells"));
    }

    if args.list {
        print!("{}", list(&selected, args.format, matrices.len() > 1));
        return Ok(exit::OK);
    }

    let groups = share::groups(&selected.iter().map(|(c, _)| c.share_key.as_str()).collect::<Vec<_>>());
    let jobs = match args.jobs {
        Some(j) => (j as usize).min(groups.len()),
        None => default_jobs(&groups.iter().map(|g| selected[g[0]].1).collect::<Vec<_>>()),
    };
    let session = Session {
        ctx: Ctx { runner: ctx.runner, quiet: true, templates: ctx.templates.clone() },
        args,
        start: Instant::now(),
        show_progress: !ctx.quiet,
        stop: AtomicBool::new(false),
        several_files: matrices.len() > 1,
    };
    if !ctx.quiet {
        let shared = if groups.len() < selected.len() { format!(" on {} clusters", groups.len()) } else { String::new() };
        eprintln!("matrix {}: {} of {} cells{shared}, {jobs} at a time", names(&matrices), selected.len(), matrices.iter().map(|m| m.cells.len()).sum::<usize>());
    }
    let reports = session.run_all(&selected, &groups, jobs);
    let elapsed = session.start.elapsed();

    print!("{}", summary_table(&reports, elapsed));
    if let Some(p) = &args.junit {
        std::fs::write(p, junit(&matrices, &reports, elapsed)).map_err(|e| Error::io(p, e))?;
    }
    if let Some(p) = &args.json {
        std::fs::write(p, json_summary(&matrices, &reports, elapsed, jobs)).map_err(|e| Error::io(p, e))?;
    }
    if let Some(page) = &args.report {
        let text = report_page::render(page.format, &names(&matrices), &reports, elapsed);
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

/// The files' names, for titles and messages: `clog-loss.matrix.yaml, disk-full.matrix.yaml`.
fn names(matrices: &[Matrix]) -> String {
    let name = |m: &Matrix| m.path.file_name().map_or_else(|| m.stem.clone(), |f| f.to_string_lossy().into_owned());
    matrices.iter().map(name).collect::<Vec<_>>().join(", ")
}
