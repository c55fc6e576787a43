//! `clusterlab upgrade SPEC --to MAJOR`: every node of a running cluster to a
//! newer major, the way a DBA does it (https://www.postgresql.org/docs/current/upgrading.html):
//! the followers stop, the leader's data goes to a new cluster of the new
//! major (pg_upgrade `--link` or `--copy`, or a dump and restore), the new
//! leader starts, and each follower is cloned again from it, through its
//! slot. After `--link` the followers that were caught up are kept instead:
//! the leader rsyncs them the new cluster before it starts, as pg_upgrade's
//! documentation says.
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
use crate::plan::{Node, Plan, Role};
use crate::render::{Renderer, Template1, Upgrade};
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
    if method == Method::Link && d.plan.disk.is_some() {
        return Err(Error::usage(
            "--method link: pg_upgrade --link hard-links the new cluster to the old one's files, and resources.disk gives the old data directory a filesystem of its own",
            "use --method copy, logical or dump, or a spec without resources.disk",
        ));
    }
    if d.plan.wal_disk.is_some() {
        return Err(Error::usage(
            "the upgrade drills make the new major's cluster with its WAL in its data directory, and resources.wal_disk puts this cluster's pg_wal on a filesystem of its own",
            "upgrade a cluster of a spec without resources.wal_disk",
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
    let leader = target.leader().clone();
    let template1 = template1(d, &leader.name)?;
    let followers: Vec<&str> = target.nodes.iter().filter(|n| n.role != Role::Leader).map(|n| n.name.as_str()).collect();
    let renderer = Renderer::new(d.ctx.templates.as_deref())?;
    let mut upgrade = Upgrade { from, method, template1, standbys: Vec::new() };
    d.c.workdir.write_files(&renderer.render_upgrade(target, &upgrade)?)?;
    let script = |name: &str| d.c.workdir.path(format!("upgrade/{name}.sh"));
    // Recorded before anything changes: from here on, a reset must bring
    // back the old major even if this upgrade never records the new one.
    d.st.upgrading_to = Some(target.version.clone());
    d.enter(Operation::Upgrade, Phase::Upgrading, Some(&format!("{}: the new cluster", leader.name)))?;
    d.p.run_script(d.machine(&leader.name), &script("new-cluster"), &format!("upgrade-{}-new-cluster.log", leader.name))?;
    let kept = if method == Method::Link {
        stop_for_rsync(d, target, &followers)?
    } else {
        d.enter(Operation::Upgrade, Phase::Upgrading, Some("stop the followers"))?;
        parallel(&followers, |n| d.node_ctl(n, "stop"))?;
        d.progress("followers stopped");
        Vec::new()
    };
    // The leader's script names the kept followers, known only now: the
    // scripts are written again with them.
    if !kept.is_empty() {
        upgrade.standbys = kept.iter().map(|n| n.address.clone()).collect();
        d.c.workdir.write_files(&renderer.render_upgrade(target, &upgrade)?)?;
    }
    d.enter(Operation::Upgrade, Phase::Upgrading, Some(&leader.name))?;
    d.p.run_script(d.machine(&leader.name), &script(&leader.name), &format!("upgrade-{}.log", leader.name))?;
    d.progress(&format!("{} leads on PostgreSQL {}", leader.name, target.version));
    for n in &kept {
        d.p.exec(d.machine(&n.name), &["clusterlab-pg", "rsync-stop"])?;
        // A base backup would have made the slot (pg_basebackup -C); the
        // new leader has none of the old one's.
        if let (Some(slot), true) = (&n.slot, target.facts.basebackup_create_slot) {
            d.p.exec(d.machine(&leader.name), &["clusterlab-pg", "slot", slot])?;
        }
    }
    for wave in target.waves().iter().skip(1) {
        let names: Vec<&str> = wave.iter().map(|n| n.name.as_str()).collect();
        d.enter(Operation::Upgrade, Phase::Upgrading, Some(&names.join(",")))?;
        parallel(&names, |n| d.p.run_script(d.machine(n), &script(n), &format!("upgrade-{n}.log")))?;
        let (synced, cloned): (Vec<&str>, Vec<&str>) = names.iter().partition(|n| kept.iter().any(|k| k.name == **n));
        for (who, how) in [(synced, "kept: the new cluster came by rsync"), (cloned, "cloned again from the new leader")] {
            if !who.is_empty() {
                d.progress(&format!("{} {how}", who.join(", ")));
            }
        }
    }
    let next = Topology { major: Some(target.version.clone()), ..d.live.clone() };
    d.st.upgrading_to = None;
    d.settle(Operation::Upgrade, &next)?;
    Ok(next)
}

/// The old leader's template1: its encoding, locale and data checksums, which
/// the new cluster is made with (pg_upgrade refuses a mismatch).
fn template1(d: &DrillCtx, leader: &str) -> Result<Template1> {
    let sql = "SELECT pg_encoding_to_char(encoding), datcollate, datctype, current_setting('data_checksums') FROM pg_database WHERE datname = 'template1'";
    let out = d.p.exec(d.machine(leader), &["clusterlab-pg", "psql", "-d", "template1", "-F", "|", "-c", sql])?;
    let row = out.stdout.trim();
    match row.split('|').collect::<Vec<_>>()[..] {
        [encoding, collate, ctype, sums] => Ok(Template1 { encoding: encoding.into(), collate: collate.into(), ctype: ctype.into(), checksums: sums == "on" }),
        _ => Err(Error::usage(format!("{leader}'s template1 did not say its encoding and locale: {row:?}"), "`clusterlab verify SPEC`; is the leader up?")),
    }
}

/// pg_upgrade --link keeps the standbys whose files are the leader's, the
/// documented way. While everything still runs, each follower of the leader
/// gets the new major's configuration (its data directory gone) and an rsync
/// daemon. Then the leader stops first (its walsenders hand the shutdown
/// checkpoint to the followers), then the followers; those whose latest
/// checkpoint is the leader's are kept, and get the new cluster by rsync
/// from the leader's script. The others, and followers of followers, are
/// cloned again. Returns the kept.
fn stop_for_rsync(d: &mut DrillCtx, target: &Plan, followers: &[&str]) -> Result<Vec<Node>> {
    let leader = target.leader().clone();
    let direct: Vec<Node> = target.nodes.iter().filter(|n| n.upstream.as_deref() == Some(leader.name.as_str())).cloned().collect();
    d.enter(Operation::Upgrade, Phase::Upgrading, Some("the followers wait for rsync"))?;
    parallel(&direct, |n| {
        d.p.exec(d.machine(&n.name), &["clusterlab-pg", "rsync-prepare", &target.facts.major])?;
        d.p.exec(d.machine(&n.name), &["clusterlab-pg", "rsync-serve", &n.address, &leader.address]).map(drop)
    })?;
    d.enter(Operation::Upgrade, Phase::Upgrading, Some("stop the leader, then its followers"))?;
    d.node_ctl(&leader.name, "stop")?;
    parallel(followers, |n| d.node_ctl(n, "stop"))?;
    // Each node's latest checkpoint, all at once (the writers wait).
    let names: Vec<&str> = std::iter::once(leader.name.as_str()).chain(direct.iter().map(|n| n.name.as_str())).collect();
    let at = parallel(&names, |n| Ok(d.p.exec(d.machine(n), &["clusterlab-pg", "checkpoint-location"])?.stdout.trim().to_string()))?;
    let leader_at = &at[0];
    let mut kept = Vec::new();
    for (n, theirs) in direct.into_iter().zip(&at[1..]) {
        if !leader_at.is_empty() && theirs == leader_at {
            kept.push(n);
        } else {
            d.p.exec(d.machine(&n.name), &["clusterlab-pg", "rsync-stop"])?;
            d.progress(&format!("{}: latest checkpoint {theirs}, the leader's {leader_at}: not caught up, so cloned again", n.name));
        }
    }
    d.progress(&format!("leader and followers stopped; kept by rsync: {}", if kept.is_empty() { "none".to_string() } else { kept.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ") }));
    Ok(kept)
}
