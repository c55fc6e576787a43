//! `clusterlab box build` as a user runs it: which release and packages it
//! picks per major (through --dry-run, which prints the recipes' commands with
//! their environment), what it refuses before running anything, and how the
//! source-build recipe (templates/box/compile.sh) rejects bad input before it
//! downloads anything.

use assert_cmd::Command;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn clusterlab() -> Command {
    let mut c = Command::cargo_bin("clusterlab").unwrap();
    c.env_remove("RUST_LOG").env_remove("CLUSTERLAB_TEMPLATES").env("NO_COLOR", "1");
    c
}

/// `clusterlab [--dry-run] box build --cache DIR/cache ARGS...`
fn box_build(dir: &Path, dry_run: bool, args: &[&str]) -> Command {
    let mut c = clusterlab();
    if dry_run {
        c.arg("--dry-run");
    }
    c.args(["box", "build", "--cache"]).arg(dir.join("cache")).args(args);
    c
}

fn stdout(c: &mut Command) -> String {
    String::from_utf8(c.assert().success().get_output().stdout.clone()).unwrap()
}

/// A file standing in for a tarball where only its existence matters.
fn some_file(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, "not read in a dry run").unwrap();
    p
}

/// The environment of the printed `env K=V ... bash .../RECIPE` line that runs `recipe`.
fn env_of(out: &str, recipe: &str) -> BTreeMap<String, String> {
    let line = out.lines().find(|l| l.ends_with(recipe)).unwrap_or_else(|| panic!("no command runs {recipe}:\n{out}"));
    let words = shell_words::split(line).unwrap();
    assert_eq!(words[0], "env", "{line}");
    assert_eq!(words[words.len() - 2], "bash", "{line}");
    words[1..words.len() - 2]
        .iter()
        .map(|w| {
            let (k, v) = w.split_once('=').unwrap_or_else(|| panic!("not K=V: {w} in {line}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// stderr without miette's frame and line wrapping: one line, single spaces.
fn flat(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr).replace(['│', '×'], " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The command fails with `code`, prints nothing on stdout, and says each of `says`.
fn fails_saying(c: &mut Command, code: i32, says: &[&str]) {
    let out = c.assert().code(code).stdout("").get_output().clone();
    let text = flat(&out.stderr);
    for s in says {
        assert!(text.contains(s), "stderr lacks `{s}`:\n{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn the_release_follows_the_major() {
    let d = tempfile::tempdir().unwrap();
    for (major, release) in [("13", "bullseye"), ("15", "bookworm"), ("17", "trixie")] {
        let out = stdout(&mut box_build(d.path(), true, &["--provider", "docker", "--postgres", major]));
        let env = env_of(&out, "build.sh");
        assert_eq!(env["CL_RELEASE"], release);
        assert_eq!(env["CL_PG_VERSIONS"], major);
        assert_eq!(env["CL_EXTRA_MAJORS"], "");
        assert_eq!(env["CL_NAME"], format!("clusterlab/{release}-pg{major}"));
        assert!(!env.contains_key("CL_EXTRA_PACKAGES") && !out.contains("compile.sh"), "{out}");
        assert_eq!(out.lines().last(), Some(format!("clusterlab/{release}-pg{major}").as_str()), "{out}");
    }
    // No major: bookworm, no PostgreSQL.
    let out = stdout(&mut box_build(d.path(), true, &["--provider", "docker"]));
    let env = env_of(&out, "build.sh");
    assert_eq!((env["CL_RELEASE"].as_str(), env["CL_PG_VERSIONS"].as_str()), ("bookworm", ""));
    assert_eq!(out.lines().last(), Some("clusterlab/bookworm"));
}

#[test]
fn a_major_no_suite_carries_is_refused_before_anything_runs() {
    let d = tempfile::tempdir().unwrap();
    fails_saying(
        &mut box_build(d.path(), true, &["--postgres", "11"]),
        2,
        &[
            "PostgreSQL 11 is in no Debian suite reachable here (bullseye 13, bookworm 15, trixie 17)",
            "Pass --tarball FILE (lab/fetch-pg.sh 11 DIR makes one) or --source postgresql-11.x.tar.bz2",
        ],
    );
    fails_saying(
        &mut box_build(d.path(), true, &["--postgres", "9.4"]),
        2,
        &["PostgreSQL 9.4 is in no Debian suite reachable here", "Pass --source postgresql-9.4.x.tar.bz2"],
    );
    // Refused before even the cache directory is made.
    assert!(!d.path().join("cache").exists());
}

#[test]
fn an_explicit_release_must_carry_the_major() {
    let d = tempfile::tempdir().unwrap();
    fails_saying(
        &mut box_build(d.path(), true, &["--release", "bookworm", "--postgres", "13"]),
        2,
        &["PostgreSQL 13 is not in bookworm (bookworm carries 15; 13 is in bullseye)", "use --release bullseye, or pass --tarball FILE"],
    );
    fails_saying(
        &mut box_build(d.path(), true, &["--release", "trixie", "--postgres", "11"]),
        2,
        &["PostgreSQL 11 is in no Debian suite reachable here"],
    );
}

#[test]
fn a_tarball_for_another_major_keeps_the_suites_client_tools() {
    let d = tempfile::tempdir().unwrap();
    let t = some_file(d.path(), "pg-11.tar.gz");
    let out = stdout(&mut box_build(d.path(), true, &["--provider", "docker", "--postgres", "11", "--tarball", t.to_str().unwrap()]));
    let env = env_of(&out, "build.sh");
    for (k, v) in [("CL_RELEASE", "trixie"), ("CL_PG_VERSIONS", "17"), ("CL_EXTRA_MAJORS", "11"), ("CL_NAME", "clusterlab/trixie-pg11")] {
        assert_eq!(env[k], v, "{k}");
    }
    assert_eq!(env["CL_EXTRA_TARBALL"], t.display().to_string());
    assert!(!env.contains_key("CL_EXTRA_PACKAGES") && !out.contains("compile.sh"), "{out}");
    // lab/test.sh's form still works as before.
    let out = stdout(&mut box_build(
        d.path(),
        true,
        &["--provider", "docker", "--release", "trixie", "--postgres", "17", "--tarball", t.to_str().unwrap(), "--name", "clusterlab/trixie-pg11"],
    ));
    let env = env_of(&out, "build.sh");
    assert_eq!((env["CL_PG_VERSIONS"].as_str(), env["CL_EXTRA_MAJORS"].as_str()), ("17", ""));
    assert_eq!(env["CL_NAME"], "clusterlab/trixie-pg11");
}

#[test]
fn a_source_build_compiles_then_builds_the_box_without_debians_server() {
    let d = tempfile::tempdir().unwrap();
    let src = some_file(d.path(), "postgresql-9.4.26.tar.gz");
    let out = stdout(&mut box_build(d.path(), true, &["--provider", "docker", "--postgres", "9.4", "--source", src.to_str().unwrap()]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "compile.sh, build.sh, the name:\n{out}");
    assert!(lines[0].ends_with("compile.sh") && lines[1].ends_with("build.sh"), "compile first:\n{out}");
    let compile = env_of(&out, "compile.sh");
    let src = src.canonicalize().unwrap();
    for (k, v) in [
        ("CL_SOURCE", src.display().to_string()),
        ("CL_MAJOR", "9.4".into()),
        ("CL_RELEASE", "bookworm".into()),
        ("CL_CONFIGURE_FLAGS", "--disable-thread-safety".into()),
        ("CL_CACHE", d.path().join("cache").display().to_string()),
    ] {
        assert_eq!(compile[k], v, "{k}");
    }
    // The majors' release numbering comes from the facts.
    let patterns: Vec<&str> = compile["CL_RELEASE_PATTERNS"].split(' ').collect();
    assert!(patterns.contains(&"9.4=^9\\.4\\.[0-9]+$") && patterns.contains(&"17=^17(\\.[0-9]+|beta[0-9]+|rc[0-9]+)$"), "{patterns:?}");
    let build = env_of(&out, "build.sh");
    // No Debian server: the compiled one, plus postgresql-common for the cluster tools.
    for (k, v) in [("CL_RELEASE", "bookworm"), ("CL_PG_VERSIONS", ""), ("CL_EXTRA_MAJORS", "9.4"), ("CL_EXTRA_TARBALL_DEST", "/usr/lib/postgresql")] {
        assert_eq!(build[k], v, "{k}");
    }
    assert!(build["CL_EXTRA_PACKAGES"].starts_with("postgresql-common "), "{build:?}");
    assert!(!build["CL_EXTRA_TARBALL"].is_empty());
    assert_eq!(lines[2], "clusterlab/bookworm-pg9.4");
    // Both recipes were written where they run from, with the lib.sh they source.
    assert!(d.path().join("cache/compile.sh").is_file());
    assert!(d.path().join("cache/build.sh").is_file());
    assert!(d.path().join("cache/lib.sh").is_file());
}

#[test]
fn source_and_tarball_conflict() {
    let d = tempfile::tempdir().unwrap();
    let f = some_file(d.path(), "x.tar.gz");
    let f = f.to_str().unwrap();
    fails_saying(&mut box_build(d.path(), true, &["--postgres", "9.4", "--source", f, "--tarball", f]), 2, &["cannot be used with"]);
}

#[test]
fn a_missing_source_is_refused_before_anything_runs() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("postgresql-9.4.26.tar.bz2");
    fails_saying(
        &mut box_build(d.path(), true, &["--postgres", "9.4", "--source", missing.to_str().unwrap()]),
        2,
        &[&format!("--source {}: no such file", missing.display())],
    );
    assert!(!d.path().join("cache").exists());
    // One major, the one the tarball holds.
    let f = some_file(d.path(), "x.tar.gz");
    fails_saying(
        &mut box_build(d.path(), true, &["--postgres", "9.4,9.5", "--source", f.to_str().unwrap()]),
        2,
        &["--source needs exactly one --postgres MAJOR"],
    );
}

#[test]
fn the_compile_recipe_can_be_overridden_like_build_sh() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("templates/box");
    fs::create_dir_all(&t).unwrap();
    fs::write(t.join("compile.sh"), "echo my compile\n").unwrap();
    fs::write(t.join("lib.sh"), "# my lib\n").unwrap();
    let src = some_file(d.path(), "postgresql-9.4.26.tar.gz");
    box_build(d.path(), true, &["--postgres", "9.4", "--source", src.to_str().unwrap()])
        .arg("--templates")
        .arg(d.path().join("templates"))
        .assert()
        .success();
    assert_eq!(fs::read_to_string(d.path().join("cache/compile.sh")).unwrap(), "echo my compile\n");
    assert_eq!(fs::read_to_string(d.path().join("cache/lib.sh")).unwrap(), "# my lib\n");
}

#[test]
fn new_writes_the_box_that_box_build_makes() {
    let d = tempfile::tempdir().unwrap();
    for (version, want) in [("11", "clusterlab/trixie-pg11"), ("9.4", "clusterlab/bookworm-pg9.4"), ("13", "clusterlab/bullseye-pg13"), ("15", "clusterlab/bookworm-pg15")] {
        let out = d.path().join(format!("c{version}.yaml"));
        clusterlab().args(["new", "c", "--version", version, "-o"]).arg(&out).assert().success();
        let text = fs::read_to_string(&out).unwrap();
        assert!(text.contains(&format!("box: \"{want}\"")), "{version}: {text}");
    }
}

// --- compile.sh for real, on input it must reject before downloading anything ---

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false)
}

/// A tar.gz of `files` (path, content) made with the system's tar.
fn tarball(dir: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let tree = dir.join(format!("{name}.tree"));
    for (p, text) in files {
        let p = tree.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    let out = dir.join(name);
    let ok = std::process::Command::new("tar").arg("-czf").arg(&out).arg("-C").arg(&tree).arg(".").status().unwrap().success();
    assert!(ok, "tar failed");
    out
}

/// Runs the real `box build --source` (compile.sh really runs) and expects it to fail at
/// the source check: exit 1, the message, and nothing left in the cache but logs.
fn source_is_rejected(d: &Path, major: &str, source: &Path, message: &str) {
    let started = std::time::Instant::now();
    let mut c = box_build(d, false, &["-q", "--provider", "docker", "--postgres", major, "--source", source.to_str().unwrap()]);
    // Nothing may be fetched: no netns to enter, no mirror that answers.
    c.env_remove("CLUSTERLAB_HOST_NETNS").env("CL_MIRROR", "http://127.0.0.1:9/debian");
    let out = c.assert().code(1).get_output().clone();
    assert!(flat(&out.stderr).contains(message), "stderr lacks `{message}`:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed().as_secs() < 30, "took {:?}", started.elapsed());
    let pgbuild = d.join("cache/pgbuild");
    for e in fs::read_dir(&pgbuild).unwrap() {
        let e = e.unwrap();
        assert_eq!(e.file_name(), "logs", "left in pgbuild: {}", e.path().display());
    }
    let leftovers: Vec<_> = fs::read_dir(d.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("compile."))
        .collect();
    assert!(leftovers.is_empty(), "work dirs left: {leftovers:?}");
}

const CONFIGURE_96: &str = "#!/bin/sh\nPACKAGE_NAME='PostgreSQL'\nPACKAGE_VERSION='9.6.24'\n";

#[test]
fn compile_rejects_bad_sources_before_downloading() {
    if !is_root() {
        eprintln!("skipped: compile.sh runs only as root");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let text = some_file(d, "notes.tar.gz");
    source_is_rejected(d, "9.4", &text, "is not a complete tar archive");

    let other = tarball(d, "other.tar.gz", &[("hello-1.0/configure", "#!/bin/sh\n")]);
    source_is_rejected(d, "9.4", &other, "is not a PostgreSQL source tarball");

    let pg96 = tarball(d, "postgresql-9.6.24.tar.gz", &[("postgresql-9.6.24/configure", CONFIGURE_96)]);
    source_is_rejected(d, "9.4", &pg96, "is PostgreSQL 9.6.24 (major 9.6), but --postgres 9.4 was asked");

    let bytes = fs::read(&pg96).unwrap();
    let cut = d.join("cut.tar.gz");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    source_is_rejected(d, "9.6", &cut, "is not a complete tar archive");
}
