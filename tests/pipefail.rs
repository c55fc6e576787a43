//! Pipelines that end early under `set -o pipefail`.
//!
//! `producer | grep -q X` (or `| head`) stops reading at the first match; a
//! producer still writing then dies of SIGPIPE and, under pipefail, the whole
//! pipeline fails although the match was found. The provisioning scripts once
//! decided `ssl` that way, so a second provisioning flipped `ssl = off` on some
//! nodes at random and restarted their servers (issue 10). These tests run the
//! real rendered decision against an `ldd` that keeps writing, and forbid the
//! pattern in every script the project ships or renders.

use clusterlab::plan;
use clusterlab::render::Renderer;
use clusterlab::spec::{self, Source};
use std::path::{Path, PathBuf};
use std::process::Command;

mod support;
use support::{check_ok, conf_fn, configure_blocks, file, output};

fn leader_script() -> String {
    let text = "name: ssl\nversion: \"15\"\nprovider: docker\ntopology:\n  followers: 1\n";
    let src = Source::new(PathBuf::from("/nowhere/ssl.yaml"), text);
    let plan = plan::build(&spec::parse(&src).unwrap(), &src).unwrap();
    let files = Renderer::new(None).unwrap().render_plan(&plan).unwrap();
    file(&files, "scripts/pg1.sh").to_string()
}

/// Runs the block of `configure()` that writes clusterlab.conf with a fake
/// `ldd` first on PATH, and returns what it wrote.
fn clusterlab_conf_with_ldd(ldd_body: &str) -> String {
    let script = leader_script();
    let block = configure_blocks(&script).into_iter().next().expect("configure() writes clusterlab.conf first");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let ldd = bin.join("ldd");
    std::fs::write(&ldd, format!("#!/bin/bash\n{ldd_body}\n")).unwrap();
    std::fs::set_permissions(&ldd, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let has_ssl = support::function(&script, "server_has_ssl");
    let body = format!("set -euo pipefail\n{}\n{has_ssl}\ntmp=\"$OUT\"\n{block}\n", conf_fn(&script));
    let out_file = dir.path().join("clusterlab.conf");
    let out = output(
        Command::new("bash")
            .arg("-c")
            .arg(&body)
            .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
            .env("PG_BIN", dir.path())
            .env("OUT", &out_file),
    );
    check_ok("the clusterlab.conf block", &out, &body);
    std::fs::read_to_string(out_file).unwrap()
}

#[test]
fn a_server_with_ssl_keeps_it_even_when_ldd_keeps_writing() {
    // The libssl line comes first, then more output after a pause: a reader
    // that quits at the first match makes this ldd die of SIGPIPE.
    let conf = clusterlab_conf_with_ldd(
        "echo '\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x1)'\nsleep 0.2\n\
         for i in $(seq 2000); do echo \"\tlib$i.so => /lib/lib$i.so (0x2)\"; done",
    );
    assert!(conf.contains("wal_level"), "the block wrote no settings:\n{conf}");
    assert!(!conf.contains("ssl = off"), "ssl was turned off on a server that has it:\n{conf}");
}

#[test]
fn a_server_without_ssl_gets_ssl_off() {
    let conf = clusterlab_conf_with_ldd("echo '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)'");
    assert!(conf.contains("ssl = off"), "a server without SSL must get ssl = off:\n{conf}");
    let conf = clusterlab_conf_with_ldd("echo 'not a dynamic executable' >&2; exit 1");
    assert!(conf.contains("ssl = off"), "a server ldd cannot read must get ssl = off:\n{conf}");
}

/// `| grep -q`, `| grep -...q...`, `| grep --quiet`, `| head` outside comments.
fn early_exit_pipes(line: &str) -> bool {
    let code = line.trim_start();
    if code.starts_with('#') {
        return false;
    }
    code.split('|').skip(1).any(|seg| {
        let mut words = seg.split_whitespace();
        match words.next() {
            Some("head") => true,
            Some("grep") => words
                .take_while(|w| w.starts_with('-'))
                .any(|w| w == "--quiet" || (!w.starts_with("--") && w.contains('q'))),
            _ => false,
        }
    })
}

#[test]
fn the_detector_finds_the_pattern() {
    assert!(early_exit_pipes(r#"    if ! ldd "$PG_BIN/postgres" 2>/dev/null | grep -q 'libssl'; then"#));
    assert!(early_exit_pipes("x=$(find . -name y | head -1)"));
    assert!(early_exit_pipes("a | grep -Fqx b"));
    assert!(!early_exit_pipes("# a | grep -q b"));
    assert!(!early_exit_pipes("grep -q x file || y"));
    assert!(!early_exit_pipes("a | grep -v b | sort"));
    assert!(!early_exit_pipes(r#"if grep -qF "$x" <<<"$info"; then"#));
}

fn shell_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            shell_files(&p, out);
        } else if matches!(p.extension().and_then(|x| x.to_str()), Some("sh") | Some("tera") | Some("run"))
            || p.file_name().is_some_and(|n| n == "run")
        {
            out.push(p);
        }
    }
}

#[test]
fn no_script_pipes_into_an_early_exit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for d in ["templates", "lab", "tests/e2e", "bench", ".ci"] {
        shell_files(&root.join(d), &mut files);
    }
    assert!(files.len() > 10, "found too few scripts: {files:?}");
    let mut found = Vec::new();
    for f in &files {
        for (i, line) in std::fs::read_to_string(f).unwrap().lines().enumerate() {
            if early_exit_pipes(line) {
                found.push(format!("{}:{}: {}", f.strip_prefix(root).unwrap().display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "under pipefail these pipelines can fail although they matched; capture the output first:\n{}",
        found.join("\n")
    );
}
