//! The drill context: what every drill works over, built once per drill —
//! the cluster's lock, its state, the live topology and the plan it implies,
//! and the provider's fast paths.

use crate::cluster::{Cluster, Ctx};
use crate::error::{Error, Result};
use crate::plan::{Node, Plan};
use crate::providers::Machines;
use crate::state::{Lock, Operation, Phase, State};
use crate::topology::Topology;
use crate::vagrant::Vagrant;
use std::time::{Duration, Instant};

pub(crate) struct DrillCtx<'a> {
    pub ctx: &'a Ctx<'a>,
    pub c: &'a Cluster,
    pub p: Box<dyn Machines + 'a>,
    pub st: State,
    /// The topology the drill starts from.
    pub live: Topology,
    /// The plan `live` implies.
    pub plan: Plan,
    pub start: Instant,
    _lock: Lock,
}

impl<'a> DrillCtx<'a> {
    /// What every drill does first: the cluster's lock, a cluster that is
    /// up, and the topology it has now. (The caller checks its node first:
    /// a wrong name is refused before anything else.)
    pub fn begin(ctx: &'a Ctx<'a>, c: &'a Cluster, vagrant: &'a Vagrant<'a>, op: Operation, verb: &str) -> Result<DrillCtx<'a>> {
        let start = Instant::now();
        let lock = Lock::acquire(&c.workdir, &c.plan.name, op)?;
        let st = running_state(c, verb)?;
        let live = c.live_of(&st);
        let plan = c.live_plan(&live)?;
        Ok(DrillCtx { ctx, c, p: c.provider(ctx, vagrant), st, live, plan, start, _lock: lock })
    }

    /// A node's machine: the spec's plan has every node, detached or not.
    pub fn machine(&self, node: &str) -> &'a Node {
        self.c.plan.node(node).expect("nodes of the spec")
    }

    pub fn progress(&self, msg: &str) {
        self.ctx.progress(self.start, msg);
    }

    /// Records the step a drill begins; after Ctrl-C or SIGTERM, begins
    /// none (a step whose commands do not stream would not notice it).
    pub fn enter(&mut self, op: Operation, phase: Phase, detail: Option<&str>) -> Result<()> {
        if crate::signals::requested() {
            return Err(Error::Interrupted(detail.map(str::to_string).unwrap_or_else(|| format!("{op:?}").to_lowercase())));
        }
        self.st.enter(&self.c.workdir, op, phase, detail)
    }

    /// Runs `body`; on failure records it in the state before returning the error.
    pub fn recorded<T>(&mut self, body: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let r = body(self);
        if let Err(e) = &r {
            self.c.record_failure(&mut self.st, e);
        }
        r
    }

    /// How a drill that changed the topology ends: the new leader's
    /// synchronous standbys, the topology recorded, the cluster ready.
    pub fn settle(&mut self, op: Operation, next: &Topology) -> Result<()> {
        self.sync_names(&self.c.live_plan(next)?)?;
        self.c.record_live(&mut self.st, next);
        self.enter(op, Phase::Ready, None)
    }

    /// Writes the live plan's synchronous_standby_names on its leader: the
    /// spec's list names the spec's topology, and after a failover it would
    /// make the wrong standby (or none that exists) synchronous.
    fn sync_names(&self, live_plan: &Plan) -> Result<()> {
        if self.c.plan.synchronous_standby_names.is_none() {
            return Ok(());
        }
        let names = live_plan.synchronous_standby_names.clone().unwrap_or_default();
        self.p.exec(self.machine(&live_plan.leader().name), &["clusterlab-pg", "sync-names", &names]).map(drop)
    }

    /// Points a follower at its upstream in a live plan (slot and delay as planned).
    pub fn follow(&self, planned: &Node) -> Result<()> {
        let conninfo = planned.primary_conninfo.clone().unwrap_or_default();
        let slot = planned.slot.clone().unwrap_or_default();
        let delay = planned.apply_delay.clone().unwrap_or_default();
        self.p.exec(self.machine(&planned.name), &["clusterlab-pg", "follow", &conninfo, &slot, &delay]).map(drop)
    }

    /// Runs the node control script on a node.
    pub fn node_ctl(&self, node: &str, action: &str) -> Result<()> {
        crate::cluster::node_ctl(self.p.as_ref(), self.machine(node), action)
    }

    /// Verify of the topology a drill left, printed.
    pub fn verify(&self, next: &Topology) -> Result<()> {
        self.c.verify_plan_and_print(self.ctx, &self.c.live_plan(next)?, Duration::from_secs(60), false).map(drop)
    }
}

fn running_state(c: &Cluster, op: &str) -> Result<State> {
    // Up and ready (a matrix cell keeps no known state), or changed by a drill since.
    let st = State::load(&c.workdir).filter(|s| s.phase == Phase::Ready || s.baseline.is_some() || s.live.is_some());
    st.ok_or_else(|| Error::usage(format!("cluster {} is not up, nothing to {op}", c.plan.name), "`clusterlab up SPEC` first; `clusterlab status SPEC` says where it is"))
}
