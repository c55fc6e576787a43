//! vagrant-libvirt: domains, reached with ssh; snapshots and the rest with virsh.

pub(super) mod accel;

use super::common::{close_ssh, ssh_cmd, state_of, Env, Machines, SNAPSHOT};
use crate::error::{Error, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::time::{Duration, Instant};
use crate::plan::Node;
use crate::runner::{check, parallel, Cmd, Mode};

pub struct Libvirt<'a>(pub Env<'a>);

/// Where clusterlab-settle listens in the guests (`templates/box/settle.pl`).
const SETTLE_PORT: u16 = 7432;

fn now_arg() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

impl Libvirt<'_> {
    /// A loaded snapshot leaves the guest clock where it was when the
    /// snapshot was taken (minutes or days behind): set to the host's by
    /// clusterlab-settle, else with `date` through the guest agent. Not
    /// `virsh domtime`: the agent's guest-set-time also writes the RTC with
    /// `hwclock`, which waits for a second boundary (about a second under
    /// emulation).
    fn set_clock(&self, n: &Node) -> Result<()> {
        if self.settle(n, || format!("clock {}", now_arg()))? {
            return Ok(());
        }
        self.agent_run(n, "/bin/date", || vec!["-u".into(), "-s".into(), format!("@{}", now_arg())])
    }

    /// One request to the node's clusterlab-settle, the helper clusterlab's
    /// boxes run (`templates/box/settle.pl` says why it is faster than the
    /// agent): `Ok(false)` when nothing listens there (another box, or a
    /// known state saved before the helper existed), so the caller uses the
    /// guest agent. `request` is called at each attempt (a clock to send is
    /// read late).
    fn settle(&self, n: &Node, request: impl Fn() -> String) -> Result<bool> {
        use std::io::{BufRead, BufReader, Write};
        if !self.0.runner.is_real() {
            return Ok(false);
        }
        let addr = std::net::SocketAddr::new(n.address.parse().expect("the planner checked the address"), SETTLE_PORT);
        // Right after `loadvm` a SYN can go unanswered: short attempts, for 5 s.
        let deadline = Instant::now() + Duration::from_secs(5);
        let stream = loop {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(false),
                Err(e) if Instant::now() >= deadline => {
                    tracing::debug!(node = %n.name, error = %e, "clusterlab-settle did not answer; using the guest agent");
                    return Ok(false);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let password = self.0.workdir.lab_password()?;
        let failed = |e: std::io::Error| Error::Verify(format!("{}: clusterlab-settle on {addr}: {e}", n.name));
        stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(failed)?;
        let request = request();
        (&stream).write_all(format!("{password} {request}\n").as_bytes()).map_err(failed)?;
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line).map_err(failed)?;
        match line.trim_end() {
            "ok" => {
                // The VM e2e counts these: the agent's path must not hide a broken helper.
                tracing::debug!(node = %n.name, request = request.split(' ').next().unwrap_or(""), "done by clusterlab-settle");
                Ok(true)
            }
            answer => Err(Error::Verify(format!(
                "{}: clusterlab-settle answered {answer:?} (it takes the lab password of .clusterlab/NAME/secrets/passwords \
                 that provisioning put in the node's /etc/clusterlab: `clusterlab up SPEC` provisions again)",
                n.name
            ))),
        }
    }

    /// Runs a command in the guest through the QEMU guest agent, as root:
    /// right after `loadvm` the nodes' ssh masters are gone, and a fresh ssh
    /// handshake costs 1.5 s under emulation, where an agent command is a
    /// virsh round trip. The agent's port reconnects after a `loadvm`
    /// (libvirt says "not responding" for 0.6-1.5 s here): retried for 10 s,
    /// so what runs must be safe to run twice.
    /// `args` is called at each attempt (a clock to set is read late).
    fn agent_run(&self, n: &Node, path: &str, args: impl Fn() -> Vec<String>) -> Result<()> {
        let hint = format!("is the QEMU guest agent running on {}? (the boxes clusterlab builds carry it)", n.name);
        let what = format!("{}: {path}", n.name);
        let deadline = Instant::now() + Duration::from_secs(10);
        let out = loop {
            let exec = serde_json::json!({"execute": "guest-exec", "arguments": {"path": path, "arg": args(), "capture-output": true}});
            let out = self.0.runner.run(&self.virsh(&["qemu-agent-command", &n.machine, &exec.to_string()]), &Mode::Capture)?;
            if out.ok() {
                break out;
            }
            if Instant::now() >= deadline || !out.stderr.contains("not responding") {
                return Err(Error::Verify(format!("{what}: the guest agent did not run it: {} ({hint})", out.stderr.trim())));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if !self.0.runner.is_real() {
            return Ok(());
        }
        let pid = serde_json::from_str::<serde_json::Value>(&out.stdout).ok().and_then(|v| v["return"]["pid"].as_i64());
        let Some(pid) = pid else {
            return Err(Error::Verify(format!("{what}: the guest agent did not start it: {}", out.stdout.trim())));
        };
        let status = serde_json::json!({"execute": "guest-exec-status", "arguments": {"pid": pid}}).to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = check(self.0.runner, &self.virsh(&["qemu-agent-command", &n.machine, &status]), &Mode::Capture, &hint)?;
            let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
            let r = &v["return"];
            if r["exited"].as_bool() == Some(true) {
                if r["exitcode"].as_i64() == Some(0) {
                    return Ok(());
                }
                let err = r["err-data"].as_str().and_then(|b| STANDARD.decode(b).ok()).map(|b| String::from_utf8_lossy(&b).trim().to_string());
                return Err(Error::Verify(format!("{what} failed: {}", err.unwrap_or_default())));
            }
            if Instant::now() >= deadline {
                return Err(Error::Verify(format!("{what} did not finish within 30 s")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn take_snapshots(&self) -> Result<()> {
        parallel(&self.0.plan.nodes, |n| {
            // A previous baseline of the same name would make creation fail.
            let _ = self.0.runner.run(&self.virsh(&["snapshot-delete", &n.machine, SNAPSHOT]), &Mode::Capture);
            let cmd = self.virsh(&["snapshot-create-as", &n.machine, SNAPSHOT]);
            check(self.0.runner, &cmd, &Mode::Capture, "libvirt could not snapshot the domain")
        })?;
        Ok(())
    }

    fn virsh(&self, args: &[&str]) -> Cmd {
        // vagrant-libvirt's default connection; virsh alone would pick
        // qemu:///session for a non-root user.
        let uri = std::env::var("LIBVIRT_DEFAULT_URI").unwrap_or_else(|_| "qemu:///system".into());
        Cmd::new("virsh", ["-c", uri.as_str()].into_iter().chain(args.iter().copied())).if_missing("install libvirt's client: `apt-get install libvirt-clients`")
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

impl Machines for Libvirt<'_> {
    fn env(&self) -> &Env<'_> {
        &self.0
    }

    fn exec_cmd(&self, node: &Node, args: &[&str]) -> Result<Cmd> {
        ssh_cmd(&self.0, node, args)
    }

    /// Taken with the replication timeouts off (`clusterlab-pg timeouts`):
    /// loading it jumps the guest clocks forward by its age, which would end
    /// every replication connection; `settle_restore` turns them on again.
    fn save_snapshots(&self) -> Result<()> {
        parallel(&self.0.plan.nodes, |n| self.exec(n, &["clusterlab-pg", "timeouts", "off"]))?;
        let saved = self.take_snapshots();
        let on = parallel(&self.0.plan.nodes, |n| self.exec(n, &["clusterlab-pg", "timeouts", "on"]));
        saved.and(on).map(drop)
    }

    fn sync_clocks(&self) -> Result<()> {
        parallel(&self.0.plan.nodes, |n| self.set_clock(n)).map(drop)
    }

    fn settle_restore(&self) -> Result<()> {
        parallel(&self.0.plan.nodes, |n| {
            if self.settle(n, || "timeouts-on".into())? {
                return Ok(());
            }
            self.agent_run(n, "/usr/local/sbin/clusterlab-pg", || vec!["timeouts".into(), "on".into()])
        })
        .map(drop)
    }

    /// Loads the internal snapshot inside the running qemu (HMP `loadvm`):
    /// the same process and tap device, so the guest answers at once
    /// (measured 0.6 s for three domains, against 2.3-3.5 s for
    /// `snapshot-revert --running`, which starts a new qemu, plus about 3 s
    /// before the new tap passes traffic). libvirt named the qcow2 internal
    /// snapshot after ours when it took it. Where that fails (a stopped
    /// domain has no monitor; an external snapshot), libvirt's own revert.
    /// Tried without asking the domain's state first: that is one virsh
    /// call less on the hot path.
    fn restore_snapshots(&self) -> Result<()> {
        close_ssh(&self.0);
        parallel(&self.0.plan.nodes, |n| {
            let loadvm = format!("loadvm {SNAPSHOT}");
            let out = self.0.runner.run(&self.virsh(&["qemu-monitor-command", &n.machine, "--hmp", &loadvm]), &Mode::Capture)?;
            // HMP reports errors as text with exit 0; success prints nothing.
            if out.ok() && out.stdout.trim().is_empty() {
                return Ok(out);
            }
            tracing::debug!(node = %n.name, out = %format!("{}{}", out.stdout.trim(), out.stderr.trim()), "loadvm did not work; reverting through libvirt");
            let cmd = self.virsh(&["snapshot-revert", &n.machine, SNAPSHOT, "--running"]);
            check(self.0.runner, &cmd, &Mode::Capture, "is there a known state? `clusterlab status SPEC`; `clusterlab up SPEC` takes one")
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

    /// Straight through virsh, nodes in parallel: `vagrant destroy` took
    /// 7.7-8.7 s for three domains; vagrant's own records go with the
    /// working directory.
    fn destroy_machines(&self) -> Result<()> {
        close_ssh(&self.0);
        self.remove_leftovers().map(drop)
    }

    fn remove_leftovers(&self) -> Result<Vec<String>> {
        let per_node = parallel(&self.0.plan.nodes, |n| {
            let mut removed = Vec::new();
            if self.0.runner.run(&self.virsh(&["dominfo", &n.machine]), &Mode::Capture)?.ok() {
                let _ = self.0.runner.run(&self.virsh(&["destroy", &n.machine]), &Mode::Capture);
                let undefine = self.virsh(&["undefine", &n.machine, "--remove-all-storage", "--snapshots-metadata", "--managed-save"]);
                check(self.0.runner, &undefine, &Mode::Capture, "libvirt could not remove the domain")?;
                removed.push(format!("domain {}", n.machine));
            }
            // Volumes created before their domain was defined: the root disk,
            // and the disks of `resources.disk` and `resources.wal_disk`
            // (vagrant-libvirt names them after their devices).
            for vol in [format!("{}.img", n.machine), format!("{}-vdb.qcow2", n.machine), format!("{}-vdc.qcow2", n.machine)] {
                if self.0.runner.run(&self.virsh(&["vol-info", "--pool", "default", &vol]), &Mode::Capture)?.ok() {
                    check(self.0.runner, &self.virsh(&["vol-delete", "--pool", "default", &vol]), &Mode::Capture, "libvirt could not delete the volume")?;
                    removed.push(format!("volume {vol}"));
                }
            }
            Ok(removed)
        })?;
        let mut removed: Vec<String> = per_node.into_iter().flatten().collect();
        removed.extend(self.remove_networks()?);
        Ok(removed)
    }
}
