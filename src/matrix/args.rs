//! `clusterlab matrix`'s command line.

use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct MatrixArgs {
    /// The matrix file (e.g. clusters/ci.matrix.yaml), or several: cells of
    /// different files that need the same cluster (same base, version and
    /// topology) then share one, reset to its known state between them.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
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
    /// Write a behaviour report: PATH.html (tables and a chart of the phase
    /// times) or PATH.md (the tables, for a blog post or a wiki).
    #[arg(long, value_name = "PATH", value_parser = parse_report)]
    pub report: Option<ReportPage>,
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

/// `--report PATH`: where the behaviour report goes, and in which format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPage {
    pub path: PathBuf,
    pub format: PageFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFormat {
    Html,
    Markdown,
}

/// The format comes from the extension, checked here so that a typo is
/// refused before the matrix runs rather than after an hour of cells.
fn parse_report(s: &str) -> Result<ReportPage, String> {
    let path = PathBuf::from(s);
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let format = match ext.as_deref() {
        Some("html") => PageFormat::Html,
        Some("md") => PageFormat::Markdown,
        _ => return Err("the report's format comes from its extension: give a path ending in .html (tables and a chart) or .md (Markdown tables), e.g. --report matrix-report.html".into()),
    };
    Ok(ReportPage { path, format })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_format_comes_from_the_extension() {
        assert_eq!(parse_report("out/r.html").unwrap().format, PageFormat::Html);
        assert_eq!(parse_report("R.HTML").unwrap().format, PageFormat::Html);
        assert_eq!(parse_report("r.md").unwrap(), ReportPage { path: "r.md".into(), format: PageFormat::Markdown });
        for bad in ["r.pdf", "r", "r.html.txt", ".md"] {
            let e = parse_report(bad).unwrap_err();
            assert!(e.contains(".html") && e.contains(".md") && e.contains("--report"), "{bad}: {e}");
        }
    }
}
