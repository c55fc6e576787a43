//! `clusterlab matrix`'s command line.

use std::path::PathBuf;

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
