//! The drills a DBA comes to the lab for: promote a follower (failover),
//! bring a former leader back as a follower (rejoin), faults (kill, stop,
//! freeze, cut off), base backups and point-in-time restores (`backup.rs`),
//! and acknowledged writes across a failure (`writes.rs`). Each is an
//! ordered list of steps like `up`, recording its phase;
//! what differs per major comes from the facts, through the node control
//! script `clusterlab-pg` that is rendered per major.
//!
//! A drill changes who leads and who follows whom. That live topology is kept
//! in state.json: `verify` checks it instead of the spec's, `status` shows it,
//! and `reset` brings back the spec's topology (and lifts every fault).

mod backup;
mod writes;

pub use backup::{BackupArgs, RestoreArgs};
pub use writes::{worker as writes_worker, WritesArgs};

use crate::cluster::{node_ctl, Cluster, Ctx};
use crate::error::{Error, Result};
use crate::plan::{self, Plan};
use crate::spec::{Followers, FollowerSpec, NodeSpec};
use crate::state::{Lock, State};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Who leads, whom each follower streams from, and which nodes are outside
/// the topology (a fenced or kept former leader, until `rejoin`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Live {
    pub leader: String,
    pub upstreams: BTreeMap<String, String>,
    #[serde(default)]
    pub detached: Vec<String>,
}

impl Live {
    pub fn of(plan: &Plan) -> Live {
        Live {
            leader: plan.leader().name.clone(),
            upstreams: plan.nodes.iter().filter_map(|n| Some((n.name.clone(), n.upstream.clone()?))).collect(),
            detached: Vec::new(),
        }
    }
}

/// A drill, as the command line and a matrix step's `drill:` both write it
/// (the step without the spec): one grammar, parsed by clap.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Drill {
    /// Failover: promote a follower; the old leader's followers follow it, the old leader is fenced.
    Promote(PromoteArgs),
    /// Planned switchover: the leader stops cleanly, NODE catches up and leads, the old leader follows it.
    Switchover(NodeArg),
    /// Bring a former leader back as a follower of the current leader (pg_rewind, or a fresh base backup).
    Rejoin(NodeArg),
    /// Break a node: kill -9 its postmaster, stop it, freeze its machine, cut it off, or heal it.
    Fault(FaultArgs),
    /// Take a base backup (tar, WAL included) and copy it to the host.
    Backup(BackupArgs),
    /// Point-in-time recovery of a node from a backup and the WAL archive.
    Restore(RestoreArgs),
    /// A writer that commits numbered rows (`start`) and the proof that every acknowledged one is there (`check`).
    Writes(WritesArgs),
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct NodeArg {
    pub node: String,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct PromoteArgs {
    pub node: String,
    /// Leave the old leader running, outside the topology (a split brain to study).
    #[arg(long)]
    pub keep_old_leader: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct FaultArgs {
    pub node: String,
    #[arg(value_enum)]
    pub fault: Fault,
}

/// The step grammar: a drill without the program name or the spec.
#[derive(Debug, clap::Parser)]
#[command(no_binary_name = true, disable_help_subcommand = true)]
struct StepLine {
    #[command(subcommand)]
    drill: Drill,
}

impl Drill {
    pub fn parse(text: &str) -> std::result::Result<Drill, String> {
        let words = shell_words::split(text).map_err(|e| format!("`{text}`: {e}"))?;
        match <StepLine as clap::Parser>::try_parse_from(&words) {
            Ok(line) => Ok(line.drill),
            Err(e) => {
                // clap's first line says what is wrong; keep its list of possible values too.
                let full = e.to_string();
                let mut why = full.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
                if let Some(values) = full.lines().find_map(|l| l.trim().strip_prefix("[possible values: ")) {
                    why += &format!(" (one of: {})", values.trim_end_matches(']'));
                }
                Err(format!("`{text}` is not a drill: {why}"))
            }
        }
    }

    /// Runs the drill; what it found, for a matrix step's output.
    pub fn run(&self, ctx: &Ctx, c: &Cluster) -> Result<String> {
        match self {
            Drill::Promote(a) => c.promote(ctx, &a.node, a.keep_old_leader).map(|_| String::new()),
            Drill::Switchover(a) => c.switchover(ctx, &a.node).map(|_| String::new()),
            Drill::Rejoin(a) => c.rejoin(ctx, &a.node).map(|_| String::new()),
            Drill::Fault(a) => c.fault(ctx, &a.node, a.fault).map(|_| String::new()),
            Drill::Backup(a) => c.backup(ctx, a).map(|m| m.summary()),
            Drill::Restore(a) => c.restore(ctx, a),
            Drill::Writes(a) => c.writes(ctx, a),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handover {
    /// The leader is gone or must go: fence it.
    Failover,
    /// `promote --keep-old-leader`: the old leader runs on, outside the topology.
    Split,
    /// Planned: the old leader stops cleanly and follows the new one.
    Switchover,
}

/// What `fault` can do to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// kill -9 the postmaster: a crash.
    Kill,
    /// A clean (fast) shutdown.
    Stop,
    /// Freeze the whole machine: `docker pause`, `virsh suspend`.
    Pause,
    /// Cut the node off from the other nodes, both ways (the host still reaches it).
    Partition,
    /// Undo pause, partition and stop (a killed server is started again too).
    Heal,
}

impl Cluster {
    /// The topology replication should have now: the spec's, or the one the
    /// last drill left.
    pub fn current_plan(&self) -> Result<Plan> {
        match State::load(&self.workdir).and_then(|s| s.live) {
            Some(live) => self.live_plan(&live),
            None => Ok(self.plan.clone()),
        }
    }

    /// The spec's cluster with another topology: same machines and
    /// addresses, planned again so slots, conninfo and waves follow it.
    pub(crate) fn live_plan(&self, live: &Live) -> Result<Plan> {
        let mut spec = self.spec.clone();
        let address = |n: &str| self.plan.node(n).map(|x| x.address.clone());
        let given: Vec<FollowerSpec> = match &self.spec.topology.followers {
            Followers::List(l) => l.clone(),
            Followers::Count(_) => Vec::new(),
        };
        spec.topology.leader = NodeSpec { name: Some(live.leader.clone()), address: address(&live.leader) };
        let followers = self
            .plan
            .nodes
            .iter()
            .filter(|n| n.name != live.leader && !live.detached.contains(&n.name))
            .map(|n| {
                let from_spec = given.iter().find(|f| f.name == n.name);
                FollowerSpec {
                    name: n.name.clone(),
                    address: Some(n.address.clone()),
                    upstream: live.upstreams.get(&n.name).cloned(),
                    apply_delay: from_spec.and_then(|f| f.apply_delay.clone()),
                    sync: from_spec.and_then(|f| f.sync),
                }
            })
            .collect();
        spec.topology.followers = Followers::List(followers);
        match plan::build(&spec, &self.src) {
            // A leader with no follower that can be synchronous (after a restore
            // fenced the others) runs asynchronously until one rejoins, and
            // `sync_names` writes it so: otherwise every commit would hang.
            Err(_) if spec.replication.mode == crate::spec::Mode::Sync && spec.replication.synchronous_standby_names.is_none() => {
                spec.replication.mode = crate::spec::Mode::Async;
                Ok(plan::build(&spec, &self.src)?)
            }
            r => Ok(r?),
        }
    }

    /// Writes the live plan's synchronous_standby_names on its leader: the
    /// spec's list names the spec's topology, and after a failover it would
    /// make the wrong standby (or none that exists) synchronous.
    fn sync_names(&self, p: &dyn crate::providers::Provider, live_plan: &Plan) -> Result<()> {
        if self.plan.synchronous_standby_names.is_none() {
            return Ok(());
        }
        let leader = self.plan.node(&live_plan.leader().name).expect("the live leader is a node of the spec");
        let names = live_plan.synchronous_standby_names.clone().unwrap_or_default();
        p.exec(leader, &["clusterlab-pg", "sync-names", &names]).map(drop)
    }

    pub(crate) fn node_or_err(&self, node: &str) -> Result<()> {
        if self.plan.node(node).is_none() {
            let names: Vec<&str> = self.plan.nodes.iter().map(|n| n.name.as_str()).collect();
            return Err(Error::usage(format!("no node `{node}` in cluster {}", self.plan.name), format!("name one of: {}", names.join(", "))));
        }
        Ok(())
    }

    /// What every drill does first: a node of the spec, the cluster's lock,
    /// a cluster that is up, and the topology it has now.
    pub(crate) fn begin(&self, op: &str, verb: &str, node: &str) -> Result<(Lock, State, Live)> {
        self.node_or_err(node)?;
        let lock = Lock::acquire(&self.workdir, &self.plan.name, op)?;
        let st = self.running_state(verb)?;
        let live = st.live.clone().unwrap_or_else(|| Live::of(&self.plan));
        Ok((lock, st, live))
    }

    fn running_state(&self, op: &str) -> Result<State> {
        // Up and ready (a matrix cell keeps no known state), or changed by a drill since.
        let st = State::load(&self.workdir).filter(|s| s.phase == "ready" || s.baseline.is_some() || s.live.is_some());
        st.ok_or_else(|| Error::usage(format!("cluster {} is not up, nothing to {op}", self.plan.name), "`clusterlab up SPEC` first; `clusterlab status SPEC` says where it is"))
    }

    /// Failover: NODE becomes the leader; the followers of the old leader
    /// follow NODE (their slots made on NODE first); the old leader is stopped
    /// and fenced unless `keep_old_leader` (then it runs on, outside the
    /// topology: a split brain to study).
    pub fn promote(&self, ctx: &Ctx, node: &str, keep_old_leader: bool) -> Result<()> {
        self.hand_over(ctx, node, if keep_old_leader { Handover::Split } else { Handover::Failover })
    }

    /// Planned switchover: the leader stops cleanly, NODE replays all of its
    /// WAL, NODE is promoted, and the old leader follows NODE. No committed
    /// row can be lost: at a clean shutdown a walsender exits only once its
    /// standby has flushed everything (9.4.26's walsender.c, WalSndDone).
    pub fn switchover(&self, ctx: &Ctx, node: &str) -> Result<()> {
        self.hand_over(ctx, node, Handover::Switchover)
    }

    fn hand_over(&self, ctx: &Ctx, node: &str, how: Handover) -> Result<()> {
        let start = Instant::now();
        let op = if how == Handover::Switchover { "switchover" } else { "promote" };
        let (_lock, mut st, live) = self.begin(op, op, node)?;
        if live.leader == node {
            return Err(Error::usage(format!("{node} is the leader already"), format!("{op} one of its followers")));
        }
        if live.detached.iter().any(|d| d == node) {
            return Err(Error::usage(format!("{node} is outside the topology since an earlier promote"), format!("`clusterlab rejoin SPEC {node}` first")));
        }
        let old = live.leader.clone();
        if how == Handover::Switchover && live.upstreams.get(node) != Some(&old) {
            return Err(Error::usage(format!("{node} does not stream from the leader {old} (it follows {})", live.upstreams[node]), "switch over to a direct follower of the leader"));
        }
        let mut next = live.clone();
        next.leader = node.to_string();
        next.upstreams.remove(node);
        for up in next.upstreams.values_mut() {
            if *up == old {
                *up = node.to_string();
            }
        }
        if how == Handover::Switchover {
            next.upstreams.insert(old.clone(), node.to_string());
        } else {
            next.detached.push(old.clone());
        }
        let new_plan = self.live_plan(&next)?;
        let vagrant = self.vagrant(ctx);
        let p = self.provider(ctx, &vagrant);
        let machine = |n: &str| self.plan.node(n).expect("nodes of the spec");
        self.recorded(&mut st, |st| {
            st.enter(&self.workdir, op, "promoting", Some(node))?;
            match how {
                Handover::Failover => {
                    ctx.progress(start, &format!("fencing the old leader {old}"));
                    if let Err(e) = node_ctl(p.as_ref(), machine(&old), "fence") {
                        // A frozen or unreachable leader cannot be fenced now; it
                        // stays outside the topology and `rejoin` fences it first.
                        tracing::warn!("could not fence {old} ({e}); it stays outside the topology");
                    }
                }
                Handover::Switchover => {
                    ctx.progress(start, &format!("stopping the leader {old} cleanly"));
                    node_ctl(p.as_ref(), machine(&old), "stop")?;
                    ctx.progress(start, &format!("waiting until {node} has replayed all of {old}'s WAL"));
                    self.wait_replayed(machine(node))?;
                }
                Handover::Split => {}
            }
            // Asynchronous replication: a follower may have received WAL
            // from the dead leader that NODE never got. NODE's timeline will
            // fork where its replay ends; such a follower cannot stream from
            // it and is rewound (or re-cloned) instead, its extra
            // transactions gone, as in a real failover.
            let mut diverged: Vec<String> = Vec::new();
            if how == Handover::Failover {
                let mut check = || -> Result<()> {
                    let fork = self.replayed_lsn(machine(node))?;
                    let mut client = crate::verify::connect(machine(node), &self.workdir.lab_password()?, &self.plan, Duration::from_secs(5))?;
                    let ahead = format!("SELECT {}($1::text::pg_lsn, $2::text::pg_lsn) > 0", self.plan.facts.lsn_diff_fn);
                    for f in live.upstreams.iter().filter(|(f, up)| **up == old && f.as_str() != node).map(|(f, _)| f) {
                        let theirs = self.replayed_lsn(machine(f))?;
                        let is_ahead: bool = client.query_one(ahead.as_str(), &[&theirs, &fork]).map_err(|e| Error::Verify(crate::verify::pg_message(&e)))?.get(0);
                        if is_ahead {
                            ctx.progress(start, &format!("{f} replayed WAL {node} never received ({theirs}; {node} ends at {fork}): it will be rewound"));
                            diverged.push(f.clone());
                        }
                    }
                    Ok(())
                };
                // A node that cannot be asked (frozen, cut off) is repointed as before.
                if let Err(e) = check() {
                    tracing::warn!("could not compare the followers' WAL with {node}'s ({e}); repointing them as they are");
                }
            }
            ctx.progress(start, &format!("promoting {node}"));
            node_ctl(p.as_ref(), machine(node), "promote")?;
            let leader = new_plan.node(node).expect("the new leader is in the live plan");
            for slot in &leader.downstream_slots {
                p.exec(machine(node), &["clusterlab-pg", "slot", slot])?;
            }
            let moved: Vec<_> = new_plan
                .nodes
                .iter()
                .filter(|n| n.upstream.as_deref() == Some(node) && (n.name == old || live.upstreams.get(&n.name) == Some(&old)))
                .collect();
            for f in moved.iter().filter(|f| !diverged.contains(&f.name)) {
                ctx.progress(start, &format!("{} follows {node}", f.name));
            }
            crate::runner::parallel(&moved, |f| {
                if diverged.contains(&f.name) {
                    let how = self.resync(ctx, start, p.as_ref(), f, leader, &new_plan)?;
                    ctx.progress(start, &format!("{} follows {node} (by {how})", f.name));
                    Ok(())
                } else {
                    follow(p.as_ref(), machine(&f.name), f)
                }
            })?;
            self.sync_names(p.as_ref(), &new_plan)?;
            st.live = Some(next.clone());
            st.enter(&self.workdir, op, "ready", None)?;
            Ok(())
        })?;
        self.verify_and_print(ctx, Duration::from_secs(60), false)?;
        let old_is = match how {
            Handover::Failover => "fenced",
            Handover::Split => "still running, outside the topology",
            Handover::Switchover => "its follower",
        };
        ctx.progress(start, &format!("{node} leads; {old} is {old_is}"));
        Ok(())
    }

    /// Makes a node whose history left the leader's (a former leader, or a
    /// follower that got WAL the new leader never did) its follower again:
    /// pg_rewind where the box has this major's (9.5+), else a fresh base
    /// backup. Says which it did.
    fn resync(&self, ctx: &Ctx, start: Instant, p: &dyn crate::providers::Provider, me: &plan::Node, leader: &plan::Node, new_plan: &Plan) -> Result<&'static str> {
        let machine = |n: &str| self.plan.node(n).expect("nodes of the spec");
        let node = me.name.as_str();
        node_ctl(p, machine(node), "stop")?;
        let rewound = self.plan.facts.has_pg_rewind && node_ctl(p, machine(node), "has-rewind").is_ok() && {
            ctx.progress(start, &format!("pg_rewind {node} from {}", leader.name));
            let source = format!("host={} port=5432 user={} dbname=postgres", leader.address, plan::REWIND_USER);
            let r = node_ctl(p, machine(&leader.name), "checkpoint")
                .and_then(|_| node_ctl(p, machine(node), "clean-shutdown"))
                .and_then(|_| p.exec(machine(node), &["clusterlab-pg", "rewind", &source]).map(drop));
            if let Err(e) = &r {
                tracing::warn!("pg_rewind failed ({e}); taking a fresh base backup instead");
            }
            r.is_ok()
        };
        if !rewound {
            ctx.progress(start, &format!("fresh base backup of {node} from {}", leader.name));
            p.exec(machine(node), &["clusterlab-pg", "reclone", &leader.address])?;
        }
        follow(p, machine(node), me)?;
        // Should pg_rewind still leave a node that cannot stream (before the
        // checkpoint above it did, on 15: "no rewind required"), a fresh
        // copy always can.
        if rewound && !crate::verify::verify(new_plan, &self.workdir.lab_password()?, Duration::from_secs(20)).ok {
            tracing::warn!("{node} does not stream after pg_rewind; taking a fresh base backup instead");
            ctx.progress(start, &format!("{node} did not stream after pg_rewind: fresh base backup from {}", leader.name));
            p.exec(machine(node), &["clusterlab-pg", "reclone", &leader.address])?;
            follow(p, machine(node), me)?;
            return Ok("a fresh base backup, after pg_rewind left it unable to stream");
        }
        Ok(if rewound { "pg_rewind" } else { "a fresh base backup" })
    }

    /// Where a standby's replay stands, once it has replayed what it
    /// received (its upstream is gone, so nothing more arrives): up to 10 s.
    fn replayed_lsn(&self, n: &plan::Node) -> Result<String> {
        let f = &self.plan.facts;
        // (After a reconnect the receive position restarts at a segment's
        // start, behind the replay position.)
        let sql = format!("SELECT {r}()::text, {v}() IS NULL OR {d}({v}(), {r}()) <= 0", r = f.replay_lsn_fn, v = f.receive_lsn_fn, d = f.lsn_diff_fn);
        let mut client = crate::verify::connect(n, &self.workdir.lab_password()?, &self.plan, Duration::from_secs(5))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let row = client.query_one(sql.as_str(), &[]).map_err(|e| Error::Verify(format!("{}: {}", n.name, crate::verify::pg_message(&e))))?;
            let (lsn, settled): (Option<String>, bool) = (row.get(0), row.get(1));
            if settled || Instant::now() > deadline {
                return Ok(lsn.unwrap_or_else(|| "0/0".into()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls a standby until it has replayed everything it received (its
    /// upstream is stopped, so nothing more arrives).
    fn wait_replayed(&self, n: &crate::plan::Node) -> Result<()> {
        let f = &self.plan.facts;
        let sql = format!("SELECT {}() IS NOT NULL AND {}() = {}()", f.receive_lsn_fn, f.receive_lsn_fn, f.replay_lsn_fn);
        let mut client = crate::verify::connect(n, &self.workdir.lab_password()?, &self.plan, Duration::from_secs(5))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let done: bool = client.query_one(sql.as_str(), &[]).map_err(|e| Error::Verify(format!("{}: {e}", n.name)))?.get(0);
            if done {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Verify(format!("{} did not replay all of the old leader's WAL within 60 s; the old leader is stopped: `clusterlab status SPEC`", n.name)));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Brings a node outside the topology (a former leader) back as a
    /// follower of the current leader: pg_rewind where the box has this
    /// major's (9.5+), else a fresh base backup. Says which it did.
    pub fn rejoin(&self, ctx: &Ctx, node: &str) -> Result<()> {
        let start = Instant::now();
        let (_lock, mut st, live) = self.begin("rejoin", "rejoin", node)?;
        if !live.detached.iter().any(|d| d == node) {
            let role = if live.leader == node { "the leader".to_string() } else { format!("already following {}", live.upstreams[node]) };
            return Err(Error::usage(format!("{node} is {role}"), "rejoin brings back a node that a promote left outside the topology"));
        }
        let mut next = live.clone();
        next.detached.retain(|d| d != node);
        next.upstreams.insert(node.to_string(), live.leader.clone());
        let new_plan = self.live_plan(&next)?;
        let me = new_plan.node(node).expect("the rejoined node is in the live plan");
        let leader = new_plan.node(&live.leader).expect("the leader is in the live plan");
        let vagrant = self.vagrant(ctx);
        let p = self.provider(ctx, &vagrant);
        let machine = |n: &str| self.plan.node(n).expect("nodes of the spec");
        let how = self.recorded(&mut st, |st| {
            st.enter(&self.workdir, "rejoin", "rejoining", Some(node))?;
            if let Some(slot) = &me.slot {
                p.exec(machine(&leader.name), &["clusterlab-pg", "slot", slot])?;
            }
            let how = self.resync(ctx, start, p.as_ref(), me, leader, &new_plan)?;
            self.sync_names(p.as_ref(), &new_plan)?;
            st.live = Some(next.clone());
            st.enter(&self.workdir, "rejoin", "ready", None)?;
            Ok(how)
        })?;
        self.verify_and_print(ctx, Duration::from_secs(60), false)?;
        ctx.progress(start, &format!("{node} follows {} again (by {how})", leader.name));
        Ok(())
    }

    /// A fault on one node. `reset` undoes every fault.
    pub fn fault(&self, ctx: &Ctx, node: &str, fault: Fault) -> Result<()> {
        let (_lock, mut st, _) = self.begin("fault", "break", node)?;
        let vagrant = self.vagrant(ctx);
        let p = self.provider(ctx, &vagrant);
        let n = self.plan.node(node).expect("checked above");
        let frozen = st.frozen.iter().any(|f| f == node);
        self.recorded(&mut st, |st| {
            match fault {
                Fault::Kill => node_ctl(p.as_ref(), n, "kill")?,
                Fault::Stop => node_ctl(p.as_ref(), n, "stop")?,
                Fault::Pause => {
                    if !frozen {
                        p.freeze(n, true)?;
                        st.frozen.push(node.to_string());
                    }
                }
                Fault::Partition => {
                    if !st.partitioned.iter().any(|x| x == node) {
                        self.cut(p.as_ref(), n, true)?;
                        st.partitioned.push(node.to_string());
                    }
                }
                Fault::Heal => {
                    if frozen {
                        p.freeze(n, false)?;
                        st.frozen.retain(|f| f != node);
                    }
                    if st.partitioned.iter().any(|x| x == node) {
                        self.cut(p.as_ref(), n, false)?;
                        st.partitioned.retain(|x| x != node);
                    }
                    node_ctl(p.as_ref(), n, "start")?;
                }
            }
            st.save(&self.workdir)
        })
    }

    /// Blackhole routes on the node to every other node, and on every other
    /// node to it: cut both ways, whichever side opens a connection.
    fn cut(&self, p: &dyn crate::providers::Provider, n: &crate::plan::Node, cut: bool) -> Result<()> {
        let others: Vec<&crate::plan::Node> = self.plan.nodes.iter().filter(|m| m.name != n.name).collect();
        let addresses: Vec<&str> = others.iter().map(|m| m.address.as_str()).collect();
        p.partition(n, &addresses, cut)?;
        for m in others {
            p.partition(m, &[n.address.as_str()], cut)?;
        }
        Ok(())
    }

    /// Before a reset: undo what `fault pause` and `fault partition` did (a
    /// frozen container cannot even be asked to stop).
    pub(crate) fn thaw_all(&self, p: &dyn crate::providers::Provider, st: &mut State) -> Result<()> {
        for name in std::mem::take(&mut st.frozen) {
            if let Some(n) = self.plan.node(&name) {
                p.freeze(n, false)?;
            }
        }
        for name in std::mem::take(&mut st.partitioned) {
            if let Some(n) = self.plan.node(&name) {
                self.cut(p, n, false)?;
            }
        }
        Ok(())
    }
}

/// Points a follower at its upstream in `plan` (slot and delay as planned).
fn follow(p: &dyn crate::providers::Provider, machine: &crate::plan::Node, planned: &crate::plan::Node) -> Result<()> {
    let conninfo = planned.primary_conninfo.clone().unwrap_or_default();
    let slot = planned.slot.clone().unwrap_or_default();
    let delay = planned.apply_delay.clone().unwrap_or_default();
    p.exec(machine, &["clusterlab-pg", "follow", &conninfo, &slot, &delay]).map(drop)
}

/// For `status`: the live topology as a tree, then how it differs from the
/// spec's (`spec`) and what brings the spec's back.
pub fn tree(live: &Live, spec: &Live) -> String {
    fn branch(live: &Live, node: &str, indent: &str, out: &mut String) {
        let children: Vec<&String> = live.upstreams.iter().filter(|(_, up)| *up == node).map(|(n, _)| n).collect();
        for (i, c) in children.iter().enumerate() {
            let last = i + 1 == children.len();
            *out += &format!("{indent}{} {c}\n", if last { "└─" } else { "├─" });
            branch(live, c, &format!("{indent}{}", if last { "   " } else { "│  " }), out);
        }
    }
    let mut out = format!("live topology:\n  {} (leader)\n", live.leader);
    branch(live, &live.leader, "  ", &mut out);
    for d in &live.detached {
        out += &format!("  {d}: outside the topology (`clusterlab rejoin SPEC {d}`)\n");
    }
    let mut diff = Vec::new();
    if live.leader != spec.leader {
        diff.push(format!("{} leads instead of {}", live.leader, spec.leader));
    }
    for (n, up) in &live.upstreams {
        match spec.upstreams.get(n) {
            Some(s) if s != up => diff.push(format!("{n} follows {up} instead of {s}")),
            None if *n == spec.leader => diff.push(format!("{n} follows {up}")),
            _ => {}
        }
    }
    if diff.is_empty() && live.detached.is_empty() {
        out += "  (as the spec has it)\n";
    } else if !diff.is_empty() {
        out += &format!("  differs from the spec: {}; `clusterlab reset SPEC` brings back the spec's\n", diff.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{self, Source};

    pub(super) fn cluster(text: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let src = Source::new(dir.path().join("c.yaml"), text);
        let spec = spec::parse(&src).unwrap();
        Cluster::from_parts(spec, src, Some(dir.path())).unwrap()
    }

    #[test]
    fn after_a_promote_the_live_plan_has_the_new_leader_and_its_slots() {
        let c = cluster("name: c\nversion: \"9.4\"\nprovider: docker\ntopology:\n  followers: 2\n");
        let mut live = Live::of(&c.plan);
        assert_eq!(live.leader, "pg1");
        assert_eq!(live.upstreams["pg3"], "pg1");
        live.leader = "pg2".into();
        live.upstreams.remove("pg2");
        live.upstreams.insert("pg3".into(), "pg2".into());
        live.detached.push("pg1".into());
        let p = c.live_plan(&live).unwrap();
        assert_eq!(p.leader().name, "pg2");
        assert_eq!(p.leader().address, c.plan.node("pg2").unwrap().address, "machines keep their addresses");
        assert!(p.node("pg1").is_none(), "a fenced node is outside the topology");
        let pg3 = p.node("pg3").unwrap();
        assert_eq!(pg3.upstream.as_deref(), Some("pg2"));
        assert_eq!(pg3.slot.as_deref(), Some("pg3"));
        assert!(pg3.primary_conninfo.as_deref().unwrap().contains(&format!("host={}", p.leader().address)));
        assert_eq!(p.leader().downstream_slots, ["pg3"]);
        let t = tree(&live, &Live::of(&c.plan));
        assert_eq!(
            t,
            "live topology:\n  pg2 (leader)\n  └─ pg3\n  pg1: outside the topology (`clusterlab rejoin SPEC pg1`)\n  differs from the spec: pg2 leads instead of pg1, pg3 follows pg2 instead of pg1; `clusterlab reset SPEC` brings back the spec's\n"
        );
    }

    #[test]
    fn a_sync_leader_left_alone_runs_async_until_a_follower_rejoins() {
        let c = cluster("name: c\nversion: \"12\"\nprovider: docker\nreplication:\n  mode: sync\ntopology:\n  followers: 2\n");
        let alone = Live { leader: "pg3".into(), upstreams: BTreeMap::new(), detached: vec!["pg1".into(), "pg2".into()] };
        assert_eq!(c.live_plan(&alone).unwrap().synchronous_standby_names, None, "no standby can be synchronous");
        let back = Live { upstreams: [("pg1".to_string(), "pg3".to_string())].into_iter().collect(), detached: vec!["pg2".into()], ..alone };
        assert_eq!(c.live_plan(&back).unwrap().synchronous_standby_names.as_deref(), Some("FIRST 1 (\"pg1\")"));
    }

    #[test]
    fn the_tree_draws_cascades_and_says_when_nothing_differs() {
        let live = Live {
            leader: "a".into(),
            upstreams: [("b", "a"), ("c", "b"), ("d", "a")].into_iter().map(|(x, y)| (x.to_string(), y.to_string())).collect(),
            detached: vec![],
        };
        assert_eq!(tree(&live, &live), "live topology:\n  a (leader)\n  ├─ b\n  │  └─ c\n  └─ d\n  (as the spec has it)\n");
    }

    #[test]
    fn a_rejoined_node_follows_the_leader_and_delays_survive() {
        let c = cluster(
            "name: c\nversion: \"15\"\nprovider: docker\ntopology:\n  followers:\n    - name: b\n    - name: lag\n      apply_delay: 5min\n",
        );
        let live = Live {
            leader: "b".into(),
            upstreams: [("lag".to_string(), "b".to_string()), ("pg1".to_string(), "b".to_string())].into_iter().collect(),
            detached: vec![],
        };
        let p = c.live_plan(&live).unwrap();
        assert_eq!(p.node("pg1").unwrap().upstream.as_deref(), Some("b"));
        assert_eq!(p.node("lag").unwrap().apply_delay.as_deref(), Some("5min"));
        let mut slots = p.leader().downstream_slots.clone();
        slots.sort();
        assert_eq!(slots, ["lag", "pg1"]);
    }

    #[test]
    fn drill_steps_parse_as_the_command_line_writes_them() {
        assert_eq!(Drill::parse("promote pg2"), Ok(Drill::Promote(PromoteArgs { node: "pg2".into(), keep_old_leader: false })));
        assert_eq!(Drill::parse(" fault  pg1 kill "), Ok(Drill::Fault(FaultArgs { node: "pg1".into(), fault: Fault::Kill })));
        assert_eq!(Drill::parse("switchover pg1"), Ok(Drill::Switchover(NodeArg { node: "pg1".into() })));
        let Ok(Drill::Restore(r)) = Drill::parse("restore b1 --node pg1 --target-time '2026-11-26 10:00:00+00'") else { panic!("restore parses") };
        assert_eq!(r.target(), Some(("time", "2026-11-26 10:00:00+00")), "a quoted value stays one word");
        let e = Drill::parse("fault pg1 explode").unwrap_err();
        assert!(e.contains("not a drill") && e.contains("'explode'") && e.contains("kill, stop, pause"), "{e}");
        assert!(Drill::parse("promote").is_err());
        assert!(Drill::parse("restore b1 --node pg1 --target-time x --target-lsn 0/1").unwrap_err().contains("cannot be used with"));
        assert!(Drill::parse("dance pg1").unwrap_err().contains("not a drill"));
    }

    #[test]
    fn drills_refuse_before_touching_anything() {
        let c = cluster("name: c\nversion: \"15\"\nprovider: docker\n");
        let runner = crate::runner::DryRun;
        let ctx = Ctx { runner: &runner, quiet: true, templates: None };
        let e = c.promote(&ctx, "nope", false).unwrap_err().to_string();
        assert!(e.contains("no node `nope`"), "{e}");
        let e = c.promote(&ctx, "pg2", false).unwrap_err().to_string();
        assert!(e.contains("is not up"), "{e}");
        let e = c.rejoin(&ctx, "pg1").unwrap_err().to_string();
        assert!(e.contains("is not up"), "{e}");
    }
}
