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
        // A failed phase without a summary of its own (up, verify) shows the cell's error.
        let note = if detail.is_empty() && failed_here { r.error.clone().unwrap_or_default() } else { detail.to_string() };
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
            } else if table.headers[i] == "Notes" {
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
/// comes after the phases before it there).
fn phase_names(reports: &[CellReport]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for r in reports {
        let mut at = 0;
        for p in &r.phases {
            match names.iter().position(|n| *n == p.name) {
                Some(i) => at = i + 1,
                None => {
                    names.insert(at, &p.name);
                    at += 1;
                }
            }
        }
    }
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
    let group_h = cells.len() as f64 * (BAR_H + BAR_GAP) - BAR_GAP;
    let plot_h = phases.len() as f64 * (group_h + GROUP_GAP);
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
    for (g, phase) in phases.iter().enumerate() {
        let y0 = 10.0 + g as f64 * (group_h + GROUP_GAP);
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" dominant-baseline=\"middle\" class=\"phase\"><title>{}</title>{}</text>",
            LABEL_W - 8.0,
            y0 + group_h / 2.0,
            esc(phase),
            esc(&shorten(phase, LABEL_CHARS))
        );
        for (i, r) in cells.iter().enumerate() {
            let Some((seconds, ok)) = phase_time(r, phase) else { continue };
            let y = y0 + i as f64 * (BAR_H + BAR_GAP);
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
mod tests {
    use super::*;

    fn phase(name: &str, seconds: f64, ok: bool, detail: Option<&str>) -> PhaseTime {
        PhaseTime { detail: detail.map(str::to_string), ..PhaseTime::new(name, seconds, ok) }
    }

    fn cell(name: &str, version: &str, result: Outcome, phases: Vec<PhaseTime>) -> CellReport {
        let failed = phases.iter().find(|p| !p.ok);
        CellReport {
            name: name.into(),
            result,
            seconds: phases.iter().map(|p| p.seconds).sum(),
            failed_phase: failed.map(|p| p.name.clone()),
            error: failed.and_then(|p| p.detail.clone()),
            output: None,
            spec: format!("/m/{name}.yaml").into(),
            kept: false,
            logs: None,
            values: serde_json::json!({ "cell": name, "version": version }),
            log: Vec::new(),
            phases,
        }
    }

    const CHECK_OK: &str = "1500 rows acknowledged, 1500 of them on the leader pg2, 0 lost; downtime 4.782 s (longest interruption, from row 812 to row 813; 1 reconnect); 2 more committed without an acknowledgement (writer: stopped by check)";
    const CHECK_LOST: &str = "acknowledged rows were lost although replication is synchronous: 1200 rows acknowledged, 1197 of them on the leader pg2, 3 lost; downtime 6.120 s (longest interruption, from row 9 to row 13; 1 reconnect); lost ids: 10, 11, 12";

    /// Two majors: 15 passes with a writes check that lost nothing; 13's
    /// writes check fails with a loss; a step name that needs escaping.
    fn reports() -> Vec<CellReport> {
        vec![
            cell(
                "pg15-f2-slots",
                "15",
                Outcome::Passed,
                vec![
                    phase("up", 7.7, true, None),
                    phase("verify", 0.31, true, None),
                    phase("step <fail> & \"rejoin\"", 3.2, true, Some("pg1 follows pg2 <ok>")),
                    phase("step writes check", 0.4, true, Some(CHECK_OK)),
                    phase("destroy", 1.5, true, None),
                ],
            ),
            cell(
                "pg13-f2-slots-sync",
                "13",
                Outcome::Failed,
                vec![
                    phase("up", 12.3, true, None),
                    phase("verify", 0.5, true, None),
                    phase("step <fail> & \"rejoin\"", 4.0, true, None),
                    phase("step writes check", 0.6, false, Some(CHECK_LOST)),
                    phase("destroy", 1.0, true, None),
                ],
            ),
        ]
    }

    fn html_page(reports: &[CellReport]) -> String {
        render(PageFormat::Html, "m.matrix.yaml", reports, Duration::from_secs(30))
    }

    #[test]
    fn writes_check_numbers_are_read_from_the_summary() {
        assert_eq!(rows_lost(CHECK_OK), Some(0));
        assert_eq!(rows_lost(CHECK_LOST), Some(3));
        assert_eq!(downtime(CHECK_OK), Some(4.782));
        assert_eq!(downtime(CHECK_LOST), Some(6.12));
        assert_eq!(downtime("10 rows acknowledged, 10 of them on the leader pg1, 0 lost; downtime unknown (no two acknowledgements)"), None);
        assert_eq!(rows_lost("nothing was lost"), None);
        assert_eq!(rows_lost("pg1 follows pg2"), None);
        assert_eq!(downtime("exit 1 on pg1"), None);
        // `writes check --json`, as the step's detail keeps it.
        let json = r#"{"acknowledged":10,"present":8,"lost":2,"downtime_seconds":0.75,"interruptions":[],"reconnects":1}"#;
        assert_eq!((rows_lost(json), downtime(json)), (Some(2), Some(0.75)));
        assert_eq!(downtime(r#"{"lost":0,"downtime_seconds":null}"#), None);
    }

    #[test]
    fn html_has_a_row_per_cell_and_phase_with_majors_and_losses() {
        let page = html_page(&reports());
        assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<title>clusterlab matrix: m.matrix.yaml</title>"), "{page}");
        assert!(page.contains("2 cells on PostgreSQL 15, 13: 1 passed, 1 failed, 0 interrupted, 0 skipped in 30.0 s."), "{page}");
        let headers = "<th>Cell</th><th>PostgreSQL</th><th>Phase</th><th>Outcome</th><th>Seconds</th><th>Rows lost</th><th>Downtime (s)</th><th>Notes</th>";
        assert!(page.contains(headers), "no Log message column while no phase has one:\n{page}");
        // 5 phases and a total per cell.
        assert_eq!(page.matches("<tr").count(), 1 + 2 * 6, "{page}");
        assert!(page.contains("<tr><td>pg15-f2-slots</td><td>15</td><td>step writes check</td><td>passed</td><td class=\"num\">0.40</td><td class=\"num\">0</td><td class=\"num\">4.782</td>"), "{page}");
        assert!(page.contains("<tr class=\"failed\"><td>pg13-f2-slots-sync</td><td>13</td><td>step writes check</td><td>failed</td><td class=\"num\">0.60</td><td class=\"num loss\">3</td><td class=\"num\">6.120</td>"), "{page}");
        assert!(page.contains("<p>Rows lost: acknowledged rows missing from the leader after a <code>writes check</code>."), "{page}");
        assert!(page.contains("<tr class=\"total\"><td>pg13-f2-slots-sync</td><td>13</td><td>total</td><td>failed</td><td class=\"num\">18.4</td>"), "{page}");
        assert!(page.contains("<td>pg13-f2-slots-sync</td><td>13</td><td>up</td><td>passed</td><td class=\"num\">12.3</td>"), "{page}");
    }

    #[test]
    fn every_text_is_escaped() {
        let page = html_page(&reports());
        assert!(!page.contains("<fail>") && !page.contains("<ok>"), "{page}");
        assert!(page.contains("<td>step &lt;fail&gt; &amp; &quot;rejoin&quot;</td>"), "{page}");
        assert!(page.contains("<td class=\"note\">pg1 follows pg2 &lt;ok&gt;</td>"), "{page}");
        // In the chart: the group label, its tooltip, the bars' tooltips.
        assert!(page.contains(">step &lt;fail&gt; &amp; &quot;rejoin&quot;</text>"), "{page}");
        assert!(page.contains("<title>pg13-f2-slots-sync (PostgreSQL 13), step &lt;fail&gt; &amp; &quot;rejoin&quot;: 4.00 s</title>"), "{page}");
    }

    #[test]
    fn the_chart_has_one_bar_per_cell_and_phase_and_a_legend() {
        let page = html_page(&reports());
        let svg = &page[page.find("<svg").unwrap()..page.find("</svg>").unwrap()];
        assert!(!page.contains("<script"), "no JavaScript");
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 10, "{svg}");
        assert_eq!(svg.matches("<rect class=\"swatch\"").count(), 2, "{svg}");
        assert!(svg.contains(">pg15-f2-slots (PostgreSQL 15)</text>") && svg.contains(">pg13-f2-slots-sync (PostgreSQL 13)</text>"), "{svg}");
        // Groups in the order the phases ran, one label each.
        let at = |s: &str| svg.find(&format!(">{s}</text>")).unwrap_or_else(|| panic!("no group {s}"));
        assert!(at("up") < at("verify") && at("verify") < at("step writes check") && at("step writes check") < at("destroy"), "{svg}");
        // The failed step is outlined and says so.
        assert_eq!(svg.matches("stroke=\"#c00000\"").count(), 1, "{svg}");
        assert!(svg.contains(">0.60 s failed</text>"), "{svg}");
        // The longest phase (12.3 s) sets the scale: grid lines every 5 s, to 15 s.
        assert!(svg.contains(">10 s</text>") && svg.contains(">15 s</text>") && !svg.contains(">20 s</text>"), "{svg}");
    }

    #[test]
    fn skipped_and_interrupted_cells_say_why() {
        let mut skipped = cell("pg17-f2-slots", "17", Outcome::Skipped, vec![]);
        skipped.error = Some("not started after a failure (--fail-fast)".into());
        let mut stopped = cell("pg16-f2-slots", "16", Outcome::Interrupted, vec![phase("up", 5.0, true, None)]);
        stopped.failed_phase = Some("verify".into());
        stopped.error = Some("interrupted before it started".into());
        let page = html_page(&[stopped, skipped]);
        assert!(page.contains("<tr class=\"skipped\"><td>pg17-f2-slots</td><td>17</td><td>-</td><td>skipped</td><td class=\"num\"></td><td class=\"note\">not started after a failure (--fail-fast)</td></tr>"), "{page}");
        assert!(page.contains("<tr class=\"failed\"><td>pg16-f2-slots</td><td>16</td><td>verify</td><td>interrupted</td><td class=\"num\"></td><td class=\"note\">interrupted before it started</td></tr>"), "{page}");
        // Only the cell that ran something is charted.
        assert_eq!(page.matches("<rect class=\"bar\"").count(), 1, "{page}");
        assert_eq!(page.matches("<rect class=\"swatch\"").count(), 1, "{page}");
        let none = html_page(&[cell("pg17-f2-slots", "17", Outcome::Skipped, vec![])]);
        assert!(none.contains("nothing to chart") && !none.contains("<svg"), "{none}");
    }

    #[test]
    fn a_log_message_gets_its_column() {
        let mut r = reports();
        r[0].phases[2].message = Some("LOG:  database system is ready | to accept connections".into());
        let page = html_page(&r);
        assert!(page.contains("<th>Log message</th>"), "{page}");
        assert!(page.contains("<td>LOG:  database system is ready | to accept connections</td>"), "{page}");
        let md = render(PageFormat::Markdown, "m.matrix.yaml", &r, Duration::from_secs(30));
        assert!(md.contains(" | LOG:  database system is ready \\| to accept connections | "), "{md}");
    }

    #[test]
    fn markdown_is_the_same_table_escaped() {
        let mut r = reports();
        r[0].phases[1].detail = Some("two\nlines | with a pipe and *stars*".into());
        let md = render(PageFormat::Markdown, "m.matrix.yaml", &r, Duration::from_secs(30));
        assert!(md.starts_with("# clusterlab matrix: m.matrix.yaml\n\n2 cells on PostgreSQL 15, 13: 1 passed"), "{md}");
        assert!(!md.contains("<svg") && !md.contains("<rect"), "{md}");
        let lines: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(lines[0], "| Cell | PostgreSQL | Phase | Outcome | Seconds | Rows lost | Downtime (s) | Notes |");
        assert_eq!(lines[1], "|---|---|---|---|--:|--:|--:|---|");
        assert_eq!(lines.len(), 2 + 12, "{md}");
        // Every row has as many cells as the header: no `|` got through unescaped.
        for l in &lines {
            assert_eq!(l.replace("\\|", "").matches('|').count(), 9, "{l}");
        }
        assert!(md.contains("| pg15-f2-slots | 15 | verify | passed | 0.31 |  |  | two lines \\| with a pipe and \\*stars\\* |"), "{md}");
        assert!(md.contains("| pg15-f2-slots | 15 | step \\<fail\\> & \"rejoin\" | passed | 3.20 |  |  | pg1 follows pg2 \\<ok\\> |"), "{md}");
        assert!(md.contains("| pg13-f2-slots-sync | 13 | step writes check | failed | 0.60 | 3 | 6.120 | acknowledged rows"), "{md}");
        assert!(md.contains("| **pg13-f2-slots-sync** | **13** | **total** | **failed** | **18.4** |  |  |  |"), "{md}");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(12.25), 5.0);
        assert_eq!(tick_step(9.0), 2.0);
        assert_eq!(tick_step(0.3), 0.1);
        assert_eq!(trim_number(2.5), "2.5");
        assert_eq!(trim_number(10.0), "10");
        assert_eq!(shorten("step a very long step name indeed", 10), "step a ve…");
        assert_eq!(shorten("up", 10), "up");
    }
}
