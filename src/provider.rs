//! What differs between libvirt, docker and virtualbox once machines exist:
//! running a command on a node, snapshots, machine states, leftovers. These
//! are the hot paths of `reset` and `status`, so they talk to virsh and docker
//! directly (a vagrant call costs 1.5-5 s) and handle nodes in parallel.

use crate::error::{Error, Result};
use crate::plan::{Node, Plan};
use crate::runner::{check, parallel, Cmd, Mode, Output, Runner};
use crate::vagrant::Vagrant;
use crate::workdir::Workdir;

pub const SNAPSHOT: &str = "clusterlab-known";

pub struct Provider<'a> {
    pub runner: &'a dyn Runner,
    pub plan: &'a Plan,
    pub workdir: &'a Workdir,
    pub vagrant: &'a Vagrant<'a>,
}

impl Provider<'_> {
    pub fn kind(&self) -> &'static str {
        self.plan.provider
    }

    /// Whether `reset` can restore whole-machine snapshots here.
    pub fn has_snapshots(&self) -> bool {
        self.kind() != "docker"
    }

    /// A command run as root on a node.
    pub fn exec_cmd(&self, node: &Node, args: &[&str]) -> Result<Cmd> {
        if self.kind() == "docker" {
            let mut a = vec!["exec", node.machine.as_str()];
            a.extend(args);
            return Ok(Cmd::new("docker", a));
        }
        // VMs: plain ssh with the config vagrant printed once (a multiplexed
        // connection would be faster still; one ssh is ~2.6 s under emulation).
        let config = self.workdir.path("ssh-config");
        if !config.is_file() && self.runner.is_real() {
            let text = self.vagrant.ssh_config()?;
            std::fs::write(&config, text).map_err(|e| Error::io(&config, e))?;
        }
        // ssh hands the remote shell one string: quote each word so arguments with spaces survive.
        let remote = shell_words::join(std::iter::once("sudo").chain(args.iter().copied()));
        Ok(Cmd::new("ssh", [format!("-F{}", config.display()), node.name.clone(), remote]))
    }

    pub fn exec(&self, node: &Node, args: &[&str]) -> Result<Output> {
        let cmd = self.exec_cmd(node, args)?;
        check(self.runner, &cmd, &Mode::Capture, &format!("is node {} running? `clusterlab status SPEC`", node.name))
    }

    fn virsh(&self, args: &[&str]) -> Cmd {
        // vagrant-libvirt's default connection; virsh alone would pick
        // qemu:///session for a non-root user.
        let uri = std::env::var("LIBVIRT_DEFAULT_URI").unwrap_or_else(|_| "qemu:///system".into());
        Cmd::new("virsh", ["-c", uri.as_str()].into_iter().chain(args.iter().copied()))
    }

    /// Saves every machine's state as the known state.
    pub fn save_snapshots(&self) -> Result<()> {
        match self.kind() {
            "libvirt" => {
                parallel(&self.plan.nodes, |n| {
                    // A previous baseline of the same name would make creation fail.
                    let _ = self.runner.run(&self.virsh(&["snapshot-delete", &n.machine, SNAPSHOT]), &Mode::Capture);
                    let cmd = self.virsh(&["snapshot-create-as", &n.machine, SNAPSHOT]);
                    check(self.runner, &cmd, &Mode::Capture, "libvirt could not snapshot the domain")
                })?;
                Ok(())
            }
            "virtualbox" => self.vagrant.snapshot_save(SNAPSHOT),
            _ => Err(Error::usage("docker containers have no snapshots", "use the data-directory method")),
        }
    }

    pub fn restore_snapshots(&self) -> Result<()> {
        match self.kind() {
            "libvirt" => {
                parallel(&self.plan.nodes, |n| {
                    let cmd = self.virsh(&["snapshot-revert", &n.machine, SNAPSHOT, "--running"]);
                    check(self.runner, &cmd, &Mode::Capture, "is there a known state? `clusterlab status SPEC`; `clusterlab up SPEC` takes one")
                })?;
                Ok(())
            }
            "virtualbox" => self.vagrant.snapshot_restore(SNAPSHOT),
            _ => Err(Error::usage("docker containers have no snapshots", "use `--method data`")),
        }
    }

    /// Machine name -> provider's word for its state ("running", "shut off", "missing"...).
    pub fn machine_states(&self) -> Vec<(String, String)> {
        let state = |n: &Node| -> Result<String> {
            let out = match self.kind() {
                "docker" => self.runner.run(&Cmd::new("docker", ["inspect", "-f", "{{.State.Status}}", n.machine.as_str()]), &Mode::Capture)?,
                "libvirt" => self.runner.run(&self.virsh(&["domstate", &n.machine]), &Mode::Capture)?,
                _ => return Ok("unknown (see `vagrant status`)".into()),
            };
            Ok(if out.ok() { out.stdout.trim().to_string() } else { "missing".into() })
        };
        let states = parallel(&self.plan.nodes, |n| Ok(state(n).unwrap_or_else(|e| format!("unknown ({e})")))).unwrap_or_default();
        self.plan.nodes.iter().map(|n| n.name.clone()).zip(states).collect()
    }

    /// vagrant-libvirt names a private network after the project directory and
    /// removes it only when it destroys the last machine on it; an interrupted
    /// `up` can leave it. Ours is the one whose host address is our network's
    /// first address (clusters never share a network).
    fn remove_networks(&self) -> Result<Vec<String>> {
        let net: ipnet::Ipv4Net = self.plan.network.parse().expect("the planner checked the network");
        let host = net.hosts().next().expect("a /28 or larger has hosts");
        let listed = self.runner.run(&self.virsh(&["net-list", "--all", "--name"]), &Mode::Capture)?;
        let mut removed = Vec::new();
        for name in listed.stdout.lines().map(str::trim).filter(|n| !n.is_empty()) {
            let xml = self.runner.run(&self.virsh(&["net-dumpxml", name]), &Mode::Capture)?;
            if xml.ok() && xml.stdout.contains(&format!("address='{host}'")) {
                let _ = self.runner.run(&self.virsh(&["net-destroy", name]), &Mode::Capture);
                check(self.runner, &self.virsh(&["net-undefine", name]), &Mode::Capture, "libvirt could not remove the network")?;
                removed.push(format!("network {name}"));
            }
        }
        Ok(removed)
    }

    /// Removes machines, volumes and snapshots that vagrant no longer knows
    /// about (an interrupted `up` can leave them); returns what it removed.
    pub fn remove_leftovers(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for n in &self.plan.nodes {
            match self.kind() {
                "docker" => {
                    if self.runner.run(&Cmd::new("docker", ["inspect", n.machine.as_str()]), &Mode::Capture)?.ok() {
                        check(self.runner, &Cmd::new("docker", ["rm", "-f", "-v", n.machine.as_str()]), &Mode::Capture, "docker could not remove the container")?;
                        removed.push(format!("container {}", n.machine));
                    }
                }
                "libvirt" => {
                    if self.runner.run(&self.virsh(&["dominfo", &n.machine]), &Mode::Capture)?.ok() {
                        let _ = self.runner.run(&self.virsh(&["destroy", &n.machine]), &Mode::Capture);
                        let undefine = self.virsh(&["undefine", &n.machine, "--remove-all-storage", "--snapshots-metadata", "--managed-save"]);
                        check(self.runner, &undefine, &Mode::Capture, "libvirt could not remove the domain")?;
                        removed.push(format!("domain {}", n.machine));
                    }
                    // A volume created before its domain was defined.
                    let vol = format!("{}.img", n.machine);
                    if self.runner.run(&self.virsh(&["vol-info", "--pool", "default", &vol]), &Mode::Capture)?.ok() {
                        check(self.runner, &self.virsh(&["vol-delete", "--pool", "default", &vol]), &Mode::Capture, "libvirt could not delete the volume")?;
                        removed.push(format!("volume {vol}"));
                    }
                }
                _ => {}
            }
        }
        if self.kind() == "libvirt" {
            removed.extend(self.remove_networks()?);
        }
        Ok(removed)
    }
}
