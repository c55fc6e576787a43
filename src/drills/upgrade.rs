//! `clusterlab upgrade SPEC --to MAJOR`: every node of a running cluster to a
//! newer major, the way a DBA does it (https://www.postgresql.org/docs/current/upgrading.html):
//! the followers stop, the leader's data goes to a new cluster of the new
//! major (pg_upgrade `--link` or `--copy`, or a dump and restore), the new
//! leader starts, and each follower is cloned again from it, through its slot.
//!
//! The steps on a node are its provisioning for the new major (the spec's
//! plan on that major, `Cluster::plan_for`) with the upgrade's own steps in
//! between (`templates/scripts/upgrade.sh.tera`); the old major's cluster
//! and known state stay on the node, so `reset` goes back to them.
//! What can block an upgrade is found first (`upgrade_check.rs`); `--check`
//! stops there.

use super::context::DrillCtx;
pub use crate::plan::UpgradeMethod as Method;
use super::upgrade_check::{self, Finding};
use crate::cluster::{Cluster, Ctx};
use crate::error::{Error, Result};
use crate::facts::{Facts, Major};
use crate::plan::{Plan, Role};
use crate::render::{Renderer, Upgrade};
use crate::runner::parallel;
use crate::state::{Operation, Phase};
use crate::topology::Topology;

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct UpgradeArgs {
    /// The major to upgrade to: newer than the one the cluster runs, carried by its box.
    #[arg(long, value_name = "MAJOR")]
    pub to: String,
    #[arg(long, value_enum, default_value = "link")]
    pub method: Method,
    /// Only say what would block the upgrade (pg_upgrade's checks, the box, the cluster); change nothing.
    #[arg(long)]
    pub check: bool,
}

pub(super) fn run(ctx: &Ctx, c: &Cluster, a: &UpgradeArgs) -> Result<String> {
    let to = Major::parse(&a.to).ok_or_else(|| Error::usage(format!("--to {}: not a PostgreSQL major", a.to), "use one of 10-18, newer than the cluster's"))?;
    let vagrant = c.vagrant(ctx);
    let mut d = DrillCtx::begin(ctx, c, &vagrant, Operation::Upgrade, "upgrade")?;
    let from = d.plan.facts.clone();
    refuse(&d, &from, to, a.method)?;
    let new = Facts::for_major(to);
    // The spec's cluster on the new major: a spec the new major cannot run is refused here.
    let target = c.live_plan(&Topology { major: Some(new.major.clone()), ..d.live.clone() })?;
    let mut findings = upgrade_check::carried(&d, &from, &new, a.method)?;
    findings.extend(upgrade_check::findings(&d, &from, &new, a.method)?);
    let blocking: Vec<&Finding> = findings.iter().filter(|f| f.blocks).collect();
    let report = upgrade_check::table(&findings);
    if a.check || !blocking.is_empty() {
        if !ctx.quiet || !blocking.is_empty() {
            print!("{report}");
        }
        if !blocking.is_empty() {
            return Err(Error::usage(
                format!("{} thing(s) block the upgrade of {} from {} to {}", blocking.len(), c.plan.name, from.major, new.major),
                "fix each as its line says, then `clusterlab upgrade SPEC --to MAJOR --check` again",
            ));
        }
        let verdict = format!("nothing blocks the upgrade from {} to {} by {}", from.major, new.major, a.method.as_str());
        println!("{verdict}");
        return Ok(verdict);
    }
    let method = a.method;
    let next = d.recorded(|d| upgrade(d, &target, from, method))?;
    d.verify(&next)?;
    let done = format!("{} runs PostgreSQL {} ({}); `clusterlab reset` brings back {}", c.plan.name, new.major, method.as_str(), c.plan.version);
    d.progress(&done);
    Ok(done)
}

/// What the command line or the cluster's state rules out before anything is looked at.
fn refuse(d: &DrillCtx, from: &Facts, to: Major, method: Method) -> Result<()> {
    let from_major = Major::parse(&from.major).expect("a plan's major");
    if to <= from_major {
        return Err(Error::usage(
            format!("--to {}: the cluster runs PostgreSQL {} already; an upgrade goes to a newer major", to.label(), from.major),
            "name a newer major, or `clusterlab reset SPEC` to go back to the spec's",
        ));
    }
    if method == Method::Logical && !from.has_logical_replication {
        return Err(Error::usage(
            format!("--method logical: PostgreSQL {} has no built-in logical replication (it came in 10)", from.major),
            "use --method link, copy or dump",
        ));
    }
    if let Some(n) = d.live.detached.first() {
        return Err(Error::usage(format!("{n} is outside the topology since an earlier promote"), format!("`clusterlab rejoin SPEC {n}` first, or `clusterlab reset SPEC`")));
    }
    if let Some(n) = d.st.partitioned.first().or(d.st.frozen.first()) {
        return Err(Error::usage(format!("{n} is cut off or frozen by a fault"), format!("`clusterlab fault SPEC {n} heal` first")));
    }
    Ok(())
}

/// The upgrade itself; returns the topology it leaves (the same, on the new major).
fn upgrade(d: &mut DrillCtx, target: &Plan, from: Facts, method: Method) -> Result<Topology> {
    let files = Renderer::new(d.ctx.templates.as_deref())?.render_upgrade(target, &Upgrade { from, method })?;
    d.c.workdir.write_files(&files)?;
    let script = |name: &str| d.c.workdir.path(format!("upgrade/{name}.sh"));
    let followers: Vec<&str> = target.nodes.iter().filter(|n| n.role != Role::Leader).map(|n| n.name.as_str()).collect();
    // Recorded before anything changes: from here on, a reset must bring
    // back the old major even if this upgrade never records the new one.
    d.st.upgrading_to = Some(target.version.clone());
    d.enter(Operation::Upgrade, Phase::Upgrading, Some("stop the followers"))?;
    parallel(&followers, |n| d.node_ctl(n, "stop"))?;
    d.progress("followers stopped");
    let leader = &target.leader().name;
    d.enter(Operation::Upgrade, Phase::Upgrading, Some(leader))?;
    d.p.run_script(d.machine(leader), &script(leader), &format!("upgrade-{leader}.log"))?;
    d.progress(&format!("{leader} leads on PostgreSQL {}", target.version));
    for wave in target.waves().iter().skip(1) {
        let names: Vec<&str> = wave.iter().map(|n| n.name.as_str()).collect();
        d.enter(Operation::Upgrade, Phase::Upgrading, Some(&names.join(",")))?;
        parallel(&names, |n| d.p.run_script(d.machine(n), &script(n), &format!("upgrade-{n}.log")))?;
        d.progress(&format!("{} cloned again from the new leader", names.join(", ")));
    }
    let next = Topology { major: Some(target.version.clone()), ..d.live.clone() };
    d.st.upgrading_to = None;
    d.settle(Operation::Upgrade, &next)?;
    Ok(next)
}
