//! `restore`: a node from a backup (`backup.rs`), recovered from the WAL
//! archive up to a target, as the new leader (the others fenced until
//! `rejoin`) or as a standby of the current leader
//! (https://www.postgresql.org/docs/current/continuous-archiving.html).

use super::backup::{backups_dir, manifest, Manifest, RestoreArgs, RestoreAs};
use super::context::DrillCtx;
use crate::cluster::{Cluster, Ctx};
use crate::error::{Error, Result};
use crate::plan::Node;
use crate::runner::{check, Mode};
use crate::state::{Operation, Phase};
use crate::topology::Topology;
use std::path::Path;
use std::time::Duration;

/// What it restored.
pub(super) fn run(ctx: &Ctx, c: &Cluster, args: &RestoreArgs) -> Result<String> {
    let node = args.node.as_str();
    c.node_named(node)?;
    let m = manifest(c, &args.backup)?;
    refuse(c, args, &m)?;
    let vagrant = c.vagrant(ctx);
    let mut d = DrillCtx::begin(ctx, c, &vagrant, Operation::Restore, "restore")?;
    let leader = d.plan.leader().clone();
    if args.as_ == RestoreAs::Follower && leader.name == node {
        return Err(Error::usage(format!("{node} is the leader; it cannot follow itself"), "restore onto a follower, or `--as leader`"));
    }
    if let Some(t) = args.target() {
        check_target(c, &leader, &c.workdir.lab_password()?, &m, t)?;
    }
    let (next, how) = d.recorded(|d| {
        d.enter(Operation::Restore, Phase::Restoring, Some(node))?;
        unpack(d, node, &leader.name, &m)?;
        let (next, how) = match args.as_ {
            RestoreAs::Leader => (Topology::alone(node, &d.c.plan, d.live.major.clone()), recover_as_leader(d, node, args, &m)?),
            RestoreAs::Follower => follow_leader(d, node, &m)?,
        };
        d.settle(Operation::Restore, &next)?;
        Ok((next, how))
    })?;
    d.verify(&next)?;
    d.progress(&how);
    Ok(how)
}

/// Restores that cannot work, refused before anything runs.
fn refuse(c: &Cluster, args: &RestoreArgs, m: &Manifest) -> Result<()> {
    let target = args.target();
    let facts = &c.plan.facts;
    if m.major != facts.major {
        return Err(Error::usage(format!("backup {} is of PostgreSQL {}, this cluster runs {}", m.name, m.major, facts.major), "restore a backup of this cluster"));
    }
    if args.as_ == RestoreAs::Follower && target.is_some() {
        return Err(Error::usage("a standby that stops at a recovery target cannot follow the leader", "drop the --target-* option, or restore `--as leader`"));
    }
    if matches!(target, Some(("lsn", _))) && !facts.has_recovery_target_lsn {
        return Err(Error::usage(format!("PostgreSQL {} has no recovery_target_lsn (it came in 10)", facts.major), "use --target-time, --target-name or --target-xid"));
    }
    if target.is_some() && !c.plan.archive {
        return Err(Error::usage(
            format!("point-in-time recovery needs the WAL archive, and cluster {} does not archive", c.plan.name),
            "set `replication: {archive: true}` in the spec and `clusterlab up` it again; without a target, restore brings back the backup itself",
        ));
    }
    Ok(())
}

/// The leader's current WAL archived, every node's archive gathered on NODE
/// (after a failover the archive is split between the leaders), the backup
/// unpacked into NODE.
fn unpack(d: &DrillCtx, node: &str, leader: &str, m: &Manifest) -> Result<()> {
    let archive = d.c.plan.archive;
    if archive && !d.live.is_detached(leader) {
        d.progress(&format!("archiving {leader}'s current WAL segment"));
        if let Err(e) = d.p.exec(d.machine(leader), &["clusterlab-pg", "switch-wal"]) {
            // A crashed leader archived what it could; the rest is gone, as it would be in production.
            tracing::warn!("could not archive {leader}'s current WAL ({e}); restoring from what is archived");
        }
    }
    d.p.exec(d.machine(node), &["clusterlab-pg", "clear-archive"])?;
    let work = d.c.workdir.path("restore");
    std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    if archive {
        for src in &d.c.plan.nodes {
            gather_archive(d, &src.name, node, &work)?;
        }
    }
    d.progress(&format!("unpacking backup {} into {node}", m.name));
    let tar = backups_dir(d.c).join(&m.name).join("backup.tar");
    check(d.ctx.runner, &d.p.exec_with_input_cmd(d.machine(node), &["clusterlab-pg", "unpack-backup"])?, &Mode::FromFile(tar), "is the node running? `clusterlab status SPEC`")?;
    Ok(())
}

/// SRC's WAL archive through the host into NODE's; a node without one is skipped.
fn gather_archive(d: &DrillCtx, src: &str, node: &str, work: &Path) -> Result<()> {
    let tar = work.join(format!("archive-{src}.tar"));
    let got = check(d.ctx.runner, &d.p.exec_cmd(d.machine(src), &["clusterlab-pg", "send-archive"])?, &Mode::ToFile(tar.clone()), "");
    match got {
        Ok(_) => {
            check(d.ctx.runner, &d.p.exec_with_input_cmd(d.machine(node), &["clusterlab-pg", "receive-archive"])?, &Mode::FromFile(tar.clone()), "is the node running?")?;
        }
        Err(e) => tracing::warn!("no WAL archive from {src} ({e})"),
    }
    let _ = std::fs::remove_file(&tar);
    Ok(())
}

/// The others fenced (they are ahead of the restored history), NODE
/// recovered to the target and promoted.
fn recover_as_leader(d: &DrillCtx, node: &str, args: &RestoreArgs, m: &Manifest) -> Result<String> {
    for other in d.c.plan.nodes.iter().filter(|n| n.name != node && !d.live.is_detached(&n.name)) {
        d.progress(&format!("fencing {} (it is ahead of the restored history)", other.name));
        if let Err(e) = d.node_ctl(&other.name, "fence") {
            tracing::warn!("could not fence {} ({e}); it stays outside the topology", other.name);
        }
    }
    let target = args.target();
    let to = target.map(|(k, v)| format!("{k} {v}")).unwrap_or_else(|| "the end of the archive".into());
    d.progress(&format!("recovering {node} to {to}"));
    let mut cmd = vec!["clusterlab-pg", "recover"];
    if let Some((k, v)) = target {
        cmd.extend([k, v]);
    }
    d.p.exec(d.machine(node), &cmd)?;
    Ok(format!("{node} leads, restored from {} up to {to}; the other nodes are fenced: `clusterlab rejoin SPEC NODE` brings each back", m.name))
}

fn follow_leader(d: &DrillCtx, node: &str, m: &Manifest) -> Result<(Topology, String)> {
    let next = d.live.rejoined(node);
    let plan = d.c.live_plan(&next)?;
    let me = plan.node(node).expect("the restored node is in the live plan");
    let leader = &next.leader;
    if let Some(slot) = &me.slot {
        d.p.exec(d.machine(leader), &["clusterlab-pg", "slot", slot])?;
    }
    d.progress(&format!("{node} follows {leader} from backup {}", m.name));
    d.follow(me)?;
    let how = format!("{node} follows {leader}, started from backup {}", m.name);
    Ok((next, how))
}

/// Refuses a target the backup cannot reach: before the backup ended, or
/// after now. PostgreSQL itself reads the value, so its format is the one
/// the user will meet in recovery.conf.
fn check_target(c: &Cluster, leader: &Node, password: &str, m: &Manifest, (kind, value): (&str, &str)) -> Result<()> {
    let f = &c.plan.facts;
    let (sql, what, type_) = match kind {
        "time" => ("SELECT $1::text::timestamptz < $2::text::timestamptz, $1::text::timestamptz > now(), now()::text".to_string(), &m.finished, "time"),
        "lsn" => (format!("SELECT $1::text::pg_lsn < $2::text::pg_lsn, $1::text::pg_lsn > {}(), {}()::text", f.current_lsn_fn, f.current_lsn_fn), &m.end_lsn, "WAL location"),
        "xid" => {
            return value.parse::<u64>().map(drop).map_err(|_| Error::usage(format!("--target-xid `{value}` is not a transaction id"), "give a number, e.g. from `SELECT txid_current()`"));
        }
        _ => return Ok(()),
    };
    let mut client = match crate::verify::connect(leader, password, &c.plan, Duration::from_secs(5)) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("cannot check the target against the leader {} ({e}); PostgreSQL will", leader.name);
            return Ok(());
        }
    };
    let row = client.query_one(sql.as_str(), &[&value, what]).map_err(|e| {
        let why = crate::verify::pg_message(&e);
        Error::usage(format!("--target-{kind} `{value}` is not a {type_} PostgreSQL reads: {why}"), "e.g. '2026-11-26 10:00:00+00' or '0/3000060'")
    })?;
    let (before, after, now): (bool, bool, String) = (row.get(0), row.get(1), row.get(2));
    if before {
        return Err(Error::usage(format!("--target-{kind} {value} is before backup {} ended ({what})", m.name), "target a later point, or restore from an older backup"));
    }
    if after {
        return Err(Error::usage(format!("--target-{kind} {value} is after the leader's present ({now})"), "target a point that has happened"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restore(c: &Cluster, line: &str) -> String {
        let runner = crate::runner::DryRun;
        let ctx = Ctx { runner: &runner, quiet: true, templates: None };
        let Ok(super::super::Drill::Restore(args)) = super::super::Drill::parse(line) else { panic!("{line} parses") };
        run(&ctx, c, &args).unwrap_err().to_string()
    }

    fn with_backup(text: &str, major: &str) -> Cluster {
        let c = super::super::tests::cluster(text);
        let dir = backups_dir(&c).join("b1");
        std::fs::create_dir_all(&dir).unwrap();
        let m = Manifest::parse("b1", "pg1", major, "wal_file=00000001\nstart_lsn=0/2000028\nend_lsn=0/2000100\nfinished=2026-11-26 10:00:00+00\n").unwrap();
        std::fs::write(dir.join("manifest.json"), serde_json::to_string(&m).unwrap()).unwrap();
        c
    }

    #[test]
    fn restores_that_cannot_work_are_refused_before_anything_runs() {
        let archiving = "name: c\nversion: \"9.6\"\nprovider: docker\nreplication:\n  archive: true\n";
        let c = with_backup(archiving, "9.6");
        assert!(restore(&c, "restore b9 --node pg2").contains("has no backup `b9`"));
        assert!(restore(&c, "restore b1 --node pg9").contains("no node `pg9`"));
        assert!(restore(&c, "restore b1 --node pg2 --target-lsn 0/3000000").contains("no recovery_target_lsn"));
        assert!(restore(&c, "restore b1 --node pg2 --as follower --target-name x").contains("cannot follow the leader"));
        assert!(restore(&c, "restore b1 --node pg2 --target-name x").contains("is not up"), "a good request gets as far as the cluster");
        let c = with_backup("name: c\nversion: \"15\"\nprovider: docker\n", "15");
        assert!(restore(&c, "restore b1 --node pg2 --target-time '2026-11-26 11:00:00+00'").contains("needs the WAL archive"));
        let c = with_backup(archiving, "15");
        assert!(restore(&c, "restore b1 --node pg2").contains("is of PostgreSQL 15, this cluster runs 9.6"));
    }

}
