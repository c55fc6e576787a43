//! `rejoin`: a node outside the topology (a former leader, or a node a
//! restore fenced) back as a follower of the current leader; or a follower
//! that cannot stream (its WAL is gone) cloned again from its upstream.

use super::context::DrillCtx;
use super::resync::resync;
use crate::cluster::{Cluster, Ctx};
use crate::error::{Error, Result};
use crate::state::{Operation, Phase};
use crate::topology::Topology;

/// Says how it brought the node back (pg_rewind or a fresh base backup).
pub(super) fn run(ctx: &Ctx, c: &Cluster, node: &str) -> Result<()> {
    c.node_named(node)?;
    let vagrant = c.vagrant(ctx);
    let mut d = DrillCtx::begin(ctx, c, &vagrant, Operation::Rejoin, "rejoin")?;
    let (next, how) = bring_back(&mut d, node)?;
    d.verify(&next)?;
    d.progress(&format!("{node} follows {} again (by {how})", next.leader));
    Ok(())
}

fn bring_back(d: &mut DrillCtx, node: &str) -> Result<(Topology, &'static str)> {
    let live = &d.live;
    if live.leader == node {
        return Err(Error::usage(format!("{node} is the leader"), "rejoin brings back a node that a promote left outside the topology, or clones a follower again"));
    }
    if !live.is_detached(node) {
        return clone_again(d, node).map(|how| (d.live.clone(), how));
    }
    let next = live.rejoined(node);
    let new_plan = d.c.live_plan(&next)?;
    let me = new_plan.node(node).expect("the rejoined node is in the live plan");
    let leader = new_plan.node(&next.leader).expect("the leader is in the live plan");
    let how = d.recorded(|d| {
        d.enter(Operation::Rejoin, Phase::Rejoining, Some(node))?;
        // A copy or a rewind needs the room a full disk does not have.
        super::fault_files::free_disk(d, node)?;
        if let Some(slot) = &me.slot {
            d.p.exec(d.machine(&leader.name), &["clusterlab-pg", "slot", slot])?;
        }
        let how = resync(d, me, leader, &new_plan)?;
        // Files a fault set aside on this machine belong to the data directory just replaced.
        d.st.aside.retain(|a| a.on != node);
        d.settle(Operation::Rejoin, &next)?;
        Ok(how)
    })?;
    Ok((next, how))
}

/// A follower in the topology that cannot stream (`fault wal-loss`): a fresh
/// base backup from its upstream, through its slot, as a DBA would do.
fn clone_again(d: &mut DrillCtx, node: &str) -> Result<&'static str> {
    let plan = d.c.live_plan(&d.live)?;
    let me = plan.node(node).expect("a follower is in the live plan").clone();
    let upstream = plan.node(me.upstream.as_deref().expect("a follower has an upstream")).expect("its upstream is planned").clone();
    d.recorded(|d| {
        d.enter(Operation::Rejoin, Phase::Rejoining, Some(node))?;
        d.progress(&format!("fresh base backup of {node} from {}", upstream.name));
        super::fault_files::free_disk(d, node)?;
        // Its slot holds the lost WAL, or was invalidated for holding too
        // much (max_slot_wal_keep_size, 13+): made again, empty, before the clone.
        d.node_ctl(node, "stop")?;
        if let Some(slot) = &me.slot {
            d.p.exec(d.machine(&upstream.name), &["clusterlab-pg", "drop-slot", slot])?;
            d.p.exec(d.machine(&upstream.name), &["clusterlab-pg", "slot", slot])?;
        }
        d.p.exec(d.machine(node), &["clusterlab-pg", "reclone", &upstream.address])?;
        d.follow(&me)?;
        d.st.aside.retain(|a| a.on != node);
        let live = d.live.clone();
        d.settle(Operation::Rejoin, &live)?;
        Ok("a fresh base backup")
    })
}
