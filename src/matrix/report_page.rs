//! `--report PATH`: what happened in each cell, for people rather than CI.
//! One row per cell and phase (the PostgreSQL major, the outcome, the
//! seconds, and what a `writes check` found: acknowledged rows lost and the
//! client-visible downtime), as an HTML page with an inline SVG chart of the
//! phase times per major, or as Markdown tables.
//!
//! The page is self-contained (no script, no stylesheet or font to fetch) so
//! that it can be attached to a CI run, mailed, or pasted into a blog post.

use super::args::PageFormat;
use super::report::{CellReport, Outcome, PhaseTime};
use std::fmt::Write as _;
use std::time::Duration;

/// The page for `--report`: `title` names the matrix file.
pub(super) fn render(format: PageFormat, title: &str, reports: &[CellReport], elapsed: Duration) -> String {
    let table = Table::of(reports);
    match format {
        PageFormat::Html => html(title, reports, &table, elapsed),
        PageFormat::Markdown => markdown(title, reports, &table, elapsed),
    }
}

/// One line: how many cells, on which majors, how they ended.
fn summary_line(reports: &[CellReport], elapsed: Duration) -> String {
    let count = |o: Outcome| reports.iter().filter(|r| r.result == o).count();
    let mut majors: Vec<String> = Vec::new();
    for r in reports {
        let m = major(r);
        if !majors.contains(&m) {
            majors.push(m);
        }
    }
    format!(
        "{} cell{} on PostgreSQL {}: {} passed, {} failed, {} interrupted, {} skipped in {:.1} s.",
        reports.len(),
        if reports.len() == 1 { "" } else { "s" },
        majors.join(", "),
        count(Outcome::Passed),
        count(Outcome::Failed),
        count(Outcome::Interrupted),
        count(Outcome::Skipped),
        elapsed.as_secs_f64()
    )
}

/// The PostgreSQL major of a cell, from its values (`version`).
fn major(r: &CellReport) -> String {
    match r.values.get("version") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => "?".into(),
    }
}

/// Acknowledged rows lost, from a `writes check` summary: `... 3 lost; ...`,
/// or `"lost": 3` in its JSON form.
fn rows_lost(detail: &str) -> Option<u64> {
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(detail) {
        return o.get("lost")?.as_u64();
    }
    // The digits right before the first ` lost` that has some.
    detail.match_indices(" lost").find_map(|(at, _)| {
        let head = &detail[..at];
        let digits = head.len() - head.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        head[at - digits..].parse().ok()
    })
}

/// The client-visible downtime in seconds, from a `writes check` summary:
/// `downtime 4.782 s (...)`, or `"downtime_seconds": 4.782` in JSON.
/// `downtime unknown` is no number.
fn downtime(detail: &str) -> Option<f64> {
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(detail) {
        return o.get("downtime_seconds")?.as_f64();
    }
    detail.match_indices("downtime ").find_map(|(at, m)| {
        let rest = &detail[at + m.len()..];
        let number = &rest[..rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.').len()];
        rest[number.len()..].starts_with(" s").then(|| number.parse().ok()).flatten()
    })
}

/// Seconds as the tables show them: two decimals below 10 s, where they
/// tell steps apart, one above.
fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2}")
    } else {
        format!("{s:.1}")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RowKind {
    Passed,
    Failed,
    /// The cell's total, after its phases.
    Total,
    Skipped,
}

/// The table both formats show, as plain text: escaping is each format's.
struct Table {
    headers: Vec<&'static str>,
    /// Right-aligned (numbers) per column.
    numeric: Vec<bool>,
    rows: Vec<(RowKind, Vec<String>)>,
}

const HEADERS: [(&str, bool); 9] = [
    ("Cell", false),
    ("PostgreSQL", false),
    ("Phase", false),
    ("Outcome", false),
    ("Seconds", true),
    ("Rows lost", true),
    ("Downtime (s)", true),
    ("Log message", false),
    ("Notes", false),
];
/// Rows lost, downtime and log message: shown only when some row has one,
/// so that a matrix without writes checks gets no empty columns.
const OPTIONAL: [usize; 3] = [5, 6, 7];

impl Table {
    fn of(reports: &[CellReport]) -> Table {
        let mut rows = Vec::new();
        for r in reports {
            let cell = |phase: &str, outcome: &str, seconds: String| vec![r.name.clone(), major(r), phase.to_string(), outcome.to_string(), seconds];
            if r.result == Outcome::Skipped {
                let mut row = cell("-", "skipped", String::new());
                row.extend([String::new(), String::new(), String::new(), r.error.clone().unwrap_or_default()]);
                rows.push((RowKind::Skipped, row));
                continue;
            }
            for p in &r.phases {
                rows.push(Table::phase_row(r, p, cell(&p.name, phase_outcome(r, p), secs(p.seconds))));
            }
            // Interrupted before its phase began: the phase has no time, but it is where the cell ended.
            if let Some(f) = r.failed_phase.as_deref().filter(|f| !r.phases.iter().any(|p| p.name == *f)) {
                let mut row = cell(f, outcome_word(r.result), String::new());
                row.extend([String::new(), String::new(), String::new(), r.error.clone().unwrap_or_default()]);
                rows.push((RowKind::Failed, row));
            }
            let mut total = cell("total", outcome_word(r.result), secs(r.seconds));
            total.extend(std::iter::repeat_n(String::new(), 4));
            rows.push((RowKind::Total, total));
        }
        let mut t = Table { headers: HEADERS.iter().map(|h| h.0).collect(), numeric: HEADERS.iter().map(|h| h.1).collect(), rows };
        for &c in OPTIONAL.iter().rev() {
            if t.rows.iter().all(|(_, row)| row[c].is_empty()) {
                t.headers.remove(c);
                t.numeric.remove(c);
                t.rows.iter_mut().for_each(|(_, row)| drop(row.remove(c)));
            }
        }
        t
    }

    /// Whether a writes check's numbers are shown (and need explaining).
    fn has_writes_checks(&self) -> bool {
        self.headers.iter().any(|h| *h == "Rows lost" || *h == "Downtime (s)")
    }

    /// A phase's row: `row` holds cell .. seconds; then what its detail says.
    fn phase_row(r: &CellReport, p: &PhaseTime, mut row: Vec<String>) -> (RowKind, Vec<String>) {
        let detail = p.detail.as_deref().unwrap_or_default();
        let failed_here = r.failed_phase.as_deref() == Some(p.name.as_str());
        // A failed phase without a summary of its own (up, verify) shows the
        // cell's error; a log expectation's summary is its line, shown once.
        let note = if detail.is_empty() && failed_here {
            r.error.clone().unwrap_or_default()
        } else if p.message.as_deref() == Some(detail) {
            String::new()
        } else {
            detail.to_string()
        };
        row.extend([
            rows_lost(detail).map(|n| n.to_string()).unwrap_or_default(),
            downtime(detail).map(|d| format!("{d:.3}")).unwrap_or_default(),
            p.message.clone().unwrap_or_default(),
            note,
        ]);
        (if p.ok { RowKind::Passed } else { RowKind::Failed }, row)
    }
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::Interrupted => "interrupted",
        Outcome::Skipped => "skipped",
    }
}

/// A phase that did not finish is `interrupted` when Ctrl-C ended its cell.
fn phase_outcome(r: &CellReport, p: &PhaseTime) -> &'static str {
    match (p.ok, r.result) {
        (true, _) => "passed",
        (false, Outcome::Interrupted) if r.failed_phase.as_deref() == Some(p.name.as_str()) => "interrupted",
        (false, _) => "failed",
    }
}

/// Text for HTML and SVG, in elements and in quoted attributes alike.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// What the loss columns mean, under the table.
const WRITES_NOTE: &str = "Rows lost: acknowledged rows missing from the leader after a `writes check`. \
     Downtime (s): the longest time the writer's client saw no acknowledged commit.";

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:2rem;color:#1b1b1b;max-width:1100px}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td{background:#fde8e8}tr.total td{font-weight:600;border-bottom:2px solid #888}
td{white-space:nowrap}td.loss{color:#c00000;font-weight:600}
tr.skipped td{color:#777}td.note{white-space:normal;font-size:.8rem;color:#444;max-width:28rem}
svg text{font-family:inherit}";

fn html(title: &str, reports: &[CellReport], table: &Table, elapsed: Duration) -> String {
    let mut out = String::new();
    let t = esc(&format!("clusterlab matrix: {title}"));
    let _ = write!(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>\n{STYLE}\n</style>\n</head>\n<body>\n<h1>{t}</h1>\n");
    let _ = writeln!(out, "<p>{}</p>", esc(&summary_line(reports, elapsed)));
    out += "<h2>Phase times per cell</h2>\n";
    out += &svg_chart(reports);
    out += "<h2>Cells and phases</h2>\n<table>\n<thead><tr>";
    for h in &table.headers {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out += "</tr></thead>\n<tbody>\n";
    for (kind, row) in &table.rows {
        let class = match kind {
            RowKind::Passed => "",
            RowKind::Failed => " class=\"failed\"",
            RowKind::Total => " class=\"total\"",
            RowKind::Skipped => " class=\"skipped\"",
        };
        let _ = write!(out, "<tr{class}>");
        for (i, v) in row.iter().enumerate() {
            // Acknowledged rows lost are what a reader looks for first: in red.
            let lost = table.headers[i] == "Rows lost" && !v.is_empty() && v != "0";
            let cls = if lost {
                " class=\"num loss\""
            } else if table.numeric[i] {
                " class=\"num\""
            } else if table.headers[i] == "Notes" || table.headers[i] == "Log message" {
                " class=\"note\""
            } else {
                ""
            };
            let _ = write!(out, "<td{cls}>{}</td>", esc(v));
        }
        out += "</tr>\n";
    }
    out += "</tbody>\n</table>\n";
    if table.has_writes_checks() {
        out += &format!("<p>{}</p>\n", esc(WRITES_NOTE).replace("`writes check`", "<code>writes check</code>"));
    }
    out += "</body>\n</html>\n";
    out
}

/// Okabe-Ito colours, told apart with colour-blindness too; past seven
/// cells, hues spread evenly around the circle instead.
const PALETTE: [&str; 7] = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000"];

fn colour(i: usize, n: usize) -> String {
    if n <= PALETTE.len() {
        PALETTE[i].to_string()
    } else {
        format!("hsl({}, 65%, 42%)", i * 360 / n)
    }
}

/// Chart geometry, in SVG user units (pixels at 100%).
const WIDTH: f64 = 960.0;
const LABEL_W: f64 = 180.0;
const VALUE_W: f64 = 110.0;
const BAR_H: f64 = 14.0;
const BAR_GAP: f64 = 3.0;
const GROUP_GAP: f64 = 14.0;
const LEGEND_ROW: f64 = 20.0;
const LEGEND_ITEM_W: f64 = 330.0;
/// Phase labels longer than this are cut (the whole name is their tooltip)
/// so that they stay inside LABEL_W.
const LABEL_CHARS: usize = 26;

/// Grid lines at 1, 2 or 5 times a power of ten, about five across.
fn tick_step(max: f64) -> f64 {
    let raw = max / 5.0;
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * p).find(|s| *s >= raw).unwrap_or(10.0 * p)
}

/// Phase names in the order the cells ran them (a step only one cell has
/// comes after the phases before it there): what brings a cluster up first
/// (`up`, `reset`), then `verify`, the steps, and `destroy` last. Steps that
/// follow no other step (another file's, in a run of several files) come
/// after the steps already there, not before them.
fn phase_names(reports: &[CellReport]) -> Vec<&str> {
    let is_step = |n: &str| n.starts_with("step ");
    let mut names: Vec<&str> = Vec::new();
    for r in reports {
        let mut at = 0;
        for p in &r.phases {
            match names.iter().position(|n| *n == p.name) {
                Some(i) => at = i + 1,
                None => {
                    let after_a_step = at > 0 && is_step(names[at - 1]);
                    let pos = if is_step(&p.name) && !after_a_step { names.iter().rposition(|n| is_step(n)).map_or(at, |i| i + 1) } else { at };
                    names.insert(pos, &p.name);
                    at = pos + 1;
                }
            }
        }
    }
    let rank = |n: &str| match n {
        "up" => 0,
        "reset" => 1,
        "verify" => 2,
        "destroy" => 4,
        _ => 3,
    };
    names.sort_by_key(|n| rank(n));
    names
}

/// Seconds of `phase` in cell `r` (summed if a name repeats) and whether all went well.
fn phase_time(r: &CellReport, phase: &str) -> Option<(f64, bool)> {
    let ps: Vec<&PhaseTime> = r.phases.iter().filter(|p| p.name == phase).collect();
    (!ps.is_empty()).then(|| (ps.iter().map(|p| p.seconds).sum(), ps.iter().all(|p| p.ok)))
}

/// Grouped horizontal bars: a group per phase, in it a bar per cell that
/// ran the phase, coloured by cell, with its seconds at the end; a legend
/// names the cells and their majors. Skipped cells ran nothing and get none.
fn svg_chart(reports: &[CellReport]) -> String {
    let cells: Vec<&CellReport> = reports.iter().filter(|r| !r.phases.is_empty()).collect();
    let phases = phase_names(reports);
    if cells.is_empty() {
        return "<p>No cell ran a phase: nothing to chart.</p>\n".into();
    }
    let max = cells.iter().flat_map(|r| r.phases.iter().map(|p| p.seconds)).fold(0.0, f64::max).max(0.001);
    let step = tick_step(max);
    let scale_max = (max / step).ceil() * step;
    let plot_w = WIDTH - LABEL_W - VALUE_W;
    // Per phase, the cells that ran it: a cell keeps its colour in every
    // group, but takes a row only where it has a bar (cells of several
    // files share few phases).
    let groups: Vec<Vec<(usize, &CellReport, f64, bool)>> = phases
        .iter()
        .map(|phase| cells.iter().enumerate().filter_map(|(i, r)| phase_time(r, phase).map(|(s, ok)| (i, *r, s, ok))).collect())
        .collect();
    let group_h = |rows: usize| rows as f64 * (BAR_H + BAR_GAP) - BAR_GAP;
    let plot_h: f64 = groups.iter().map(|g| group_h(g.len()) + GROUP_GAP).sum();
    let per_row = ((WIDTH - LABEL_W) / LEGEND_ITEM_W).floor().max(1.0) as usize;
    let legend_h = cells.len().div_ceil(per_row) as f64 * LEGEND_ROW;
    let height = 10.0 + plot_h + 24.0 + legend_h + 8.0;
    let x_of = |s: f64| LABEL_W + s / scale_max * plot_w;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"Seconds per phase and cell\" font-size=\"12\">"
    );
    // Grid and axis labels first, so that bars are drawn over the lines.
    let axis_y = 10.0 + plot_h;
    let mut t = 0.0;
    while t <= scale_max + step / 2.0 {
        let x = x_of(t);
        let _ = writeln!(out, "<line x1=\"{x:.1}\" y1=\"6\" x2=\"{x:.1}\" y2=\"{axis_y:.1}\" stroke=\"#e3e3e3\"/>");
        let _ = writeln!(out, "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{} s</text>", axis_y + 14.0, trim_number(t));
        t += step;
    }
    let mut y0 = 10.0;
    for (phase, rows) in phases.iter().zip(&groups) {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" dominant-baseline=\"middle\" class=\"phase\"><title>{}</title>{}</text>",
            LABEL_W - 8.0,
            y0 + group_h(rows.len()) / 2.0,
            esc(phase),
            esc(&shorten(phase, LABEL_CHARS))
        );
        for (row, &(i, r, seconds, ok)) in rows.iter().enumerate() {
            let y = y0 + row as f64 * (BAR_H + BAR_GAP);
            // A bar at least a pixel wide: a 10 ms step still shows where it is.
            let w = (x_of(seconds) - LABEL_W).max(1.0);
            let (stroke, note) = if ok { ("", "") } else { (" stroke=\"#c00000\" stroke-width=\"2\"", " failed") };
            let label = esc(&format!("{} (PostgreSQL {}), {phase}: {} s{note}", r.name, major(r), secs(seconds)));
            let _ = writeln!(
                out,
                "<rect class=\"bar\" x=\"{LABEL_W:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{BAR_H}\" fill=\"{}\"{stroke}><title>{label}</title></rect>",
                colour(i, cells.len())
            );
            let fill = if ok { "#222" } else { "#c00000" };
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" dominant-baseline=\"middle\" fill=\"{fill}\">{} s{note}</text>",
                LABEL_W + w + 4.0,
                y + BAR_H / 2.0,
                secs(seconds)
            );
        }
        y0 += group_h(rows.len()) + GROUP_GAP;
    }
    let legend_y = axis_y + 28.0;
    for (i, r) in cells.iter().enumerate() {
        let x = LABEL_W + (i % per_row) as f64 * LEGEND_ITEM_W;
        let y = legend_y + (i / per_row) as f64 * LEGEND_ROW;
        let _ = writeln!(out, "<rect class=\"swatch\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/>", colour(i, cells.len()));
        let _ = writeln!(out, "<text x=\"{:.1}\" y=\"{:.1}\" dominant-baseline=\"middle\">{} (PostgreSQL {})</text>", x + 18.0, y + 6.0, esc(&r.name), esc(&major(r)));
    }
    out += "</svg>\n";
    out
}

/// `s` cut to `n` characters, the cut shown by an ellipsis.
fn shorten(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some(_) => s.chars().take(n - 1).chain(['…']).collect(),
        None => s.to_string(),
    }
}

/// `5`, `2.5`, `0.02`: axis labels without trailing zeros.
fn trim_number(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Markdown table cells: `|` would end the cell and a newline the row; the
/// other characters Markdown would read as formatting or HTML are
/// backslash-escaped, so a step's output shows as it was printed.
fn md_esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

fn markdown(title: &str, reports: &[CellReport], table: &Table, elapsed: Duration) -> String {
    let mut out = format!("# clusterlab matrix: {}\n\n{}\n\n", md_esc(title), md_esc(&summary_line(reports, elapsed)));
    out += &format!("| {} |\n", table.headers.join(" | "));
    let rule: Vec<&str> = table.numeric.iter().map(|n| if *n { "--:" } else { "---" }).collect();
    out += &format!("|{}|\n", rule.join("|"));
    for (kind, row) in &table.rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let v = md_esc(v);
                // Totals in bold, as the HTML table shows them; an empty cell stays empty.
                if *kind == RowKind::Total && !v.is_empty() && i < 5 {
                    format!("**{v}**")
                } else {
                    v
                }
            })
            .collect();
        out += &format!("| {} |\n", cells.join(" | "));
    }
    if table.has_writes_checks() {
        out += &format!("\n{WRITES_NOTE}\n");
    }
    out += "\nThe HTML report (`--report FILE.html`) also charts the phase times.\n";
    out
}

#[cfg(test)]
#[path = "report_page_tests.rs"]
mod tests;
