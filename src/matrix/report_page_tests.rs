//! Tests of the behaviour report (report_page.rs), kept apart so the page code reads on its own.

use super::*;

fn phase(name: &str, seconds: f64, ok: bool, detail: Option<&str>) -> PhaseTime {
    PhaseTime { detail: detail.map(str::to_string), ..PhaseTime::new(name, seconds, ok) }
}

fn cell(name: &str, version: &str, result: Outcome, phases: Vec<PhaseTime>) -> CellReport {
    let failed = phases.iter().find(|p| !p.ok);
    CellReport {
        name: name.into(),
        matrix: "m".into(),
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
    assert!(page.contains("<td class=\"note\">LOG:  database system is ready | to accept connections</td>"), "{page}");
    let md = render(PageFormat::Markdown, "m.matrix.yaml", &r, Duration::from_secs(30));
    assert!(md.contains(" | LOG:  database system is ready \\| to accept connections | "), "{md}");
}

#[test]
fn a_log_message_is_escaped_and_not_repeated_as_a_note() {
    let mut r = reports();
    let line = "ERROR:  relation \"t<1>\" & 'x' does not exist";
    r[0].phases[2].message = Some(line.into());
    r[0].phases[2].detail = Some(line.into());
    let page = html_page(&r);
    assert!(page.contains("<td class=\"note\">ERROR:  relation &quot;t&lt;1&gt;&quot; &amp; &#39;x&#39; does not exist</td><td class=\"note\"></td>"), "{page}");
    assert!(!page.contains("t<1>"), "{page}");
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

/// Cells of several files share few phases (one came up, the next was
/// reset): each group has a row only for the cells that ran its phase, and
/// a cell keeps its colour across groups.
#[test]
fn chart_groups_hold_only_the_cells_that_ran_the_phase() {
    let reports = vec![
        cell("a/pg15-f2-slots", "15", Outcome::Passed, vec![phase("up", 10.0, true, None), phase("step x", 1.0, true, None)]),
        cell("b/pg15-f2-slots", "15", Outcome::Passed, vec![phase("reset", 1.0, true, None), phase("step y", 2.0, true, None)]),
    ];
    let svg = svg_chart(&reports);
    let bars: Vec<(f64, String)> = svg
        .lines()
        .filter(|l| l.starts_with("<rect class=\"bar\""))
        .map(|l| {
            let y: f64 = l.split("y=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
            let fill = l.split("fill=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
            (y, fill)
        })
        .collect();
    assert_eq!(bars.len(), 4, "{svg}");
    // Four groups of one bar each: every group starts one bar and a gap below the last.
    for (k, (y, _)) in bars.iter().enumerate() {
        assert_eq!(*y, 10.0 + k as f64 * (BAR_H + GROUP_GAP), "{svg}");
    }
    let fill_of = |cell: &str| bars.iter().zip(phase_names(&reports)).find(|(_, p)| reports.iter().any(|r| r.name == cell && r.phases.iter().any(|x| &x.name == p))).map(|((_, f), _)| f.clone()).unwrap();
    assert_ne!(fill_of("a/pg15-f2-slots"), fill_of("b/pg15-f2-slots"));
}

#[test]
fn phases_of_several_files_keep_each_files_steps_together_and_destroy_last() {
    // The first cell of a shared cluster comes up and keeps it; the next,
    // of another file, starts from a reset and destroys it at the end.
    let reports = vec![
        cell("a/pg15-f2-slots", "15", Outcome::Passed, vec![phase("up", 10.0, true, None), phase("verify", 0.1, true, None), phase("step a1", 1.0, true, None), phase("step a2", 1.0, true, None)]),
        cell(
            "b/pg15-f2-slots",
            "15",
            Outcome::Passed,
            vec![phase("reset", 1.0, true, None), phase("verify", 0.1, true, None), phase("step b1", 2.0, true, None), phase("destroy", 1.0, true, None)],
        ),
        // A cell that had a step the others lack keeps it in its place.
        cell("a/pg16-f2-slots", "16", Outcome::Passed, vec![phase("up", 9.0, true, None), phase("step a1", 1.0, true, None), phase("step a1b", 1.0, true, None), phase("step a2", 1.0, true, None)]),
    ];
    assert_eq!(phase_names(&reports), ["up", "reset", "verify", "step a1", "step a1b", "step a2", "step b1", "destroy"]);
}
