//! `fault`: break one node (kill, stop, freeze, cut off) or heal it. `reset`
//! undoes every fault.

use super::context::DrillCtx;
use crate::cluster::{Cluster, Ctx};
use crate::error::Result;
use crate::state::Operation;

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

/// The topology is unchanged: a broken node is still where it was.
pub(super) fn run(ctx: &Ctx, c: &Cluster, node: &str, fault: Fault) -> Result<()> {
    c.node_named(node)?;
    let vagrant = c.vagrant(ctx);
    let mut d = DrillCtx::begin(ctx, c, &vagrant, Operation::Fault, "break")?;
    d.recorded(|d| {
        apply(d, node, fault)?;
        d.st.save(&d.c.workdir)
    })
}

fn apply(d: &mut DrillCtx, node: &str, fault: Fault) -> Result<()> {
    let n = d.machine(node);
    let frozen = d.st.frozen.iter().any(|f| f == node);
    let cut = d.st.partitioned.iter().any(|x| x == node);
    match fault {
        Fault::Kill => d.node_ctl(node, "kill")?,
        Fault::Stop => d.node_ctl(node, "stop")?,
        Fault::Pause if !frozen => {
            d.p.freeze(n, true)?;
            d.st.frozen.push(node.to_string());
        }
        Fault::Partition if !cut => {
            d.c.cut(d.p.as_ref(), n, true)?;
            d.st.partitioned.push(node.to_string());
        }
        Fault::Pause | Fault::Partition => {}
        Fault::Heal => {
            if frozen {
                d.p.freeze(n, false)?;
                d.st.frozen.retain(|f| f != node);
            }
            if cut {
                d.c.cut(d.p.as_ref(), n, false)?;
                d.st.partitioned.retain(|x| x != node);
            }
            d.node_ctl(node, "start")?;
        }
    }
    Ok(())
}
