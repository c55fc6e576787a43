//! Base backups kept on the host, and point-in-time restores from them plus
//! the WAL archive (PostgreSQL's TAP `backup` and `init_from_backup`).
//!
//! A backup is taken on a node by `clusterlab-pg backup` (tar format, WAL
//! included: `-X fetch` before 10, which cannot stream in tar mode), streamed
//! to `WORKDIR/backups/NAME/backup.tar` and described by `manifest.json`.
//! A restore streams it back into a node, gathers every node's WAL archive
//! (after a failover the archive is split between the leaders), and lets the
//! node recover to the target; the recovery settings per major are the
//! node script's (recovery.conf up to 11, recovery.signal from 12).

use super::{follow, Live};
use crate::cluster::{node_ctl, Cluster, Ctx};
use crate::error::{Error, Result};
use crate::runner::{check, Mode};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
    fn parse(name: &str, node: &str, major: &str, out: &str) -> Result<Manifest> {
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

impl Cluster {
    fn backups_dir(&self) -> PathBuf {
        self.workdir.path("backups")
    }

    /// Every backup of this cluster, oldest first.
    pub fn backups(&self) -> Result<Vec<Manifest>> {
        let dir = self.backups_dir();
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

    fn manifest(&self, name: &str) -> Result<Manifest> {
        let backups = self.backups()?;
        backups.iter().find(|m| m.name == name).cloned().ok_or_else(|| {
            let names: Vec<&str> = backups.iter().map(|m| m.name.as_str()).collect();
            let hint = if names.is_empty() { "there is none yet: `clusterlab backup SPEC` takes one".to_string() } else { format!("name one of: {}", names.join(", ")) };
            Error::usage(format!("cluster {} has no backup `{name}`", self.plan.name), hint)
        })
    }

    /// `clusterlab backup`: a base backup of a node, copied to the host.
    pub fn backup(&self, ctx: &Ctx, args: &BackupArgs) -> Result<Manifest> {
        let start = Instant::now();
        let live_plan = self.current_plan()?;
        let node = args.node.clone().unwrap_or_else(|| live_plan.leader().name.clone());
        let existing = self.backups()?;
        let name = match &args.name {
            Some(n) => n.clone(),
            None => (1..).map(|i| format!("backup-{i}")).find(|n| !existing.iter().any(|m| &m.name == n)).expect("a free name"),
        };
        if !valid_name(&name) {
            return Err(Error::usage(format!("`{name}` is not a backup name"), "use letters, digits, `.`, `_` and `-`"));
        }
        if existing.iter().any(|m| m.name == name) {
            return Err(Error::usage(format!("cluster {} has a backup `{name}` already", self.plan.name), "give another `--name`, or remove WORKDIR/backups/NAME"));
        }
        let (_lock, st, live) = self.begin("backup", "back up", &node)?;
        if live.detached.contains(&node) {
            return Err(Error::usage(format!("{node} is outside the topology (fenced)"), "back up the leader or one of its followers"));
        }
        let vagrant = self.vagrant(ctx);
        let p = self.provider(ctx, &vagrant);
        let n = self.plan.node(&node).expect("checked by begin");
        let dir = self.backups_dir().join(&name);
        ctx.progress(start, &format!("pg_basebackup on {node}"));
        let out = p.exec(n, &["clusterlab-pg", "backup", &name, &n.address])?;
        if !ctx.runner.is_real() {
            return Ok(Manifest::parse(&name, &node, &self.plan.facts.major, "wal_file=00000001\nstart_lsn=0/0\nend_lsn=0/0\nfinished=now")?);
        }
        let manifest = Manifest::parse(&name, &node, &self.plan.facts.major, &out.stdout)?;
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        ctx.progress(start, &format!("copying {} to the host", human_bytes(manifest.bytes)));
        let copied = check(ctx.runner, &p.exec_cmd(n, &["clusterlab-pg", "send-backup", &name])?, &Mode::ToFile(dir.join("backup.tar")), "is the node running? `clusterlab status SPEC`");
        if let Err(e) = copied {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        let path = dir.join("manifest.json");
        std::fs::write(&path, serde_json::to_string_pretty(&manifest).expect("manifest serializes")).map_err(|e| Error::io(&path, e))?;
        drop(st);
        ctx.progress(start, &format!("backup {name} of {node} in {}", dir.display()));
        Ok(manifest)
    }

    /// `clusterlab restore`: a node from a backup, recovered from the WAL
    /// archive up to a target, as the new leader (the others fenced until
    /// `rejoin`) or as a standby of the current leader. What it restored.
    pub fn restore(&self, ctx: &Ctx, args: &RestoreArgs) -> Result<String> {
        let start = Instant::now();
        let node = args.node.as_str();
        self.node_or_err(node)?;
        let m = self.manifest(&args.backup)?;
        let target = args.target();
        if m.major != self.plan.facts.major {
            return Err(Error::usage(format!("backup {} is of PostgreSQL {}, this cluster runs {}", m.name, m.major, self.plan.facts.major), "restore a backup of this cluster"));
        }
        if args.as_ == RestoreAs::Follower && target.is_some() {
            return Err(Error::usage("a standby that stops at a recovery target cannot follow the leader", "drop the --target-* option, or restore `--as leader`"));
        }
        if matches!(target, Some(("lsn", _))) && !self.plan.facts.has_recovery_target_lsn {
            return Err(Error::usage(format!("PostgreSQL {} has no recovery_target_lsn (it came in 10)", self.plan.facts.major), "use --target-time, --target-name or --target-xid"));
        }
        if target.is_some() && !self.plan.archive {
            return Err(Error::usage(
                format!("point-in-time recovery needs the WAL archive, and cluster {} does not archive", self.plan.name),
                "set `replication: {archive: true}` in the spec and `clusterlab up` it again; without a target, restore brings back the backup itself",
            ));
        }
        let (_lock, mut st, live) = self.begin("restore", "restore", node)?;
        let live_plan = self.live_plan(&live)?;
        let leader = live_plan.leader();
        if args.as_ == RestoreAs::Follower && leader.name == node {
            return Err(Error::usage(format!("{node} is the leader; it cannot follow itself"), "restore onto a follower, or `--as leader`"));
        }
        let vagrant = self.vagrant(ctx);
        let p = self.provider(ctx, &vagrant);
        let machine = |n: &str| self.plan.node(n).expect("nodes of the spec");
        let password = self.workdir.lab_password()?;
        if let Some(t) = target {
            self.check_target(leader, &password, &m, t)?;
        }
        let work = self.workdir.path("restore");
        std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
        let sources: Vec<&str> = if self.plan.archive { self.plan.nodes.iter().map(|n| n.name.as_str()).collect() } else { Vec::new() };
        let how = self.recorded(&mut st, |st| {
            st.enter(&self.workdir, "restore", "restoring", Some(node))?;
            if self.plan.archive && !live.detached.contains(&leader.name) {
                ctx.progress(start, &format!("archiving {}'s current WAL segment", leader.name));
                if let Err(e) = p.exec(machine(&leader.name), &["clusterlab-pg", "switch-wal"]) {
                    // A crashed leader archived what it could; the rest is gone, as it would be in production.
                    tracing::warn!("could not archive {}'s current WAL ({e}); restoring from what is archived", leader.name);
                }
            }
            p.exec(machine(node), &["clusterlab-pg", "clear-archive"])?;
            for src in &sources {
                let tar = work.join(format!("archive-{src}.tar"));
                let got = check(ctx.runner, &p.exec_cmd(machine(src), &["clusterlab-pg", "send-archive"])?, &Mode::ToFile(tar.clone()), "");
                match got {
                    Ok(_) => {
                        check(ctx.runner, &p.exec_with_input_cmd(machine(node), &["clusterlab-pg", "receive-archive"])?, &Mode::FromFile(tar.clone()), "is the node running?")?;
                    }
                    Err(e) => tracing::warn!("no WAL archive from {src} ({e})"),
                }
                let _ = std::fs::remove_file(&tar);
            }
            ctx.progress(start, &format!("unpacking backup {} into {node}", m.name));
            let tar = self.backups_dir().join(&m.name).join("backup.tar");
            check(ctx.runner, &p.exec_with_input_cmd(machine(node), &["clusterlab-pg", "unpack-backup"])?, &Mode::FromFile(tar), "is the node running? `clusterlab status SPEC`")?;
            let mut next = live.clone();
            let what = match args.as_ {
                RestoreAs::Leader => {
                    for other in self.plan.nodes.iter().filter(|n| n.name != node && !live.detached.contains(&n.name)) {
                        ctx.progress(start, &format!("fencing {} (it is ahead of the restored history)", other.name));
                        if let Err(e) = node_ctl(p.as_ref(), other, "fence") {
                            tracing::warn!("could not fence {} ({e}); it stays outside the topology", other.name);
                        }
                    }
                    let to = target.map(|(k, v)| format!("{k} {v}")).unwrap_or_else(|| "the end of the archive".into());
                    ctx.progress(start, &format!("recovering {node} to {to}"));
                    let mut cmd = vec!["clusterlab-pg", "recover"];
                    if let Some((k, v)) = target {
                        cmd.extend([k, v]);
                    }
                    p.exec(machine(node), &cmd)?;
                    next = Live { leader: node.to_string(), upstreams: Default::default(), detached: self.plan.nodes.iter().filter(|n| n.name != node).map(|n| n.name.clone()).collect() };
                    format!("{node} leads, restored from {} up to {to}; the other nodes are fenced: `clusterlab rejoin SPEC NODE` brings each back", m.name)
                }
                RestoreAs::Follower => {
                    next.detached.retain(|d| d != node);
                    next.upstreams.insert(node.to_string(), leader.name.clone());
                    let plan = self.live_plan(&next)?;
                    let me = plan.node(node).expect("the restored node is in the live plan");
                    if let Some(slot) = &me.slot {
                        p.exec(machine(&leader.name), &["clusterlab-pg", "slot", slot])?;
                    }
                    ctx.progress(start, &format!("{node} follows {} from backup {}", leader.name, m.name));
                    follow(p.as_ref(), machine(node), me)?;
                    format!("{node} follows {}, started from backup {}", leader.name, m.name)
                }
            };
            self.sync_names(p.as_ref(), &self.live_plan(&next)?)?;
            st.live = Some(next);
            st.enter(&self.workdir, "restore", "ready", None)?;
            Ok(what)
        })?;
        self.verify_and_print(ctx, Duration::from_secs(60), false)?;
        ctx.progress(start, &how);
        Ok(how)
    }

    /// Refuses a target the backup cannot reach: before the backup ended, or
    /// after now. PostgreSQL itself reads the value, so its format is the one
    /// the user will meet in recovery.conf.
    fn check_target(&self, leader: &crate::plan::Node, password: &str, m: &Manifest, (kind, value): (&str, &str)) -> Result<()> {
        let f = &self.plan.facts;
        let (sql, what, type_) = match kind {
            "time" => ("SELECT $1::text::timestamptz < $2::text::timestamptz, $1::text::timestamptz > now(), now()::text".to_string(), &m.finished, "time"),
            "lsn" => (format!("SELECT $1::text::pg_lsn < $2::text::pg_lsn, $1::text::pg_lsn > {}(), {}()::text", f.current_lsn_fn, f.current_lsn_fn), &m.end_lsn, "WAL location"),
            "xid" => {
                return value.parse::<u64>().map(drop).map_err(|_| Error::usage(format!("--target-xid `{value}` is not a transaction id"), "give a number, e.g. from `SELECT txid_current()`"));
            }
            _ => return Ok(()),
        };
        let mut client = match crate::verify::connect(leader, password, &self.plan, Duration::from_secs(5)) {
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

    fn restore(c: &Cluster, line: &str) -> String {
        let runner = crate::runner::DryRun;
        let ctx = Ctx { runner: &runner, quiet: true, templates: None };
        let Ok(super::super::Drill::Restore(args)) = super::super::Drill::parse(line) else { panic!("{line} parses") };
        c.restore(&ctx, &args).unwrap_err().to_string()
    }

    fn with_backup(text: &str, major: &str) -> Cluster {
        let c = super::super::tests::cluster(text);
        let dir = c.backups_dir().join("b1");
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

    #[test]
    fn backup_names_stay_inside_the_backups_directory() {
        assert!(valid_name("before-upgrade_2.1"));
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b", "x'y"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
