//! `clusterlab matrix --report PAGE.html` as a reader sees it: a matrix runs
//! through a fake `vagrant` and `docker` (as in tests/matrix.rs), writes the
//! page, and headless Chromium opens it. What the browser parsed (its DOM)
//! must hold the table and the chart, and its screenshot must be a picture.
//!
//! Needs Debian's chromium (lab/install-deps.sh installs it). Without it the
//! test fails under CI=true and is skipped, with a notice, elsewhere.
//! CLUSTERLAB_KEEP_SCREENSHOT=FILE copies the screenshot there (that is how
//! docs/img/matrix-report.png is made).

mod support;
use assert_cmd::Command;
use std::path::{Path, PathBuf};

const CHROMIUM: &str = "/usr/bin/chromium";

use support::BASE_SPEC as BASE;

/// Two majors; a writes check that lost rows on 13 and none on 15; a step
/// whose name needs escaping and that fails on 13. The sleeps give the
/// chart bars of different lengths.
const MATRIX: &str = r#"
base: base.yaml
axes:
  version: [13, 15]
boxes: {13: clusterlab/bullseye-pg13}
steps:
  - name: psql
    run: "sleep 0.2; echo 1"
  - name: writes check
    run: |
      case "$FAKE_CONTAINER" in
        *pg13*) sleep 1.2; echo '1200 rows acknowledged, 1197 of them on the leader pg2, 3 lost; downtime 6.120 s (longest interruption, from row 9 to row 13; 1 reconnect)' ;;
        *) sleep 0.6; echo '1500 rows acknowledged, 1500 of them on the leader pg2, 0 lost; downtime 4.782 s (longest interruption, from row 812 to row 813; 1 reconnect)' ;;
      esac
  - name: rejoin <pg1> & "check"
    run: |
      sleep 0.4
      case "$FAKE_CONTAINER" in
        *pg13*) echo 'pg1 did not follow <pg2>' >&2; exit 3 ;;
        *) echo 'pg1 follows pg2' ;;
      esac
"#;

/// A fake `vagrant` that does nothing, and a fake `docker` that accepts the
/// provisioning and runs any other `docker exec` here, with the container's
/// name in $FAKE_CONTAINER so that a step can act per cell.
fn fake_bin(dir: &Path) -> PathBuf {
    let vagrant = "#!/bin/sh\necho \"fake vagrant: $*\"\n";
    let docker = r#"#!/bin/sh
case "$1" in
  exec)
    case "$2 $3 $4" in
      "-i "*) exit 0 ;;
      *" bash /tmp/clusterlab-provision.sh") exit 0 ;;
    esac
    FAKE_CONTAINER=$2; export FAKE_CONTAINER
    shift 2; exec "$@" ;;
  *) exit 1 ;;
esac
"#;
    support::fake_programs(dir, &[("vagrant", vagrant), ("docker", docker)])
}

/// Runs the matrix with `--report page` and returns the page's text.
fn write_report(dir: &Path, page: &Path) -> String {
    std::fs::write(dir.join("base.yaml"), BASE).unwrap();
    std::fs::write(dir.join("m.matrix.yaml"), MATRIX).unwrap();
    let bin = fake_bin(dir);
    let out = Command::cargo_bin("clusterlab")
        .unwrap()
        .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
        .args(["matrix", "--no-verify", "--jobs", "2", "--report"])
        .arg(page)
        .arg(dir.join("m.matrix.yaml"))
        .output()
        .unwrap();
    let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // pg13 fails its last step, so the run fails; the report is written all the same.
    assert_eq!(out.status.code(), Some(1), "{so}{se}");
    assert!(so.contains("1 passed, 1 failed"), "{so}{se}");
    std::fs::read_to_string(page).unwrap_or_else(|e| panic!("no report at {}: {e}\n{so}{se}", page.display()))
}

/// Chromium, or None (after a notice) where a skip is allowed.
fn chromium() -> Option<&'static Path> {
    if Path::new(CHROMIUM).is_file() {
        return Some(Path::new(CHROMIUM));
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{CHROMIUM} is missing: CI must run this test; lab/install-deps.sh installs chromium");
    }
    eprintln!("SKIPPED report_browser: {CHROMIUM} is missing (`apt-get install chromium`, or lab/install-deps.sh)");
    None
}

/// Headless Chromium on `url` with `args`, in a profile of its own under
/// `profile`, bounded by timeout(1) so that a hung browser fails the test.
fn browser(chromium: &Path, profile: &Path, url: &str, args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new("timeout")
        .arg("120")
        .arg(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("timeout(1) runs chromium");
    assert!(out.status.success(), "chromium {args:?} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn the_report_page_shows_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("matrix-report.html");
    let html = write_report(dir.path(), &page);
    let Some(chromium) = chromium() else { return };
    let url = format!("file://{}", page.display());

    // What the browser made of the page.
    let dom = browser(chromium, &dir.path().join("profile-dom"), &url, &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    assert!(dom.contains("<title>clusterlab matrix: m.matrix.yaml</title>"), "{dom}");
    assert!(dom.contains("2 cells on PostgreSQL 13, 15: 1 passed, 1 failed"), "{dom}");
    for cell in ["<td>pg13-f2-slots</td><td>13</td>", "<td>pg15-f2-slots</td><td>15</td>"] {
        // up, three steps, destroy and the total.
        assert_eq!(dom.matches(cell).count(), 6, "{cell} in:\n{dom}");
    }
    assert!(dom.contains("<td>pg13-f2-slots</td><td>13</td><td>step writes check</td><td>passed</td>"), "{dom}");
    assert!(dom.contains("<td class=\"num loss\">3</td><td class=\"num\">6.120</td>"), "pg13's loss and downtime:\n{dom}");
    assert!(dom.contains("<td class=\"num\">0</td><td class=\"num\">4.782</td>"), "pg15's:\n{dom}");
    assert!(
        dom.contains("<tr class=\"failed\"><td>pg13-f2-slots</td><td>13</td><td>step rejoin &lt;pg1&gt; &amp; \"check\"</td><td>failed</td>"),
        "the failed step, its name escaped:\n{dom}"
    );
    assert!(dom.contains("<td class=\"note\">exit 3 on pg1</td>"), "{dom}");
    assert!(!dom.contains("<pg1>"), "an unescaped name became an element:\n{dom}");
    // The chart: one svg, a bar per cell and phase, a legend swatch per cell.
    assert_eq!(dom.matches("<svg").count(), 1, "{dom}");
    assert_eq!(dom.matches("<rect class=\"bar\"").count(), 10, "{dom}");
    assert_eq!(dom.matches("<rect class=\"swatch\"").count(), 2, "{dom}");
    assert!(dom.contains(">pg13-f2-slots (PostgreSQL 13)</text>") && dom.contains(">pg15-f2-slots (PostgreSQL 15)</text>"), "{dom}");
    assert!(!html.contains("<script"), "the page needs no JavaScript");

    // What a reader sees: a screenshot of a real page is tens of kilobytes;
    // a blank one is a few.
    let png = dir.path().join("matrix-report.png");
    browser(chromium, &dir.path().join("profile-shot"), &url, &[&format!("--screenshot={}", png.display()), "--window-size=1200,900", "--hide-scrollbars"]);
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert!(bytes.len() > 30_000, "a {}-byte screenshot is too small to show the page", bytes.len());
    if let Ok(keep) = std::env::var("CLUSTERLAB_KEEP_SCREENSHOT") {
        std::fs::copy(&png, &keep).unwrap_or_else(|e| panic!("copying the screenshot to {keep}: {e}"));
    }
}
