//! vagrant-libvirt: domains, reached with ssh; snapshots and the rest with virsh.

use super::{close_ssh, ssh_cmd, state_of, Env, Provider, SNAPSHOT};
use crate::error::Result;
use crate::plan::Node;
use crate::runner::{check, parallel, Cmd, Mode};

pub struct Libvirt<'a>(pub Env<'a>);

impl Libvirt<'_> {
    /// A loaded snapshot leaves the guest clock where it was when the
    /// snapshot was taken (minutes or days behind); the guest agent sets it to
    /// the host's. A box without the agent keeps the old time (logged).
    fn set_clock(&self, n: &Node) {
        match self.0.runner.run(&self.virsh(&["domtime", &n.machine, "--now"]), &Mode::Capture) {
            Ok(out) if out.ok() => {}
            Ok(out) => tracing::info!(node = %n.name, "guest clock not set (no guest agent in the box?): {}", out.stderr.trim()),
            Err(e) => tracing::info!(node = %n.name, "guest clock not set: {e}"),
        }
    }

    fn virsh(&self, args: &[&str]) -> Cmd {
        // vagrant-libvirt's default connection; virsh alone would pick
        // qemu:///session for a non-root user.
        let uri = std::env::var("LIBVIRT_DEFAULT_URI").unwrap_or_else(|_| "qemu:///system".into());
        Cmd::new("virsh", ["-c", uri.as_str()].into_iter().chain(args.iter().copied()))
    }

    /// vagrant-libvirt names a private network after the project directory and
    /// removes it only when it destroys the last machine on it; an interrupted
    /// `up` can leave it. Ours is the one whose host address is our network's
    /// first address (clusters never share a network).
    fn remove_networks(&self) -> Result<Vec<String>> {
        let net: ipnet::Ipv4Net = self.0.plan.network.parse().expect("the planner checked the network");
        let host = net.hosts().next().expect("a /28 or larger has hosts");
        let listed = self.0.runner.run(&self.virsh(&["net-list", "--all", "--name"]), &Mode::Capture)?;
        let mut removed = Vec::new();
        for name in listed.stdout.lines().map(str::trim).filter(|n| !n.is_empty()) {
            let xml = self.0.runner.run(&self.virsh(&["net-dumpxml", name]), &Mode::Capture)?;
            if xml.ok() && xml.stdout.contains(&format!("address='{host}'")) {
                let _ = self.0.runner.run(&self.virsh(&["net-destroy", name]), &Mode::Capture);
                check(self.0.runner, &self.virsh(&["net-undefine", name]), &Mode::Capture, "libvirt could not remove the network")?;
                removed.push(format!("network {name}"));
            }
        }
        Ok(removed)
    }
}

impl Provider for Libvirt<'_> {
    fn env(&self) -> &Env<'_> {
        &self.0
    }

    fn name(&self) -> &'static str {
        "libvirt"
    }

    fn has_snapshots(&self) -> bool {
        true
    }

    fn exec_cmd(&self, node: &Node, args: &[&str]) -> Result<Cmd> {
        ssh_cmd(&self.0, node, args)
    }

    fn save_snapshots(&self) -> Result<()> {
        parallel(&self.0.plan.nodes, |n| {
            // A previous baseline of the same name would make creation fail.
            let _ = self.0.runner.run(&self.virsh(&["snapshot-delete", &n.machine, SNAPSHOT]), &Mode::Capture);
            let cmd = self.virsh(&["snapshot-create-as", &n.machine, SNAPSHOT]);
            check(self.0.runner, &cmd, &Mode::Capture, "libvirt could not snapshot the domain")
        })?;
        Ok(())
    }

    /// Loads the internal snapshot inside the running qemu (HMP `loadvm`):
    /// the same process and tap device, so the guest answers at once
    /// (measured 0.6 s for three domains, against 2.3-3.5 s for
    /// `snapshot-revert --running`, which starts a new qemu, plus about 3 s
    /// before the new tap passes traffic). libvirt named the qcow2 internal
    /// snapshot after ours when it took it. Where that fails (a stopped
    /// domain, an external snapshot), libvirt's own revert.
    fn restore_snapshots(&self) -> Result<()> {
        close_ssh(&self.0);
        parallel(&self.0.plan.nodes, |n| {
            let running = self.machine_state(n).map(|s| s == "running").unwrap_or(false);
            if running {
                let loadvm = format!("loadvm {SNAPSHOT}");
                let out = self.0.runner.run(&self.virsh(&["qemu-monitor-command", &n.machine, "--hmp", &loadvm]), &Mode::Capture)?;
                // HMP reports errors as text with exit 0; success prints nothing.
                if out.ok() && out.stdout.trim().is_empty() {
                    self.set_clock(n);
                    return Ok(out);
                }
                tracing::debug!(node = %n.name, out = %out.stdout.trim(), "loadvm did not work; reverting through libvirt");
            }
            let cmd = self.virsh(&["snapshot-revert", &n.machine, SNAPSHOT, "--running"]);
            let out = check(self.0.runner, &cmd, &Mode::Capture, "is there a known state? `clusterlab status SPEC`; `clusterlab up SPEC` takes one")?;
            self.set_clock(n);
            Ok(out)
        })?;
        Ok(())
    }

    fn machine_state(&self, node: &Node) -> Result<String> {
        Ok(state_of(self.0.runner.run(&self.virsh(&["domstate", &node.machine]), &Mode::Capture)?))
    }

    fn freeze(&self, node: &Node, frozen: bool) -> Result<()> {
        let verb = if frozen { "suspend" } else { "resume" };
        check(self.0.runner, &self.virsh(&[verb, &node.machine]), &Mode::Capture, &format!("libvirt could not {verb} the domain")).map(drop)
    }

    fn remove_leftovers(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for n in &self.0.plan.nodes {
            if self.0.runner.run(&self.virsh(&["dominfo", &n.machine]), &Mode::Capture)?.ok() {
                let _ = self.0.runner.run(&self.virsh(&["destroy", &n.machine]), &Mode::Capture);
                let undefine = self.virsh(&["undefine", &n.machine, "--remove-all-storage", "--snapshots-metadata", "--managed-save"]);
                check(self.0.runner, &undefine, &Mode::Capture, "libvirt could not remove the domain")?;
                removed.push(format!("domain {}", n.machine));
            }
            // A volume created before its domain was defined.
            let vol = format!("{}.img", n.machine);
            if self.0.runner.run(&self.virsh(&["vol-info", "--pool", "default", &vol]), &Mode::Capture)?.ok() {
                check(self.0.runner, &self.virsh(&["vol-delete", "--pool", "default", &vol]), &Mode::Capture, "libvirt could not delete the volume")?;
                removed.push(format!("volume {vol}"));
            }
        }
        removed.extend(self.remove_networks()?);
        Ok(removed)
    }
}
