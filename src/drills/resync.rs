//! Making a node whose history left the leader's its follower again: shared
//! by `rejoin` (a former leader) and `promote` (a follower that got WAL the
//! new leader never did).

use super::context::DrillCtx;
use crate::error::Result;
use crate::plan::{self, Node, Plan};
use std::time::Duration;

/// pg_rewind where the box has this major's (9.5+), else a fresh base
/// backup (https://www.postgresql.org/docs/current/app-pgrewind.html).
/// `me` and `leader` are nodes of `new_plan`, the live plan after the drill.
/// Says which it did.
pub(super) fn resync(d: &DrillCtx, me: &Node, leader: &Node, new_plan: &Plan) -> Result<&'static str> {
    let node = me.name.as_str();
    d.node_ctl(node, "stop")?;
    let rewound = d.c.plan.facts.has_pg_rewind && d.node_ctl(node, "has-rewind").is_ok() && rewind(d, node, leader);
    if !rewound {
        d.progress(&format!("fresh base backup of {node} from {}", leader.name));
        d.p.exec(d.machine(node), &["clusterlab-pg", "reclone", &leader.address])?;
    }
    d.follow(me)?;
    // Should pg_rewind still leave a node that cannot stream (before the
    // checkpoint in `rewind` it did, on 15: "no rewind required"), a fresh
    // copy always can.
    if rewound && !crate::verify::verify(new_plan, &d.c.workdir.lab_password()?, Duration::from_secs(20)).ok {
        tracing::warn!("{node} does not stream after pg_rewind; taking a fresh base backup instead");
        d.progress(&format!("{node} did not stream after pg_rewind: fresh base backup from {}", leader.name));
        d.p.exec(d.machine(node), &["clusterlab-pg", "reclone", &leader.address])?;
        d.follow(me)?;
        return Ok("a fresh base backup, after pg_rewind left it unable to stream");
    }
    Ok(if rewound { "pg_rewind" } else { "a fresh base backup" })
}

/// pg_rewind of a stopped NODE from the leader; false (with a warning) when it failed.
fn rewind(d: &DrillCtx, node: &str, leader: &Node) -> bool {
    d.progress(&format!("pg_rewind {node} from {}", leader.name));
    let source = format!("host={} port=5432 user={} dbname=postgres", leader.address, plan::REWIND_USER);
    let r = d
        .node_ctl(&leader.name, "checkpoint")
        .and_then(|_| d.node_ctl(node, "clean-shutdown"))
        .and_then(|_| d.p.exec(d.machine(node), &["clusterlab-pg", "rewind", &source]).map(drop));
    if let Err(e) = &r {
        tracing::warn!("pg_rewind failed ({e}); taking a fresh base backup instead");
    }
    r.is_ok()
}
