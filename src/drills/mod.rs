//! The drills a DBA comes to the lab for, one file each: promote a follower
//! or switch over (`promote.rs`), bring a former leader back (`rejoin.rs`,
//! both over `resync.rs`), faults (`fault.rs`), base backups (`backup.rs`)
//! and point-in-time restores (`restore.rs`), and acknowledged writes across
//! a failure (`writes.rs`). Each is a function over one drill context
//! (`context.rs`: lock, state, live topology, provider), an ordered list of
//! steps like `up`, recording its phase; what differs per major comes from
//! the facts, through the node control script `clusterlab-pg` that is
//! rendered per major.
//!
//! A drill that changes who leads and who follows whom returns the next live
//! topology (`crate::topology`); `Cluster` keeps it in state.json, `verify`
//! checks it instead of the spec's, `status` shows it, and `reset` brings
//! back the spec's topology (and lifts every fault).

mod backup;
mod context;
mod fault;
mod fault_files;
mod promote;
mod rejoin;
mod restore;
mod resync;
mod upgrade;
mod upgrade_check;
mod writes;

pub use backup::{backups, BackupArgs, Manifest, RestoreArgs};
pub use fault::{Fault, FaultArgs};
pub use upgrade::{Method as UpgradeMethod, UpgradeArgs};
pub use writes::{worker as writes_worker, WritesAction, WritesArgs};

/// The backups drills leave beside a cluster, removed: a matrix cell that
/// runs on a cluster another cell used starts from the cluster's known state
/// and nothing else (a backup of a state that `reset` undid would also clash
/// by name with the cell's own). `reset` itself stops a running writer.
pub fn clear_leftovers(c: &crate::cluster::Cluster) {
    let _ = std::fs::remove_dir_all(backup::backups_dir(c));
}

use crate::cluster::{Cluster, Ctx};
use crate::error::Result;
use promote::Handover;

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
    /// Upgrade every node to a newer major; `--check` only says what would block it.
    Upgrade(UpgradeArgs),
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
            Drill::Promote(a) => promote::run(ctx, c, &a.node, if a.keep_old_leader { Handover::Split } else { Handover::Failover }).map(|_| String::new()),
            Drill::Switchover(a) => promote::run(ctx, c, &a.node, Handover::Switchover).map(|_| String::new()),
            Drill::Rejoin(a) => rejoin::run(ctx, c, &a.node).map(|_| String::new()),
            Drill::Fault(a) => fault::run(ctx, c, a),
            Drill::Backup(a) => backup::run(ctx, c, a).map(|m| m.summary()),
            Drill::Restore(a) => restore::run(ctx, c, a),
            Drill::Writes(a) => writes::run(ctx, c, a),
            Drill::Upgrade(a) => upgrade::run(ctx, c, a),
        }
    }
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
    fn drill_steps_parse_as_the_command_line_writes_them() {
        assert_eq!(Drill::parse("promote pg2"), Ok(Drill::Promote(PromoteArgs { node: "pg2".into(), keep_old_leader: false })));
        assert_eq!(Drill::parse(" fault  pg1 kill "), Ok(Drill::Fault(FaultArgs { node: "pg1".into(), fault: Fault::Kill, amount: None, archive: false, wal: false })));
        assert_eq!(Drill::parse("switchover pg1"), Ok(Drill::Switchover(NodeArg { node: "pg1".into() })));
        let Ok(Drill::Restore(r)) = Drill::parse("restore b1 --node pg1 --target-time '2026-11-26 10:00:00+00'") else { panic!("restore parses") };
        assert_eq!(r.target(), Some(("time", "2026-11-26 10:00:00+00")), "a quoted value stays one word");
        let Ok(Drill::Writes(w)) = Drill::parse("writes check --strict --json") else { panic!("writes check parses") };
        assert!(w.action == WritesAction::Check && w.strict && w.json);
        assert_eq!(Drill::parse("fault pg1 archive-fail"), Ok(Drill::Fault(FaultArgs { node: "pg1".into(), fault: Fault::ArchiveFail, amount: None, archive: false, wal: false })));
        assert_eq!(Drill::parse("fault pg3 slot-hold"), Ok(Drill::Fault(FaultArgs { node: "pg3".into(), fault: Fault::SlotHold, amount: None, archive: false, wal: false })));
        assert_eq!(Drill::parse("fault pg2 lag 200"), Ok(Drill::Fault(FaultArgs { node: "pg2".into(), fault: Fault::Lag, amount: Some(200), archive: false, wal: false })));
        assert_eq!(Drill::parse("fault pg1 wal-loss --archive"), Ok(Drill::Fault(FaultArgs { node: "pg1".into(), fault: Fault::WalLoss, amount: None, archive: true, wal: false })));
        assert_eq!(Drill::parse("fault pg1 disk-full --wal"), Ok(Drill::Fault(FaultArgs { node: "pg1".into(), fault: Fault::DiskFull, amount: None, archive: false, wal: true })));
        let Ok(Drill::Upgrade(u)) = Drill::parse("upgrade --to 18 --method logical --check") else { panic!("upgrade parses") };
        assert!(u.to == "18" && u.method == UpgradeMethod::Logical && u.check);
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
        let run = |line: &str| Drill::parse(line).unwrap().run(&ctx, &c).unwrap_err().to_string();
        let e = run("promote nope");
        assert!(e.contains("no node `nope`"), "{e}");
        let e = run("promote pg2");
        assert!(e.contains("is not up"), "{e}");
        let e = run("rejoin pg1");
        assert!(e.contains("is not up"), "{e}");
    }
}
