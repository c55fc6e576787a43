//! Base backups kept on the host, and point-in-time restores from them plus
//! the WAL archive (PostgreSQL's TAP `backup` and `init_from_backup`).
//!
//! A backup is taken on a node by `clusterlab-pg backup` (tar format, WAL
//! included: `-X fetch` before 10, which cannot stream in tar mode), streamed
//! to `WORKDIR/backups/NAME/backup.tar` and described by `manifest.json`.
//! A restore streams it back into a node, gathers every node's WAL archive
//! (after a failover the archive is split between the leaders), and lets the
//! node recover to the target; the recovery settings per major are the
//! node script's (recovery.conf up to 11, recovery.signal from 12). The
//! restore itself is `restore.rs`.

use super::context::DrillCtx;
use crate::cluster::{Cluster, Ctx};
use crate::error::{Error, Result};
use crate::runner::{check, Mode};
use crate::state::Operation;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct BackupArgs {
    /// The node to back up (default: the current leader; a follower works too).
    #[arg(long)]
    pub node: Option<String>,
    /// The backup's name (default: backup-1, backup-2, ...).
    #[arg(long)]
    pub name: Option<String>,
}

/// What a restored node becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RestoreAs {
    /// The cluster's new leader, on a new timeline; the other nodes are
    /// fenced until `rejoin` (they are ahead of the restored history).
    Leader,
    /// A standby of the current leader, started from the backup (no target).
    Follower,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(group(clap::ArgGroup::new("target").multiple(false)))]
pub struct RestoreArgs {
    /// The backup (`clusterlab backups SPEC` lists them).
    pub backup: String,
    /// The node to restore onto.
    #[arg(long)]
    pub node: String,
    /// Recover up to this time (as PostgreSQL reads a timestamptz: '2026-11-26 10:00:00+00').
    #[arg(long, group = "target")]
    pub target_time: Option<String>,
    /// Recover up to this WAL location (10 and later).
    #[arg(long, group = "target")]
    pub target_lsn: Option<String>,
    /// Recover up to this restore point (`SELECT pg_create_restore_point('NAME')`).
    #[arg(long, group = "target")]
    pub target_name: Option<String>,
    /// Recover up to this transaction.
    #[arg(long, group = "target")]
    pub target_xid: Option<String>,
    /// What the node becomes.
    #[arg(long = "as", value_enum, default_value_t = RestoreAs::Leader)]
    pub as_: RestoreAs,
}

impl RestoreArgs {
    /// The recovery target as (kind, value): `recovery_target_KIND = 'VALUE'`.
    pub fn target(&self) -> Option<(&'static str, &str)> {
        [("time", &self.target_time), ("lsn", &self.target_lsn), ("name", &self.target_name), ("xid", &self.target_xid)]
            .into_iter()
            .find_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    }
}

/// `manifest.json` beside a backup's tar.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    pub node: String,
    pub major: String,
    pub timeline: u32,
    pub start_lsn: String,
    pub end_lsn: String,
    /// backup_label's START TIME (the node's clock).
    pub started: String,
    /// The node's now() when the backup had ended: the earliest time a
    /// restore can target.
    pub finished: String,
    pub bytes: u64,
}

impl Manifest {
    /// From `clusterlab-pg backup`'s key=value lines.
    pub(super) fn parse(name: &str, node: &str, major: &str, out: &str) -> Result<Manifest> {
        let get = |k: &str| out.lines().find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('='))).map(str::trim).map(String::from);
        let missing = |k: &str| Error::Verify(format!("the backup on {node} gave no {k}; its output was:\n{out}"));
        let wal_file = get("wal_file").ok_or_else(|| missing("start WAL file"))?;
        // A WAL file's name starts with its timeline, 8 hex digits.
        let timeline = wal_file.get(..8).and_then(|t| u32::from_str_radix(t, 16).ok()).ok_or_else(|| missing("timeline"))?;
        Ok(Manifest {
            name: name.into(),
            node: node.into(),
            major: major.into(),
            timeline,
            start_lsn: get("start_lsn").ok_or_else(|| missing("start LSN"))?,
            end_lsn: get("end_lsn").ok_or_else(|| missing("end LSN"))?,
            started: get("started").unwrap_or_default(),
            finished: get("finished").ok_or_else(|| missing("end time"))?,
            bytes: get("bytes").and_then(|b| b.parse().ok()).unwrap_or(0),
        })
    }

    pub fn summary(&self) -> String {
        format!(
            "{}: {} of {} (PostgreSQL {}), timeline {}, WAL {} to {}, finished {}",
            self.name,
            human_bytes(self.bytes),
            self.node,
            self.major,
            self.timeline,
            self.start_lsn,
            self.end_lsn,
            self.finished
        )
    }
}

fn human_bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MB", b as f64 / (1u64 << 20) as f64)
    } else {
        format!("{} kB", b / 1024)
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

pub(super) fn backups_dir(c: &Cluster) -> PathBuf {
    c.workdir.path("backups")
}

/// Every backup of this cluster, oldest first.
pub fn backups(c: &Cluster) -> Result<Vec<Manifest>> {
    let dir = backups_dir(c);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
    let mut list = Vec::new();
    for e in entries.flatten() {
        let path = e.path().join("manifest.json");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let m: Manifest = serde_json::from_str(&text).map_err(|e| Error::usage(format!("{}: {e}", path.display()), "remove that backup's directory"))?;
            let modified = e.metadata().and_then(|m| m.modified()).ok();
            list.push((modified, m));
        }
    }
    list.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
    Ok(list.into_iter().map(|(_, m)| m).collect())
}

pub(super) fn manifest(c: &Cluster, name: &str) -> Result<Manifest> {
    let backups = backups(c)?;
    backups.iter().find(|m| m.name == name).cloned().ok_or_else(|| {
        let names: Vec<&str> = backups.iter().map(|m| m.name.as_str()).collect();
        let hint = if names.is_empty() { "there is none yet: `clusterlab backup SPEC` takes one".to_string() } else { format!("name one of: {}", names.join(", ")) };
        Error::usage(format!("cluster {} has no backup `{name}`", c.plan.name), hint)
    })
}

/// The name asked for, or the first free `backup-N`; refused if taken or unsafe.
fn new_name(c: &Cluster, asked: Option<&str>) -> Result<String> {
    let existing = backups(c)?;
    let name = match asked {
        Some(n) => n.to_string(),
        None => (1..).map(|i| format!("backup-{i}")).find(|n| !existing.iter().any(|m| &m.name == n)).expect("a free name"),
    };
    if !valid_name(&name) {
        return Err(Error::usage(format!("`{name}` is not a backup name"), "use letters, digits, `.`, `_` and `-`"));
    }
    if existing.iter().any(|m| m.name == name) {
        return Err(Error::usage(format!("cluster {} has a backup `{name}` already", c.plan.name), "give another `--name`, or remove WORKDIR/backups/NAME"));
    }
    Ok(name)
}

/// `clusterlab backup`: a base backup of a node (the live leader unless
/// named), copied to the host.
pub(super) fn run(ctx: &Ctx, c: &Cluster, args: &BackupArgs) -> Result<Manifest> {
    let name = new_name(c, args.name.as_deref())?;
    if let Some(node) = &args.node {
        c.node_named(node)?;
    }
    let vagrant = c.vagrant(ctx);
    let d = DrillCtx::begin(ctx, c, &vagrant, Operation::Backup, "back up")?;
    let node = args.node.clone().unwrap_or_else(|| d.plan.leader().name.clone());
    if d.live.is_detached(&node) {
        return Err(Error::usage(format!("{node} is outside the topology (fenced)"), "back up the leader or one of its followers"));
    }
    let n = d.machine(&node);
    let dir = backups_dir(c).join(&name);
    d.progress(&format!("pg_basebackup on {node}"));
    let out = d.p.exec(n, &["clusterlab-pg", "backup", &name, &n.address])?;
    if !ctx.runner.is_real() {
        return Manifest::parse(&name, &node, &c.plan.facts.major, "wal_file=00000001\nstart_lsn=0/0\nend_lsn=0/0\nfinished=now");
    }
    let manifest = Manifest::parse(&name, &node, &c.plan.facts.major, &out.stdout)?;
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    d.progress(&format!("copying {} to the host", human_bytes(manifest.bytes)));
    let copied = check(ctx.runner, &d.p.exec_cmd(n, &["clusterlab-pg", "send-backup", &name])?, &Mode::ToFile(dir.join("backup.tar")), "is the node running? `clusterlab status SPEC`");
    if let Err(e) = copied {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    let path = dir.join("manifest.json");
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).expect("manifest serializes")).map_err(|e| Error::io(&path, e))?;
    d.progress(&format!("backup {name} of {node} in {}", dir.display()));
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_comes_from_the_node_scripts_summary() {
        let out = "start_lsn=0/2000028\nwal_file=000000030000000000000002\nstarted=2026-11-26 10:00:00 UTC\nend_lsn=0/2000130\nfinished=2026-11-26 10:00:01.5+00\nbytes=4194304\n";
        let m = Manifest::parse("b1", "pg2", "9.4", out).unwrap();
        assert_eq!((m.timeline, m.start_lsn.as_str(), m.end_lsn.as_str(), m.bytes), (3, "0/2000028", "0/2000130", 4194304));
        assert_eq!(m.summary(), "b1: 4.0 MB of pg2 (PostgreSQL 9.4), timeline 3, WAL 0/2000028 to 0/2000130, finished 2026-11-26 10:00:01.5+00");
        let e = Manifest::parse("b1", "pg2", "9.4", "start_lsn=0/1\n").unwrap_err().to_string();
        assert!(e.contains("no start WAL file"), "{e}");
    }

    #[test]
    fn backup_names_stay_inside_the_backups_directory() {
        assert!(valid_name("before-upgrade_2.1"));
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b", "x'y"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
