//! The README and docs/ pages link to each other by relative paths and
//! anchors; a page moved or a heading renamed must not leave a link dead.

use std::process::Command;

#[test]
fn every_relative_link_in_the_docs_has_a_target() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3").arg("docs/check-links.py").current_dir(root).output().expect("python3 runs docs/check-links.py");
    assert!(
        out.status.success(),
        "broken links:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_checker_finds_a_dead_link() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("docs")).unwrap();
    std::fs::write(dir.path().join("README.md"), "# A\n\n[gone](docs/gone.md) and [here](#a) and [bad](#b)\n").unwrap();
    let checker = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/check-links.py");
    let out = Command::new("python3").arg(checker).current_dir(dir.path()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("gone.md") && text.contains("#b") && !text.contains("#a"), "{text}");
}
