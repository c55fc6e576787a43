//! `fault`: break one node (kill, stop, freeze, cut off) or heal it. `reset`
//! undoes every fault.

use super::context::DrillCtx;
use super::fault_files::{self, Loss};
use crate::cluster::{Cluster, Ctx};
use crate::error::{Error, Result};
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
    /// archive_command fails from now on (the node must archive: `replication.archive: true`).
    ArchiveFail,
    /// Stop a follower and keep its slot on its upstream, which then holds WAL back.
    SlotHold,
    /// The newest commit-log segment (pg_clog, pg_xact from 10) is gone, after a checkpoint: PostgreSQL cannot start.
    ClogLoss,
    /// A follower's next WAL segment is gone from its upstream (with --archive: the first segment archived after the newest base backup, from the node's archive).
    WalLoss,
    /// The data directory's own filesystem (the spec's `resources.disk`) is full, or with --wal pg_wal's (`resources.wal_disk`): PostgreSQL's next write that needs room fails.
    DiskFull,
    /// A slow link: AMOUNT ms of delay on the node's interface (tc netem; where the kernel has it).
    Lag,
    /// A lossy link: AMOUNT percent of the node's packets dropped (tc netem).
    Loss,
    /// Undo every fault on the node (files clog-loss and wal-loss took are put back; a killed server is started again too).
    Heal,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct FaultArgs {
    pub node: String,
    #[arg(value_enum)]
    pub fault: Fault,
    /// With lag: milliseconds of delay each way; with loss: the percentage of packets dropped.
    pub amount: Option<u32>,
    /// With wal-loss: the segment goes from NODE's WAL archive (a point-in-time restore stops before it).
    #[arg(long)]
    pub archive: bool,
    /// With disk-full: the filesystem of pg_wal alone (the spec's `resources.wal_disk`) fills, not the data directory's.
    #[arg(long)]
    pub wal: bool,
}

/// The topology is unchanged: a broken node is still where it was. Returns
/// what a DBA will see.
pub(super) fn run(ctx: &Ctx, c: &Cluster, args: &FaultArgs) -> Result<String> {
    let (node, fault, archive) = (args.node.as_str(), args.fault, args.archive);
    c.node_named(node)?;
    let vagrant = c.vagrant(ctx);
    let mut d = DrillCtx::begin(ctx, c, &vagrant, Operation::Fault, "break")?;
    refuse(&d, node, fault, archive, args.wal)?;
    let amount = amount_for(node, fault, args.amount)?;
    let said = d.recorded(|d| {
        let lost = match fault {
            Fault::ClogLoss => Some(fault_files::take(d, node, Loss::Clog)?),
            Fault::WalLoss => Some(fault_files::take(d, node, if archive { Loss::ArchivedWal } else { Loss::Wal })?),
            Fault::DiskFull => Some(fault_files::fill_disk(d, node, args.wal)?),
            Fault::Lag | Fault::Loss => {
                let (kind, value) = if fault == Fault::Lag { ("delay", format!("{amount}ms")) } else { ("loss", format!("{amount}%")) };
                d.p.netem(d.machine(node), Some(&[kind, value.as_str()]))?;
                if !d.st.slowed.iter().any(|s| s == node) {
                    d.st.slowed.push(node.to_string());
                }
                Some(format!("{node}: {kind} {value} on the interface that carries its address (tc netem); `clusterlab fault SPEC {node} heal` takes it away"))
            }
            _ => {
                apply(d, node, fault)?;
                None
            }
        };
        d.st.save(&d.c.workdir)?;
        Ok(lost.unwrap_or_else(|| symptom(d, node, fault)))
    })?;
    if !said.is_empty() && !ctx.quiet {
        println!("{said}");
    }
    Ok(said)
}

fn refuse(d: &DrillCtx, node: &str, fault: Fault, archive: bool, wal: bool) -> Result<()> {
    let planned = d.plan.node(node);
    if archive && fault != Fault::WalLoss {
        return Err(Error::usage("--archive goes with wal-loss only", format!("`clusterlab fault SPEC {node} wal-loss --archive`")));
    }
    if wal && fault != Fault::DiskFull {
        return Err(Error::usage("--wal goes with disk-full only", format!("`clusterlab fault SPEC {node} disk-full --wal`")));
    }
    match fault {
        Fault::WalLoss => fault_files::refuse_wal_loss(d, node, archive),
        Fault::DiskFull if wal && d.plan.wal_disk.is_none() => Err(Error::usage(
            format!("the WAL of cluster {} is in its data directories, on their machines' disks, which disk-full must not fill", d.c.plan.name),
            "set `resources: {wal_disk: 128}` (MiB) in the spec, then `clusterlab destroy` and `up` again: each node's pg_wal gets a filesystem of its own",
        )),
        Fault::DiskFull if !wal && d.plan.disk.is_none() => Err(Error::usage(
            format!("the data directories of cluster {} share their machines' disks, which disk-full must not fill", d.c.plan.name),
            if d.plan.wal_disk.is_some() {
                "`--wal` fills the filesystem of pg_wal (resources.wal_disk); for the data directory's, set `resources: {disk: 256}` (MiB), then `clusterlab destroy` and `up` again"
            } else {
                "set `resources: {disk: 256}` (MiB) in the spec, then `clusterlab destroy` and `up` again: each node gets a filesystem of its own"
            },
        )),
        Fault::ArchiveFail if !d.plan.archive => Err(Error::usage(
            format!("cluster {} does not archive WAL", d.c.plan.name),
            "set `replication.archive: true` in the spec (and `up` again) to practise a failing archive",
        )),
        Fault::ArchiveFail if d.plan.leader().name != node => Err(Error::usage(
            format!("{node} does not archive: only the leader {} does (archive_mode = on)", d.plan.leader().name),
            format!("`clusterlab fault SPEC {} archive-fail`", d.plan.leader().name),
        )),
        Fault::SlotHold if planned.is_none_or(|n| n.slot.is_none()) => Err(Error::usage(
            format!("{node} streams through no slot on an upstream (it leads, is outside the topology, or the spec has `slots: false`)"),
            "name a follower of a spec with `replication.slots: true`",
        )),
        _ => Ok(()),
    }
}

/// What the fault did and what PostgreSQL shows for it.
fn symptom(d: &DrillCtx, node: &str, fault: Fault) -> String {
    match fault {
        Fault::ArchiveFail => format!(
            "{node}: archive_command fails from now on (`false`); PostgreSQL logs \"archive command failed with exit code 1\", \
             pg_stat_archiver.failed_count grows and WAL stays in {} (`clusterlab verify SPEC` names it); \
             `clusterlab fault SPEC {node} heal` lets the archiver catch up",
            d.plan.facts.wal_dir
        ),
        Fault::SlotHold => {
            let n = d.plan.node(node).expect("refused otherwise");
            format!(
                "{node} stopped; its slot {} on {} keeps the WAL it has not received (`clusterlab verify SPEC`: WAL-HELD grows{}); \
                 `clusterlab fault SPEC {node} heal` starts it again, `clusterlab rejoin SPEC {node}` clones it again if its WAL is gone",
                n.slot.as_deref().unwrap_or_default(),
                n.upstream.as_deref().unwrap_or_default(),
                if d.plan.facts.has_slot_wal_status { "; with max_slot_wal_keep_size set, the slot is lost (wal_status lost) once it passes it" } else { ", without a limit before 13" }
            )
        }
        _ => String::new(),
    }
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
        Fault::ArchiveFail => {
            d.p.exec(n, &["clusterlab-pg", "archive-fail", "on"])?;
            if !d.st.archive_failing.iter().any(|a| a == node) {
                d.st.archive_failing.push(node.to_string());
            }
        }
        Fault::SlotHold => d.node_ctl(node, "stop")?,
        Fault::ClogLoss | Fault::WalLoss | Fault::DiskFull | Fault::Lag | Fault::Loss => unreachable!("handled in run"),
        Fault::Heal => {
            fault_files::put_back(d, node)?;
            fault_files::free_disk(d, node)?;
            if d.st.slowed.iter().any(|s| s == node) {
                d.p.netem(n, None)?;
                d.st.slowed.retain(|s| s != node);
            }
            if frozen {
                d.p.freeze(n, false)?;
                d.st.frozen.retain(|f| f != node);
            }
            if cut {
                d.c.cut(d.p.as_ref(), n, false)?;
                d.st.partitioned.retain(|x| x != node);
            }
            // Healed is taking connections again: a leader started after
            // a crash answers long before its recovery lets anyone in.
            d.node_ctl(node, "start")?;
            d.node_ctl(node, "wait-ready")?;
            if d.st.archive_failing.iter().any(|a| a == node) {
                d.p.exec(n, &["clusterlab-pg", "archive-fail", "off"])?;
                d.st.archive_failing.retain(|a| a != node);
            }
        }
    }
    Ok(())
}

/// The amount lag and loss need (and only they take): ms, or a percentage up to 100.
fn amount_for(node: &str, fault: Fault, amount: Option<u32>) -> Result<u32> {
    match (fault, amount) {
        (Fault::Lag, Some(ms)) if ms > 0 => Ok(ms),
        (Fault::Loss, Some(pct)) if (1..=100).contains(&pct) => Ok(pct),
        (Fault::Lag, _) => Err(Error::usage("lag needs the delay in milliseconds, above 0", format!("`clusterlab fault SPEC {node} lag 200`"))),
        (Fault::Loss, _) => Err(Error::usage("loss needs the percentage of packets to drop, 1 to 100", format!("`clusterlab fault SPEC {node} loss 5`"))),
        (_, Some(a)) => Err(Error::usage(format!("only lag and loss take an amount, not {} ({a})", clap::ValueEnum::to_possible_value(&fault).map(|v| v.get_name().to_string()).unwrap_or_default()), "drop the number")),
        (_, None) => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_and_loss_take_an_amount_and_nothing_else_does() {
        assert_eq!(amount_for("pg2", Fault::Lag, Some(200)).unwrap(), 200);
        assert_eq!(amount_for("pg2", Fault::Loss, Some(100)).unwrap(), 100);
        assert_eq!(amount_for("pg2", Fault::Kill, None).unwrap(), 0);
        for (fault, amount, says) in [
            (Fault::Lag, None, "lag needs the delay"),
            (Fault::Lag, Some(0), "lag needs the delay"),
            (Fault::Loss, Some(101), "loss needs the percentage"),
            (Fault::Kill, Some(5), "not kill (5)"),
        ] {
            let e = amount_for("pg2", fault, amount).unwrap_err().to_string();
            assert!(e.contains(says), "{fault:?} {amount:?}: {e}");
        }
    }
}
