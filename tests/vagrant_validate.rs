//! The real `vagrant validate` on rendered Vagrantfiles, for each provider.
//! Vagrant's docker provider asks the daemon even to validate, so the docker
//! case needs one (lab/test.sh runs the tests inside the lab, where it runs).

use assert_cmd::Command;
use std::path::Path;

fn render(dir: &Path, provider: &str, extra: &str) {
    let spec = dir.join("v.yaml");
    std::fs::write(
        &spec,
        format!("name: val-{provider}\nversion: 15\nbox: clusterlab/bookworm-pg15\nprovider: {provider}\nnetwork: 10.61.0.0/24\n{extra}topology:\n  followers:\n    - name: pg2\n    - name: pg3\n      upstream: pg2\n      apply_delay: 1min\nreplication: {{mode: sync}}\n"),
    )
    .unwrap();
    Command::cargo_bin("clusterlab").unwrap().arg("render").arg(&spec).assert().success();
}

fn validate(dir: &Path, provider: &str, extra: &[&str]) {
    let work = dir.join(format!(".clusterlab/val-{provider}"));
    let out = std::process::Command::new("vagrant")
        .arg("validate")
        .args(extra)
        .current_dir(&work)
        .env("VAGRANT_DEFAULT_PROVIDER", provider)
        .output()
        .expect("vagrant is installed (lab/install-deps.sh)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "vagrant validate failed for {provider}:\n{text}");
    assert!(text.contains("Vagrantfile validated successfully"), "{text}");
}

#[test]
fn libvirt_vagrantfile_validates() {
    let d = tempfile::tempdir().unwrap();
    render(d.path(), "libvirt", "provider_options: {driver: qemu, cpu_mode: custom, cpu_model: qemu64}\n");
    validate(d.path(), "libvirt", &[]);
}

#[test]
fn virtualbox_vagrantfile_validates() {
    let d = tempfile::tempdir().unwrap();
    render(d.path(), "virtualbox", "");
    // VirtualBox itself is not installed here: check the configuration only.
    validate(d.path(), "virtualbox", &["--ignore-provider"]);
}

#[test]
fn docker_vagrantfile_validates() {
    let reachable = std::process::Command::new("docker").arg("version").output().is_ok_and(|o| o.status.success());
    if !reachable {
        assert!(std::env::var_os("CLUSTERLAB_NETNS").is_none(), "inside the lab dockerd must be reachable");
        eprintln!("no docker daemon outside the lab: run this inside it (lab/lab.sh exec cargo test)");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    render(d.path(), "docker", "");
    validate(d.path(), "docker", &[]);
}
