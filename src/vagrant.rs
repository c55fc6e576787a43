//! Driving `vagrant` in a cluster's working directory: the slow, general path
//! used for bring-up, provisioning and teardown.

use crate::error::Result;
use crate::providers::kind::Provider;
use crate::runner::{check, check_with, Cmd, Mode, Output, Runner};
use std::path::PathBuf;

pub struct Vagrant<'a> {
    pub runner: &'a dyn Runner,
    pub dir: PathBuf,
    pub logs: PathBuf,
    pub quiet: bool,
}

/// Vagrant's docker provider lists every docker network, then inspects each
/// to find one for a private network's subnet; a cluster being destroyed at
/// that moment removes its network in between and the other cluster's `up`
/// fails ("network vagrant_network_10.52.3.0/24 not found": two of ten
/// matrix cells with --jobs 2 in one run). Within one clusterlab (the
/// matrix's workers) bring-up and teardown take turns; provisioning, the
/// long part, still runs in parallel.
static NETWORKS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// This process's turn at creating or removing docker networks.
pub fn networks_turn() -> std::sync::MutexGuard<'static, ()> {
    NETWORKS.lock().unwrap_or_else(|e| e.into_inner())
}

impl Vagrant<'_> {
    pub fn cmd<S: Into<String>>(&self, args: impl IntoIterator<Item = S>) -> Cmd {
        Cmd::new("vagrant", args)
            .dir(&self.dir)
            .if_missing("install Vagrant: `apt-get install vagrant` on Debian/Ubuntu (plus `vagrant-libvirt` for libvirt), or `lab/install-deps.sh`")
    }

    fn run(&self, cmd: Cmd, log: &str) -> Result<Output> {
        let log = self.logs.join(format!("{log}.log"));
        let mode = Mode::Stream { log: Some(log.clone()), quiet: self.quiet };
        check_with(self.runner, &cmd, &mode, |out| hint_for(&out.stdout, &log))
    }

    /// Starts every machine (in parallel where the provider can) without provisioning.
    pub fn up_no_provision(&self, provider: Provider) -> Result<()> {
        // (VMs boot for minutes and their networks are libvirt's: no turn-taking there.)
        let _networks = provider.capabilities().shared_networks.then(networks_turn);
        self.run(self.cmd(["up", "--no-provision", "--provider", provider.as_str()]), "up").map(drop)
    }

    pub fn destroy(&self) -> Result<()> {
        let _networks = networks_turn();
        self.run(self.cmd(["destroy", "--force"]), "destroy").map(drop)
    }

    pub fn snapshot_save(&self, name: &str) -> Result<()> {
        self.run(self.cmd(["snapshot", "save", "--force", name]), "snapshot").map(drop)
    }

    pub fn snapshot_restore(&self, name: &str) -> Result<()> {
        self.run(self.cmd(["snapshot", "restore", "--no-provision", name]), "snapshot").map(drop)
    }

    pub fn ssh_config(&self) -> Result<String> {
        check(self.runner, &self.cmd(["ssh-config"]), &Mode::Capture, "is the cluster up? `clusterlab status SPEC`").map(|o| o.stdout)
    }

    /// An interactive shell, or one command, on a node; returns its exit code.
    pub fn ssh(&self, node: &str, command: Option<&str>) -> Result<i32> {
        let mut args = vec!["ssh".to_string(), node.to_string()];
        if let Some(c) = command {
            args.extend(["-c".to_string(), c.to_string()]);
        }
        let out = self.runner.run(&self.cmd(args), &Mode::Inherit)?;
        Ok(out.code.unwrap_or(1))
    }
}

/// Turns what vagrant printed into advice.
pub fn hint_for(output: &str, log: &std::path::Path) -> String {
    let failed_step = output
        .lines()
        .rev()
        .find_map(|l| l.split_once("clusterlab[").and_then(|(_, r)| r.split_once("]: FAILED during: ")));
    if let Some((node, step)) = failed_step {
        return format!(
            "provisioning of node {node} failed during: {step}. Inspect it with `clusterlab ssh SPEC {node}`; \
             fix the cause, then `clusterlab up SPEC` again or `clusterlab destroy SPEC`. Full output: {}",
            log.display()
        );
    }
    let known: &[(&str, &str)] = &[
        ("provider 'libvirt' could not be found", "install the libvirt provider: `apt-get install vagrant-libvirt` (or `vagrant plugin install vagrant-libvirt`)"),
        ("provider 'virtualbox' could not be found", "install VirtualBox, or use `provider: libvirt` or `provider: docker`"),
        ("Cannot connect to the Docker daemon", "start dockerd, or point DOCKER_HOST at a running one (see lab/lab.sh)"),
        ("could not be found. Vagrant will use the box", "the box is missing: build it with `clusterlab box build`, or `vagrant box add` it"),
        ("Unable to find image", "the image is missing: build it with `clusterlab box build --provider docker`"),
        ("pull access denied", "the image is missing: build it with `clusterlab box build --provider docker`"),
        ("Failed to connect socket to '/var/run/libvirt", "libvirtd is not running: start it (see lab/lab.sh)"),
        ("already exists", "a machine of the same name is left over: `clusterlab destroy SPEC` removes it"),
    ];
    for (needle, hint) in known {
        if output.contains(needle) {
            return format!("{hint}. Full output: {}", log.display());
        }
    }
    format!("see the full output in {}; `clusterlab status SPEC` shows what exists", log.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn provisioning_failures_name_node_and_step() {
        let out = "==> pg2: Running provisioner\n    pg2: clusterlab[pg2]: FAILED during: base backup from pg1\n";
        let h = hint_for(out, Path::new("logs/provision-pg2.log"));
        assert!(h.contains("node pg2 failed during: base backup from pg1"), "{h}");
        assert!(h.contains("logs/provision-pg2.log"));
    }

    #[test]
    fn missing_plugin_says_what_to_install() {
        let h = hint_for("The provider 'libvirt' could not be found, but was requested", Path::new("x"));
        assert!(h.contains("apt-get install vagrant-libvirt"), "{h}");
    }
}
