//! The faults about files: `clog-loss` (the commit log's newest segment
//! goes) and `wal-loss` (the WAL segment a follower needs next, or one a
//! point-in-time restore needs from the archive, goes), and `disk-full` (a
//! file takes the room left on the data directory's own filesystem). The
//! node control script sets lost files aside on its machine, so `fault NODE
//! heal` can put them back, and deletes the filling file; `reset` restores
//! the whole data directory and archive anyway. Each prints the message
//! PostgreSQL logged for it, read from the node's server log.

use super::context::DrillCtx;
use crate::error::{Error, Result};
use crate::state::Aside;
use std::time::Duration;

/// What makes `wal-loss` on this node impossible.
pub(super) fn refuse_wal_loss(d: &DrillCtx, node: &str, archive: bool) -> Result<()> {
    if archive {
        return if d.plan.archive {
            Ok(())
        } else {
            Err(Error::usage(
                format!("cluster {} does not archive WAL", d.c.plan.name),
                "set `replication.archive: true` in the spec (and `up` again) to lose a segment from the archive",
            ))
        };
    }
    let Some(upstream) = d.live.upstreams.get(node) else {
        return Err(Error::usage(
            format!("{node} follows no one: wal-loss takes the segment a follower needs from its upstream"),
            format!("name a follower, or `clusterlab fault SPEC {node} wal-loss --archive` to take one from its WAL archive"),
        ));
    };
    if *upstream != d.live.leader {
        return Err(Error::usage(
            format!("{node} follows {upstream}, itself a standby; wal-loss asks the leader which segment the slot holds"),
            "name a follower of the leader",
        ));
    }
    if d.plan.node(node).is_none_or(|n| n.slot.is_none()) {
        return Err(Error::usage(
            format!("{node} streams without a slot, so nothing makes its upstream keep the WAL it needs"),
            "use a spec with `replication.slots: true`",
        ));
    }
    Ok(())
}

/// What a fault that takes a file takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Loss {
    Clog,
    /// From the upstream's WAL directory.
    Wal,
    /// From the node's WAL archive.
    ArchivedWal,
}

/// Takes the file, records where it went, and says what PostgreSQL shows.
pub(super) fn take(d: &mut DrillCtx, node: &str, loss: Loss) -> Result<String> {
    let marks = log_offsets(d, node);
    let said = match loss {
        Loss::Clog => {
            let what = take_on(d, node, node, &["clusterlab-pg", "clog-loss"], |f| f.to_string())?;
            clog_symptom(d, node, &what, &marks)
        }
        Loss::ArchivedWal => {
            let what = take_on(d, node, node, &["clusterlab-pg", "wal-loss-archive"], |f| format!("{f} from its WAL archive"))?;
            format!(
                "{node}: WAL segment {what} is gone. A point-in-time restore from the newest base backup \
                 (`clusterlab restore SPEC BACKUP --node NODE`) stops before it, though the archive holds later segments: \
                 the restored node's log names the segment it could not restore. `clusterlab fault SPEC {node} heal` puts it back"
            )
        }
        Loss::Wal => {
            let upstream = d.live.upstreams[node].clone();
            let slot = d.plan.node(node).and_then(|n| n.slot.clone()).expect("refused otherwise");
            d.node_ctl(node, "stop")?;
            let wal_dir = d.plan.facts.wal_dir;
            let what = take_on(d, node, &upstream, &["clusterlab-pg", "wal-loss", &slot], |f| format!("{wal_dir}/{f} on {upstream}"))?;
            d.node_ctl(node, "start")?;
            let line = await_log(d, node, &marks, &["has already been removed"]);
            format!(
                "{node}: {what} is gone, the segment it needs next (its slot {slot} still points into it); {node} runs but cannot stream. \
                 Its log: {line}\nThe way back: `clusterlab rejoin SPEC {node}` clones it again from {upstream}; \
                 `clusterlab fault SPEC {node} heal` puts the segment back"
            )
        }
    };
    Ok(said)
}

/// Fills the node's own filesystem, then makes PostgreSQL need room there:
/// on a leader's data directory a temporary table grows (no WAL, and gone
/// with the session); otherwise WAL that needs a new segment, which the
/// leader writes (its pg_wal full: a PANIC) and a follower receives. Says
/// what PostgreSQL logged.
pub(super) fn fill_disk(d: &mut DrillCtx, node: &str, wal: bool) -> Result<String> {
    let disk = if wal { d.plan.wal_disk.clone() } else { d.plan.disk.clone() }.expect("refused without the spec's resources");
    let marks = log_offsets(d, node);
    let out = d.p.exec(d.machine(node), &["clusterlab-pg", "disk-full", if wal { "wal" } else { "data" }])?;
    let took = out.stdout.lines().last().unwrap_or_default().trim().to_string();
    if !d.st.filled.iter().any(|f| f == node) {
        d.st.filled.push(node.to_string());
    }
    let leader = d.live.leader.clone();
    const NEEDLES: [&str; 2] = ["No space left on device", "could not write init file"];
    let (need, line) = if leader == node && !wal {
        let probe = "CREATE TEMP TABLE clusterlab_disk_full (filler text); INSERT INTO clusterlab_disk_full SELECT repeat('x', 1000) FROM generate_series(1, 20000)";
        // It fails: that is the point, and the log says why.
        let cmd = d.p.exec_cmd(d.machine(node), &["clusterlab-pg", "psql", "-c", probe])?;
        d.ctx.runner.run(&cmd, &crate::runner::Mode::Capture)?;
        // A new session that must write the relation cache's init file fails
        // before it can run anything, and says only that; anything else that
        // needs room names the device.
        ("a table grew (a temporary one, gone with its session)".to_string(), await_log(d, node, &marks, &NEEDLES))
    } else {
        let switch = format!("SELECT {}()", d.plan.facts.switch_wal_fn);
        let (rounds, need): (Vec<&str>, String) = if leader == node {
            // A leader recycles its old segments at each checkpoint, so WAL
            // that only switches segments never needs a new file: a burst
            // does, more WAL at once than the segments there are (a bulk
            // load), rolled back so that it leaves no data behind.
            (vec![BURST], format!("a transaction wrote {BURST_MB} MB of WAL at once (rolled back: no data is left of it)"))
        } else if !wal && d.plan.wal_disk.is_some() {
            // The follower's WAL is on another filesystem: what needs room on
            // this one is a table's file, which replay extends even for a
            // transaction that rolls back.
            (vec![BURST], format!("{leader} wrote a {BURST_MB} MB table, which {node} must write too (rolled back: no data is left of it)"))
        } else {
            (vec![XID, switch.as_str(), XID], format!("{leader} switched to new WAL segments, which {node} must write"))
        };
        let line = rounds_until_logged(d, &leader, node, &marks, &NEEDLES, &rounds)?;
        (need, line.unwrap_or_else(|| nothing_logged(node)))
    };
    let what = if wal { format!("{}'s own filesystem", d.plan.facts.wal_dir) } else { "its own filesystem".to_string() };
    Ok(format!(
        "{node}: {what} ({} MiB at {}) is full: one file took the {took} bytes left. Then {need}. Its log: {line}\n\
         The way back: `clusterlab fault SPEC {node} heal` frees the room and starts PostgreSQL if it stopped",
        disk.mib, disk.mount
    ))
}

/// A transaction id, committed locally: a full synchronous standby would never confirm.
const XID: &str = "SET synchronous_commit TO local; SELECT txid_current()";
const BURST_MB: u32 = 50;
/// About BURST_MB MB of WAL in one transaction, which then rolls back (a
/// table made in it is gone with it). Not wal_level minimal's shortcut
/// that skips WAL for a table made in the same transaction: the lab's
/// level is replica (hot_standby before 9.6).
const BURST: &str = "SET synchronous_commit TO local; BEGIN; CREATE TABLE clusterlab_wal_burst AS SELECT repeat('x', 1000) AS filler FROM generate_series(1, 50000); ROLLBACK";

/// Sends ROUNDS to the leader (before 9.6 psql runs one -c: a call each)
/// until NODE's log has one of NEEDLES: WAL in new segments, in files the
/// node has to make once the ones it recycled (min_wal_size, 9.5+) are
/// used. A leader whose pg_wal is full stops answering (a PANIC), which
/// ends the rounds.
fn rounds_until_logged(d: &mut DrillCtx, leader: &str, node: &str, marks: &[String], needles: &[&str], rounds: &[&str]) -> Result<Option<String>> {
    for round in 1..=8 {
        for &sql in rounds {
            let args = ["clusterlab-pg", "psql", "-c", sql];
            if leader == node {
                // It fails once the WAL finds no room: that is the point.
                let cmd = d.p.exec_cmd(d.machine(leader), &args)?;
                d.ctx.runner.run(&cmd, &crate::runner::Mode::Capture)?;
            } else {
                d.p.exec(d.machine(leader), &args)?;
            }
        }
        let line = find_log(d, node, marks, needles, Duration::from_secs(if round == 8 { 15 } else { 2 }));
        if line.is_some() {
            return Ok(line);
        }
    }
    Ok(None)
}

/// Frees the room `disk-full` took on the node, if it took any.
pub(super) fn free_disk(d: &mut DrillCtx, node: &str) -> Result<()> {
    if d.st.filled.iter().any(|f| f == node) {
        d.p.exec(d.machine(node), &["clusterlab-pg", "disk-free"])?;
        d.st.filled.retain(|f| f != node);
    }
    Ok(())
}

/// A leader's start fails at the first commit status it reads; a standby's
/// recovery reads a missing segment as zeroes and goes on, so it starts, and
/// transactions older than its last restartpoint (whose commit records it
/// does not replay again) then look uncommitted where no hint bit says
/// otherwise: quietly wrong answers, which is worse.
fn clog_symptom(d: &DrillCtx, node: &str, what: &str, marks: &[String]) -> String {
    let heal = format!("`clusterlab fault SPEC {node} heal` puts the segment back");
    if d.live.upstreams.contains_key(node) {
        let line = await_log(d, node, marks, &["reading as zeroes"]);
        return format!(
            "{node}: {what} is gone, after a restartpoint and a clean stop. A standby starts anyway: recovery reads the missing segment \
             as zeroes, so rows of transactions from before the restartpoint can look uncommitted on {node}. Its log: {line}\n\
             The way back: `clusterlab rejoin SPEC {node}` clones it again; {heal}"
        );
    }
    let line = await_log(d, node, marks, &["could not access status of transaction"]);
    let back = if d.live.leader == node {
        format!("a follower has its own commit log: `clusterlab promote SPEC FOLLOWER`, then `clusterlab rejoin SPEC {node}` clones {node} again")
    } else {
        format!("`clusterlab rejoin SPEC {node}` clones it again")
    };
    format!(
        "{node}: {what} is gone, after a checkpoint and a clean stop (no WAL replay can write it again), and PostgreSQL does not start. \
         Its log: {line}\nThe way back: {back}; {heal}"
    )
}

/// Runs the script verb on `on`, whose last output line names the file, and records it.
fn take_on(d: &mut DrillCtx, node: &str, on: &str, verb: &[&str], what: impl Fn(&str) -> String) -> Result<String> {
    let out = d.p.exec(d.machine(on), verb)?;
    let file = out.stdout.lines().last().unwrap_or_default().trim().to_string();
    let what = what(&file);
    d.st.aside.push(Aside { node: node.to_string(), on: on.to_string(), what: what.clone() });
    Ok(what)
}

/// Puts back what faults on `node` took, wherever it is kept. A machine's
/// script puts back everything it keeps, so its other records go too.
pub(super) fn put_back(d: &mut DrillCtx, node: &str) -> Result<()> {
    let mut machines: Vec<String> = d.st.aside.iter().filter(|a| a.node == node).map(|a| a.on.clone()).collect();
    machines.dedup();
    for on in &machines {
        d.p.exec(d.machine(on), &["clusterlab-pg", "put-back"])?;
    }
    d.st.aside.retain(|a| a.node != node && !machines.contains(&a.on));
    Ok(())
}

/// Where the node's server logs end now (nothing if it cannot be asked).
fn log_offsets(d: &DrillCtx, node: &str) -> Vec<String> {
    crate::server_log::mark(|args| d.p.exec(d.machine(node), args)).unwrap_or_default()
}

/// The first line the node logged after `marks` that contains one of
/// `needles`, waiting up to 15 s: the message a DBA would find.
fn await_log(d: &DrillCtx, node: &str, marks: &[String], needles: &[&str]) -> String {
    find_log(d, node, marks, needles, Duration::from_secs(15)).unwrap_or_else(|| nothing_logged(node))
}

fn nothing_logged(node: &str) -> String {
    format!("(nothing about it within 15 s; `clusterlab ssh SPEC {node}` and read /var/log/postgresql)")
}

/// The same, waiting up to `within`; none if nothing matched.
fn find_log(d: &DrillCtx, node: &str, marks: &[String], needles: &[&str], within: Duration) -> Option<String> {
    let run = |args: &[&str]| d.p.exec(d.machine(node), args);
    let read = crate::server_log::wait(node, run, marks, within, |text| {
        let mut lines = text.lines().skip_while(|l| !needles.iter().any(|n| l.contains(n)));
        let line = lines.next()?;
        // PostgreSQL's DETAIL line (the file it could not open) belongs to it.
        let detail = lines.next().filter(|l| l.contains("DETAIL:")).map(|l| format!(" / \"{}\"", l.trim())).unwrap_or_default();
        Some(format!("\"{}\"{detail}", line.trim()))
    });
    read.found
}
