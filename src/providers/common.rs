//! What every provider shares: the interface (`Machines`), what each is
//! handed (`Env`), provisioning through `exec`, ssh to VMs, blackhole routes.

use super::kind::{Capabilities, Provider};
use crate::error::{Error, Result};
use crate::plan::{Node, Plan, Role};
use crate::runner::{check, check_with, parallel, Cmd, Mode, Output, Runner};
use crate::vagrant::Vagrant;
use crate::workdir::Workdir;

const SSH_MISSING: &str = "install an SSH client: `apt-get install openssh-client`";

/// The name of the known state's snapshot on every machine.
pub const SNAPSHOT: &str = "clusterlab-known";

/// What every provider is handed: the cluster and the ways to reach it.
pub struct Env<'a> {
    pub runner: &'a dyn Runner,
    pub plan: &'a Plan,
    pub workdir: &'a Workdir,
    pub vagrant: &'a Vagrant<'a>,
}

pub trait Machines: Sync {
    fn env(&self) -> &Env<'_>;
    /// "docker", "libvirt", "virtualbox": for messages only.
    fn name(&self) -> &'static str {
        self.env().plan.provider.as_str()
    }
    /// What this provider can do.
    fn capabilities(&self) -> Capabilities {
        self.env().plan.provider.capabilities()
    }
    /// Whether `reset` can restore whole-machine snapshots here.
    fn has_snapshots(&self) -> bool {
        self.capabilities().snapshots
    }
    /// A command run as root on a node.
    fn exec_cmd(&self, node: &Node, args: &[&str]) -> Result<Cmd>;
    /// The same, for a command that reads stdin (a tar stream to unpack).
    fn exec_with_input_cmd(&self, node: &Node, args: &[&str]) -> Result<Cmd> {
        self.exec_cmd(node, args)
    }
    /// Runs a node's provisioning (its files and script), on a machine that
    /// is up: what the Vagrantfile's provisioners do, through `exec`, without
    /// a `vagrant provision` (4.2 s for a no-op one on docker, on top of the
    /// script; these calls take 0.2 s). `vagrant provision` still works.
    fn provision(&self, node: &Node) -> Result<()> {
        let env = self.env();
        self.run_script(node, &env.workdir.path(format!("scripts/{}.sh", node.name)), &format!("provision-{}.log", node.name))
    }
    /// Runs a provisioning script of the working directory (`scripts/` or
    /// `upgrade/`) on a node, with the files it reads, its output streamed to `log`.
    fn run_script(&self, node: &Node, script: &std::path::Path, log: &str) -> Result<()> {
        let env = self.env();
        let hint = format!("is node {} running? `clusterlab status SPEC`", node.name);
        let send = |src: std::path::PathBuf, remote: &str| -> Result<()> {
            check(env.runner, &self.exec_with_input_cmd(node, &["sh", "-c", remote])?, &Mode::FromFile(src), &hint).map(drop)
        };
        // The passwords readable by root only, from the first byte on.
        send(env.workdir.path("secrets/passwords"), "umask 077 && cat > /tmp/clusterlab-passwords")?;
        if node.role == Role::Leader && !env.plan.sql.is_empty() {
            let tar = env.workdir.path("sql.tar");
            let pack = Cmd::new("tar", ["-cf".to_string(), tar.display().to_string(), "-C".into(), env.workdir.path("sql").display().to_string(), ".".into()]);
            check(env.runner, &pack, &Mode::Capture, "")?;
            send(tar, "rm -rf /tmp/clusterlab-sql && mkdir -p /tmp/clusterlab-sql && tar -C /tmp/clusterlab-sql -xf -")?;
        }
        send(script.to_path_buf(), "cat > /tmp/clusterlab-provision.sh")?;
        let log = env.vagrant.logs.join(log);
        let mode = Mode::Stream { log: Some(log.clone()), quiet: env.vagrant.quiet };
        check_with(env.runner, &self.exec_cmd(node, &["bash", "/tmp/clusterlab-provision.sh"])?, &mode, |out| crate::vagrant::hint_for(&out.stdout, &log)).map(drop)
    }
    /// Removes the machines (`vagrant destroy` unless the provider has a faster way).
    fn destroy_machines(&self) -> Result<()> {
        close_ssh(self.env());
        self.env().vagrant.destroy()
    }
    /// Saves every machine's state as the known state.
    fn save_snapshots(&self) -> Result<()>;
    fn restore_snapshots(&self) -> Result<()>;
    /// After `restore_snapshots`, sets the guests' clocks to the host's
    /// (a loaded snapshot keeps the time it was taken at).
    fn sync_clocks(&self) -> Result<()> {
        Ok(())
    }
    /// Whether `settle_restore` needs a row written after the restore to
    /// have reached every follower first.
    fn restore_needs_settling(&self) -> bool {
        self.capabilities().settle_after_restore
    }
    /// Puts back what a restored snapshot holds only for the restore's sake,
    /// once a row written after it has reached every follower.
    fn settle_restore(&self) -> Result<()> {
        Ok(())
    }
    /// The provider's word for a machine's state ("running", "shut off", "missing"...).
    fn machine_state(&self, node: &Node) -> Result<String>;
    /// Freezes a whole machine (processes, network and clock stop) or thaws
    /// it; refused where the provider cannot (`Capabilities::freeze`).
    fn freeze(&self, _node: &Node, _frozen: bool) -> Result<()> {
        let can: Vec<&str> = Provider::ALL.iter().filter(|p| p.capabilities().freeze).map(|p| p.as_str()).collect();
        Err(Error::usage(format!("freezing a {} machine is not supported", self.name()), format!("use the {} provider for this fault", can.join(" or "))))
    }
    /// Runs a network command (`ip`, `tc`) in the node's network namespace,
    /// as root: inside the machine where it may change its own network.
    fn net_run(&self, node: &Node, args: &[&str]) -> Result<Output> {
        self.env().runner.run(&self.exec_cmd(node, args)?, &Mode::Capture)
    }
    /// Cuts a node off from the given addresses (both ways need a call on
    /// each side), or restores the routes. The host keeps reaching the node.
    fn partition(&self, node: &Node, peers: &[&str], cut: bool) -> Result<()> {
        blackholes(node, peers, cut, |args| self.net_run(node, args))
    }
    /// Delays or drops the node's traffic on the interface that carries its
    /// address (`tc netem`: https://man7.org/linux/man-pages/man8/tc-netem.8.html),
    /// or (None) takes that away.
    fn netem(&self, node: &Node, rule: Option<&[&str]>) -> Result<()> {
        super::netem::apply(node, rule, |args| self.net_run(node, args))
    }
    /// Removes machines, volumes, snapshots and networks that vagrant no
    /// longer knows about (an interrupted `up` can leave them).
    fn remove_leftovers(&self) -> Result<Vec<String>>;

    fn exec(&self, node: &Node, args: &[&str]) -> Result<Output> {
        let cmd = self.exec_cmd(node, args)?;
        check(self.env().runner, &cmd, &Mode::Capture, &format!("is node {} running? `clusterlab status SPEC`", node.name))
    }

    /// Machine name -> state, all nodes at once.
    fn machine_states(&self) -> Vec<(String, String)> {
        let plan = self.env().plan;
        let states = parallel(&plan.nodes, |n| Ok(self.machine_state(n).unwrap_or_else(|e| format!("unknown ({e})")))).unwrap_or_default();
        plan.nodes.iter().map(|n| n.name.clone()).zip(states).collect()
    }
}

/// Adds (or removes) a blackhole route on `node` to each peer, running
/// `ip route` the way `run` says. Healing a route that is already gone is fine.
pub(super) fn blackholes(node: &Node, peers: &[&str], cut: bool, run: impl Fn(&[&str]) -> Result<Output>) -> Result<()> {
    let route = if cut { "replace" } else { "del" };
    for peer in peers {
        let out = run(&["ip", "route", route, "blackhole", &format!("{peer}/32")])?;
        if cut && !out.ok() {
            return Err(Error::usage(format!("could not cut {} off from {peer}: {}", node.name, out.stderr.trim()), "`clusterlab status SPEC`; on docker clusterlab must run as root (nsenter)"));
        }
    }
    Ok(())
}

/// "missing" when the provider's inspect command fails, else its trimmed output.
pub(super) fn state_of(out: Output) -> String {
    if out.ok() {
        out.stdout.trim().to_string()
    } else {
        "missing".into()
    }
}

/// VMs: plain ssh with the config vagrant printed once (one ssh is ~2.6 s
/// under emulation, a vagrant ssh ~5 s), multiplexed: the first command to a
/// node opens a master connection that later ones reuse for a round trip
/// instead of a handshake, and that closes itself after 5 idle minutes.
pub(super) fn ssh_cmd(env: &Env, node: &Node, args: &[&str]) -> Result<Cmd> {
    let config = env.workdir.path("ssh-config");
    if !config.is_file() && env.runner.is_real() {
        let text = env.vagrant.ssh_config()?;
        std::fs::write(&config, text).map_err(|e| Error::io(&config, e))?;
    }
    // ssh hands the remote shell one string: quote each word so arguments with spaces survive.
    let remote = shell_words::join(std::iter::once("sudo").chain(args.iter().copied()));
    let mut a = ssh_options(env);
    a.extend([node.name.clone(), remote]);
    Ok(Cmd::new("ssh", a).if_missing(SSH_MISSING))
}

pub(super) fn ssh_options(env: &Env) -> Vec<String> {
    let mut a = vec![format!("-F{}", env.workdir.path("ssh-config").display())];
    if let Some(path) = control_path(env) {
        a.extend(["-oControlMaster=auto".to_string(), format!("-oControlPath={path}"), "-oControlPersist=300".to_string()]);
    }
    a
}

/// `WORKDIR/ssh-%n` (%n: the node), unless that is too long for a Unix
/// socket (about 104 bytes, and ssh adds a temporary suffix while creating
/// it): then every command pays its own handshake.
pub(super) fn control_path(env: &Env) -> Option<String> {
    let path = env.workdir.path("ssh-%n").display().to_string();
    (path.len() + 20 < 104).then_some(path)
}

/// Closes the nodes' master connections: before a snapshot is loaded (the
/// guests forget them, and a client would wait on a dead one) and at destroy.
pub(super) fn close_ssh(env: &Env) {
    let Some(path) = control_path(env) else { return };
    for n in &env.plan.nodes {
        if std::path::Path::new(&path.replace("%n", &n.name)).exists() {
            let mut a = ssh_options(env);
            a.extend(["-Oexit".to_string(), n.name.clone()]);
            let _ = env.runner.run(&Cmd::new("ssh", a).if_missing(SSH_MISSING), &Mode::Capture);
        }
    }
}
