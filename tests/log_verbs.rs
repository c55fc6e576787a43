//! clusterlab-pg's `log-offset` and `log-since`, run from the rendered script
//! on log files in a temp dir: the `PATH=BYTES` words a matrix log
//! expectation keeps and hands back must bring back exactly what each log
//! gained since (tests/matrix.rs runs the expectation against a fake of
//! these two verbs). Needs sh.

mod support;
use std::path::Path;
use std::process::Command;
use support::{check_ok, file, output};

/// The rendered clusterlab-pg with its logs moved into `dir`: pg_ctl's as
/// `dir/clusterlab-pg.log`, Debian's as `dir/postgresql-15-main.log`.
fn ctl_in(dir: &Path) -> std::path::PathBuf {
    let src = clusterlab::spec::Source::new("spec.yaml", support::BASE_SPEC);
    let spec = clusterlab::spec::parse(&src).unwrap();
    let plan = clusterlab::plan::build(&spec, &src).unwrap();
    let files = clusterlab::render::Renderer::new(None).unwrap().render_plan(&plan).unwrap();
    let ctl = file(&files, "scripts/clusterlab-pg");
    let log_line = "\nLOG=/var/log/postgresql/clusterlab-pg.log\n";
    let debian = "/var/log/postgresql/postgresql-*-main.log";
    assert!(ctl.contains(log_line) && ctl.contains(debian), "clusterlab-pg's logs moved: update this test");
    let ctl = ctl.replace(log_line, &format!("\nLOG={}/clusterlab-pg.log\n", dir.display())).replace(debian, &format!("{}/postgresql-*-main.log", dir.display()));
    let path = dir.join("ctl");
    std::fs::write(&path, ctl).unwrap();
    path
}

fn ctl(script: &Path, args: &[&str]) -> String {
    let out = output(Command::new("sh").arg(script).args(args));
    check_ok(&format!("clusterlab-pg {}", args.join(" ")), &out, "");
    String::from_utf8(out.stdout).unwrap()
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

#[test]
fn log_since_the_offsets_is_what_each_log_gained() {
    let dir = tempfile::tempdir().unwrap();
    let script = ctl_in(dir.path());
    let (pgctl, debian) = (dir.path().join("clusterlab-pg.log"), dir.path().join("postgresql-15-main.log"));
    assert_eq!(ctl(&script, &["log-offset"]), "", "no log yet, no word");

    append(&pgctl, "LOG:  one\nLOG:  two\n");
    let words: Vec<String> = ctl(&script, &["log-offset"]).lines().map(String::from).collect();
    assert_eq!(words, [format!("{}=20", pgctl.display())]);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();

    assert_eq!(ctl(&script, &[&["log-since"], &words[..]].concat()), "");
    append(&pgctl, "ERROR:  could not access status of transaction 42\n");
    // A log that was not there at the mark (a start by systemd) is new in full.
    append(&debian, "LOG:  database system is ready to accept connections\n");
    let since = ctl(&script, &[&["log-since"], &words[..]].concat());
    assert_eq!(since, "ERROR:  could not access status of transaction 42\nLOG:  database system is ready to accept connections\n");
    // No mark (the node was unreachable): whole logs.
    assert!(ctl(&script, &["log-since"]).starts_with("LOG:  one\nLOG:  two\nERROR:"));

    // A log that shrank since its mark (rotated, or a reset restored it) is read whole.
    std::fs::write(&pgctl, "LOG:  after\n").unwrap();
    assert!(ctl(&script, &[&["log-since"], &words[..]].concat()).starts_with("LOG:  after\n"));
}
