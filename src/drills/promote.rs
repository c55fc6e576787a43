//! Failover (`promote`) and planned switchover: a follower becomes the
//! leader and the old leader's followers follow it. They share the
//! hand-over; they differ in what happens to the old leader.

use super::context::DrillCtx;
use super::resync::resync;
use crate::cluster::{Cluster, Ctx};
use crate::error::{Error, Result};
use crate::plan::Node;
use crate::state::{Operation, Phase};
use crate::topology::Topology;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handover {
    /// The leader is gone or must go: fence it.
    Failover,
    /// `promote --keep-old-leader`: the old leader runs on, outside the topology.
    Split,
    /// Planned: the old leader stops cleanly and follows the new one.
    Switchover,
}

impl Handover {
    fn op(self) -> Operation {
        if self == Handover::Switchover {
            Operation::Switchover
        } else {
            Operation::Promote
        }
    }

    fn old_leader_is(self) -> &'static str {
        match self {
            Handover::Failover => "fenced",
            Handover::Split => "still running, outside the topology",
            Handover::Switchover => "its follower",
        }
    }
}

/// Failover: NODE becomes the leader; the followers of the old leader follow
/// NODE (their slots made on NODE first); the old leader is stopped and
/// fenced unless `Split` (then it runs on, outside the topology: a split
/// brain to study). Switchover: the leader stops cleanly, NODE replays all
/// of its WAL, NODE is promoted, and the old leader follows NODE. No
/// committed row can be lost: at a clean shutdown a walsender exits only
/// once its standby has flushed everything (PostgreSQL's WalSndDone, in
/// src/backend/replication/walsender.c of the PostgreSQL sources; the fast
/// shutdown itself: https://www.postgresql.org/docs/current/server-shutdown.html).
pub(super) fn run(ctx: &Ctx, c: &Cluster, node: &str, how: Handover) -> Result<()> {
    c.node_named(node)?;
    let vagrant = c.vagrant(ctx);
    let mut d = DrillCtx::begin(ctx, c, &vagrant, how.op(), &how.op().to_string())?;
    let old = d.live.leader.clone();
    let next = hand_over(&mut d, node, how)?;
    d.verify(&next)?;
    d.progress(&format!("{node} leads; {old} is {}", how.old_leader_is()));
    Ok(())
}

fn refuse(live: &Topology, node: &str, how: Handover) -> Result<()> {
    let op = how.op();
    if live.leader == node {
        return Err(Error::usage(format!("{node} is the leader already"), format!("{op} one of its followers")));
    }
    if live.is_detached(node) {
        return Err(Error::usage(format!("{node} is outside the topology since an earlier promote"), format!("`clusterlab rejoin SPEC {node}` first")));
    }
    let old = &live.leader;
    if how == Handover::Switchover && live.upstreams.get(node) != Some(old) {
        return Err(Error::usage(format!("{node} does not stream from the leader {old} (it follows {})", live.upstreams[node]), "switch over to a direct follower of the leader"));
    }
    Ok(())
}

fn hand_over(d: &mut DrillCtx, node: &str, how: Handover) -> Result<Topology> {
    refuse(&d.live, node, how)?;
    let old = d.live.leader.clone();
    let mut next = d.live.handed_over(node, how == Handover::Switchover);
    for f in followers_down(d, node) {
        d.progress(&format!("{f} is down: it stays outside the topology (`clusterlab rejoin SPEC {f}` brings it back, cloned if its WAL is gone)"));
        next.upstreams.remove(&f);
        next.detached.push(f);
    }
    let new_plan = d.c.live_plan(&next)?;
    let op = how.op();
    d.recorded(|d| {
        d.enter(op, Phase::Promoting, Some(node))?;
        let diverged = leave(d, node, how)?;
        d.progress(&format!("promoting {node}"));
        d.node_ctl(node, "promote")?;
        let leader = new_plan.node(node).expect("the new leader is in the live plan");
        for slot in &leader.downstream_slots {
            d.p.exec(d.machine(node), &["clusterlab-pg", "slot", slot])?;
        }
        let moved: Vec<&Node> = new_plan
            .nodes
            .iter()
            .filter(|n| n.upstream.as_deref() == Some(node) && (n.name == old || d.live.upstreams.get(&n.name) == Some(&old)))
            .collect();
        for f in moved.iter().filter(|f| !diverged.contains(&f.name)) {
            d.progress(&format!("{} follows {node}", f.name));
        }
        {
            let d: &DrillCtx = d;
            crate::runner::parallel(&moved, |f| {
                if diverged.contains(&f.name) {
                    let how = resync(d, f, leader, &new_plan)?;
                    d.progress(&format!("{} follows {node} (by {how})", f.name));
                    Ok(())
                } else {
                    d.follow(f)
                }
            })?;
        }
        d.settle(op, &next)
    })?;
    Ok(next)
}

/// What happens to the old leader before NODE is promoted; the followers
/// that replayed WAL NODE never got (after a failover).
fn leave(d: &DrillCtx, node: &str, how: Handover) -> Result<Vec<String>> {
    let old = &d.live.leader;
    match how {
        Handover::Failover => {
            d.progress(&format!("fencing the old leader {old}"));
            if let Err(e) = d.node_ctl(old, "fence") {
                // A frozen or unreachable leader cannot be fenced now; it
                // stays outside the topology and `rejoin` fences it first.
                tracing::warn!("could not fence {old} ({e}); it stays outside the topology");
            }
            Ok(diverged(d, node))
        }
        Handover::Switchover => {
            d.progress(&format!("stopping the leader {old} cleanly"));
            d.node_ctl(old, "stop")?;
            d.progress(&format!("waiting until {node} has replayed all of {old}'s WAL"));
            wait_replayed(d, d.machine(node))?;
            Ok(Vec::new())
        }
        Handover::Split => Ok(Vec::new()),
    }
}

/// The old leader's other followers whose PostgreSQL does not run (stopped
/// or killed by a fault, `fault NODE slot-hold` among them): they cannot
/// follow NODE now, and their WAL may be gone from it. A frozen or cut-off
/// follower is not down: it is repointed and catches up once thawed.
fn followers_down(d: &DrillCtx, node: &str) -> Vec<String> {
    let old = &d.live.leader;
    if !d.ctx.runner.is_real() {
        return Vec::new();
    }
    let unreachable = |f: &str| d.st.frozen.iter().chain(&d.st.partitioned).any(|x| x == f);
    let Ok(password) = d.c.workdir.lab_password() else { return Vec::new() };
    d.live
        .upstreams
        .iter()
        .filter(|(f, up)| *up == old && f.as_str() != node && !unreachable(f))
        .filter(|(f, _)| crate::verify::connect(d.machine(f), &password, &d.c.plan, Duration::from_secs(3)).is_err())
        .map(|(f, _)| f.clone())
        .collect()
}

/// Asynchronous replication: a follower may have received WAL from the dead
/// leader that NODE never got. NODE's timeline will fork where its replay
/// ends; such a follower cannot stream from it and is rewound (or
/// re-cloned) instead, its extra transactions gone, as in a real failover.
fn diverged(d: &DrillCtx, node: &str) -> Vec<String> {
    let old = &d.live.leader;
    let mut diverged = Vec::new();
    let mut check = || -> Result<()> {
        let fork = replayed_lsn(d, d.machine(node))?;
        let mut client = crate::verify::connect(d.machine(node), &d.c.workdir.lab_password()?, &d.c.plan, Duration::from_secs(5))?;
        let ahead = format!("SELECT {}($1::text::pg_lsn, $2::text::pg_lsn) > 0", d.c.plan.facts.lsn_diff_fn);
        for f in d.live.upstreams.iter().filter(|(f, up)| *up == old && f.as_str() != node).map(|(f, _)| f) {
            // One that does not answer (down, frozen, cut off) is repointed as it is.
            let Ok(theirs) = replayed_lsn(d, d.machine(f)) else { continue };
            let is_ahead: bool = client.query_one(ahead.as_str(), &[&theirs, &fork]).map_err(|e| Error::sql(f, crate::verify::pg_message(&e)))?.get(0);
            if is_ahead {
                d.progress(&format!("{f} replayed WAL {node} never received ({theirs}; {node} ends at {fork}): it will be rewound"));
                diverged.push(f.clone());
            }
        }
        Ok(())
    };
    if let Err(e) = check() {
        tracing::warn!("could not compare the followers' WAL with {node}'s ({e}); repointing them as they are");
    }
    diverged
}

/// Where a standby's replay stands, once it has replayed what it
/// received (its upstream is gone, so nothing more arrives): up to 10 s.
fn replayed_lsn(d: &DrillCtx, n: &Node) -> Result<String> {
    let f = &d.c.plan.facts;
    // (After a reconnect the receive position restarts at a segment's
    // start, behind the replay position.)
    let sql = format!("SELECT {r}()::text, {v}() IS NULL OR {d}({v}(), {r}()) <= 0", r = f.replay_lsn_fn, v = f.receive_lsn_fn, d = f.lsn_diff_fn);
    let mut client = crate::verify::connect(n, &d.c.workdir.lab_password()?, &d.c.plan, Duration::from_secs(5))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row = client.query_one(sql.as_str(), &[]).map_err(|e| Error::sql(&n.name, crate::verify::pg_message(&e)))?;
        let (lsn, settled): (Option<String>, bool) = (row.get(0), row.get(1));
        if settled || Instant::now() > deadline {
            return Ok(lsn.unwrap_or_else(|| "0/0".into()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls a standby until it has replayed everything it received (its
/// upstream is stopped, so nothing more arrives).
fn wait_replayed(d: &DrillCtx, n: &Node) -> Result<()> {
    let f = &d.c.plan.facts;
    let sql = format!("SELECT {}() IS NOT NULL AND {}() = {}()", f.receive_lsn_fn, f.receive_lsn_fn, f.replay_lsn_fn);
    let mut client = crate::verify::connect(n, &d.c.workdir.lab_password()?, &d.c.plan, Duration::from_secs(5))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done: bool = client.query_one(sql.as_str(), &[]).map_err(|e| Error::sql(&n.name, crate::verify::pg_message(&e)))?.get(0);
        if done {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Verify(format!("{} did not replay all of the old leader's WAL within 60 s; the old leader is stopped: `clusterlab status SPEC`", n.name)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
