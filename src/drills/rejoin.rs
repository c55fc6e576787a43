//! `rejoin`: a node outside the topology (a former leader, or a node a
//! restore fenced) back as a follower of the current leader.

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
    if !live.is_detached(node) {
        let role = if live.leader == node { "the leader".to_string() } else { format!("already following {}", live.upstreams[node]) };
        return Err(Error::usage(format!("{node} is {role}"), "rejoin brings back a node that a promote left outside the topology"));
    }
    let next = live.rejoined(node);
    let new_plan = d.c.live_plan(&next)?;
    let me = new_plan.node(node).expect("the rejoined node is in the live plan");
    let leader = new_plan.node(&next.leader).expect("the leader is in the live plan");
    let how = d.recorded(|d| {
        d.enter(Operation::Rejoin, Phase::Rejoining, Some(node))?;
        if let Some(slot) = &me.slot {
            d.p.exec(d.machine(&leader.name), &["clusterlab-pg", "slot", slot])?;
        }
        let how = resync(d, me, leader, &new_plan)?;
        d.settle(Operation::Rejoin, &next)?;
        Ok(how)
    })?;
    Ok((next, how))
}
