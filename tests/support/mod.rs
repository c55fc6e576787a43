//! Helpers shared by the rendering tests: run external tools, and cut the
//! generated shell scripts into pieces that can run on their own in a temp dir.
#![allow(dead_code)]

use clusterlab::render::File;
use std::path::Path;
use std::process::{Command, Output};

pub fn output(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn check_ok(what: &str, out: &Output, show: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}\n--- input ---\n{show}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A rendered file by its path in the working directory (`scripts/pg1.sh`).
pub fn file<'a>(files: &'a [File], path: &str) -> &'a str {
    &files
        .iter()
        .find(|f| f.path == Path::new(path))
        .unwrap_or_else(|| panic!("no {path} rendered; have {:?}", files.iter().map(|f| &f.path).collect::<Vec<_>>()))
        .content
}

/// The one-line `conf()` helper of a provisioning script.
pub fn conf_fn(script: &str) -> String {
    let f = script.lines().find(|l| l.starts_with("conf() {")).expect("the script defines conf()").to_string();
    assert!(f.trim_end().ends_with('}'), "conf() is no longer a one-liner: {f}");
    f
}

/// The body of the top-level shell function `name` (between `name() {` and
/// the first `}` in column 0).
pub fn function(script: &str, name: &str) -> String {
    let head = format!("{name}() {{");
    let lines: Vec<&str> = script.lines().skip_while(|l| !l.starts_with(&head)).collect();
    assert!(!lines.is_empty(), "the script has no function {name}()");
    let end = lines.iter().position(|l| *l == "}").unwrap_or_else(|| panic!("{name}() does not end"));
    lines[..=end].join("\n")
}

/// The `{ ... } > "$tmp"` blocks of `configure()`: the first writes
/// conf.d/clusterlab.conf, the second pg_hba.conf.
pub fn configure_blocks(script: &str) -> Vec<String> {
    let f = function(script, "configure");
    let mut blocks = Vec::new();
    let mut cur: Option<Vec<&str>> = None;
    for l in f.lines().skip(1) {
        if l.trim() == "{" {
            cur = Some(vec![l]);
        } else if let Some(b) = cur.as_mut() {
            b.push(l);
            if l.trim() == "} > \"$tmp\"" {
                blocks.push(cur.take().unwrap().join("\n"));
            }
        }
    }
    blocks
}

/// Runs `conf()` and the blocks with bash in `dir`, each block writing to its
/// own file; returns what each wrote. `MARKER` and `HOME` point into `dir`.
pub fn run_blocks(dir: &Path, conf_fn: &str, blocks: &[String]) -> Vec<String> {
    let mut script = String::from("set -euo pipefail\n");
    script.push_str(conf_fn);
    script.push('\n');
    for (i, b) in blocks.iter().enumerate() {
        script.push_str(&format!("tmp=\"$OUT/block{i}\"\n{b}\n"));
    }
    let out_dir = tempfile::tempdir().unwrap();
    let out = output(
        Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(dir)
            .env("OUT", out_dir.path())
            .env("MARKER", dir.join("MARKER"))
            .env("HOME", dir),
    );
    check_ok("bash (configure blocks)", &out, &script);
    (0..blocks.len())
        .map(|i| std::fs::read_to_string(out_dir.path().join(format!("block{i}"))).unwrap())
        .collect()
}

/// What the leader's (or any node's) `configure()` writes: (clusterlab.conf, pg_hba.conf).
pub fn configured(script: &str) -> (String, String) {
    let blocks = configure_blocks(script);
    assert_eq!(blocks.len(), 2, "configure() should write two files (clusterlab.conf, pg_hba.conf)");
    let dir = tempfile::tempdir().unwrap();
    let mut w = run_blocks(dir.path(), &conf_fn(script), &blocks);
    let hba = w.pop().unwrap();
    (w.pop().unwrap(), hba)
}

/// Writes executable scripts (name, text) into DIR/bin, where a test puts
/// them first on PATH in place of the real programs; returns DIR/bin.
pub fn fake_programs(dir: &Path, programs: &[(&str, &str)]) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, text) in programs {
        let p = bin.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// The base spec of the matrix tests: PostgreSQL 15 on docker, a leader and two followers.
pub const BASE_SPEC: &str = "\
name: base
version: 15
box: clusterlab/bookworm-pg15
provider: docker
network: 10.42.15.0/24
topology: {followers: 2}
";
