//! What verify found, per node: as JSON (`--json`) or a table.
//!
//! `ok` is false exactly when some node has a problem: replication does not
//! work (a follower not streaming, a slot inactive or missing, the test row
//! not arriving). Warnings (a failing archiver, a slot lost or holding much
//! WAL, an unused slot, disk use a node did not report) are named in the
//! table and the JSON but leave `ok` and the exit code alone: the cluster
//! replicates, it needs care.

use super::metrics::{format_bytes, Archiver, Slot};
use crate::error::{Error, Result};
use crate::plan::Role;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, Default)]
pub struct NodeReport {
    pub node: String,
    pub role: Role,
    pub upstream: Option<String>,
    pub address: String,
    pub in_recovery: Option<bool>,
    /// The timeline this node is on (a standby's on 9.6+ only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<u32>,
    /// `state` in the upstream's pg_stat_replication (followers only).
    pub streaming: Option<String>,
    pub sync_state: Option<String>,
    /// The slot this follower streams through on its upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    pub slot_active: Option<bool>,
    /// Followers: the upstream's WAL position minus this node's replay
    /// position, in bytes, as the upstream's pg_stat_replication has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_bytes: Option<u64>,
    /// Followers, 10+: `replay_lag` in seconds (none once an idle standby caught up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
    /// Milliseconds until the leader's test row was readable here.
    pub row_ms: Option<u64>,
    /// The physical slots this node keeps (for its followers, or left over).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<Slot>,
    /// Where this node archives WAL: its pg_stat_archiver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archiver: Option<Archiver>,
    /// Bytes in this node's WAL directory (pg_wal; pg_xlog before 10): every
    /// regular file from 10, the WAL segments before (`metrics::disk_sql`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_dir_bytes: Option<u64>,
    /// Bytes of this node's databases, all but template0 (`pg_database_size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub databases_bytes: Option<u64>,
    /// Replication does not work here: `ok` is false.
    pub problems: Vec<String>,
    /// Needs care, replication works: `ok` stays.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub cluster: String,
    pub ok: bool,
    pub elapsed_ms: u64,
    pub nodes: Vec<NodeReport>,
    /// A test row was written (verify); not when `status` only looked.
    #[serde(skip)]
    pub row_written: bool,
}

impl Report {
    pub fn table(&self) -> String {
        let header = ["NODE", "ROLE", "UPSTREAM", "RECOVERY", "TL", "STREAMING", "SLOT", "WAL-HELD", "LAG", "ROW", "WAL-DIR/DBS", "PROBLEMS"];
        let mut rows = vec![header.map(String::from).to_vec()];
        for n in &self.nodes {
            let yn = |b: Option<bool>, y: &str, no: &str| b.map(|b| if b { y } else { no }).unwrap_or("-").to_string();
            let bytes = |b: Option<u64>| b.map_or_else(|| "-".into(), format_bytes);
            rows.push(vec![
                n.node.clone(),
                n.role.as_str().to_string(),
                n.upstream.clone().unwrap_or_else(|| "-".into()),
                yn(n.in_recovery, "yes", "no"),
                n.timeline.map_or_else(|| "-".into(), |t| t.to_string()),
                match (&n.streaming, &n.sync_state) {
                    (Some(s), Some(sync)) if sync != "async" && !sync.is_empty() => format!("{s} ({sync})"),
                    (Some(s), _) => s.clone(),
                    _ => "-".into(),
                },
                yn(n.slot_active, "active", "inactive"),
                bytes(self.slot_of(n).and_then(|s| s.wal_held_bytes)),
                bytes(n.lag_bytes),
                match (n.role, n.row_ms) {
                    (Role::Leader, _) if self.row_written => "written".into(),
                    (_, Some(ms)) => format!("{ms} ms"),
                    _ => "-".into(),
                },
                match (n.wal_dir_bytes, n.databases_bytes) {
                    (None, None) => "-".into(),
                    (wal, dbs) => format!("{}/{}", bytes(wal), bytes(dbs)),
                },
                verdict(n),
            ]);
        }
        let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap()).collect();
        let mut out = String::new();
        for r in rows {
            let line: Vec<String> = r.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    /// The slot a follower streams through, as its upstream's row lists it.
    fn slot_of(&self, n: &NodeReport) -> Option<&Slot> {
        let (name, up) = (n.slot.as_ref()?, n.upstream.as_ref()?);
        self.nodes.iter().find(|u| &u.node == up)?.slots.iter().find(|s| &s.name == name)
    }

    pub fn into_result(self) -> Result<Report> {
        if self.ok {
            return Ok(self);
        }
        let first = self.nodes.iter().find(|n| !n.problems.is_empty()).map(|n| format!("{}: {}", n.node, n.problems.join("; "))).unwrap_or_default();
        Err(Error::Verify(first))
    }
}

/// The PROBLEMS cell: "ok", or the problems, then the warnings marked as such.
fn verdict(n: &NodeReport) -> String {
    if n.problems.is_empty() && n.warnings.is_empty() {
        return "ok".into();
    }
    let warnings = n.warnings.iter().map(|w| format!("warning: {w}"));
    n.problems.iter().cloned().chain(warnings).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let leader = NodeReport {
            node: "pg1".into(),
            role: Role::Leader,
            address: "10.0.0.10".into(),
            in_recovery: Some(false),
            timeline: Some(1),
            slots: vec![Slot { name: "pg2".into(), active: true, wal_held_bytes: Some(3 << 20), wal_status: Some("reserved".into()), inactive_since: None }],
            wal_dir_bytes: Some(1088 << 20),
            databases_bytes: Some(23_207_055),
            warnings: vec!["archiver failing (2 failures, last WAL 000000010000000000000003)".into()],
            ..Default::default()
        };
        let follower = NodeReport {
            node: "pg2".into(),
            role: Role::Follower,
            upstream: Some("pg1".into()),
            address: "10.0.0.11".into(),
            in_recovery: Some(true),
            timeline: Some(1),
            streaming: Some("streaming".into()),
            sync_state: Some("async".into()),
            slot: Some("pg2".into()),
            slot_active: Some(true),
            lag_bytes: Some(0),
            row_ms: Some(5),
            wal_dir_bytes: Some(48 << 20),
            ..Default::default()
        };
        Report { cluster: "c".into(), ok: true, elapsed_ms: 9, nodes: vec![leader, follower], row_written: true }
    }

    #[test]
    fn the_table_shows_lag_slot_wal_and_warnings() {
        let t = report().table();
        let want = "\
NODE  ROLE      UPSTREAM  RECOVERY  TL  STREAMING  SLOT    WAL-HELD  LAG  ROW      WAL-DIR/DBS   PROBLEMS
pg1   leader    -         no        1   -          -       -         -    written  1.1 GB/22 MB  warning: archiver failing (2 failures, last WAL 000000010000000000000003)
pg2   follower  pg1       yes       1   streaming  active  3.0 MB    0 B  5 ms     48 MB/-       ok
";
        assert_eq!(t, want);
    }

    #[test]
    fn the_table_shows_no_disk_use_for_a_node_not_read() {
        let mut r = report();
        r.nodes[1].wal_dir_bytes = None;
        let t = r.table();
        let follower = t.lines().nth(2).unwrap();
        assert!(follower.ends_with("  5 ms     -             ok"), "{t}");
        // The columns before the new one keep their places: tests/e2e/drills.sh reads WAL-HELD as fields 8 and 9.
        let fields: Vec<&str> = follower.split_whitespace().collect();
        assert_eq!(fields[7..9], ["3.0", "MB"], "{t}");
    }

    #[test]
    fn warnings_keep_ok_and_follow_problems() {
        let mut r = report();
        assert!(r.ok);
        r.nodes[0].problems.push("the leader is in recovery".into());
        assert_eq!(verdict(&r.nodes[0]), "the leader is in recovery; warning: archiver failing (2 failures, last WAL 000000010000000000000003)");
        r.ok = false;
        let e = r.into_result().unwrap_err().to_string();
        assert!(e.contains("the leader is in recovery") && !e.contains("archiver"), "{e}");
    }

    #[test]
    fn json_leaves_out_what_is_unknown() {
        let r = report();
        let v = serde_json::to_value(&r).unwrap();
        let leader = &v["nodes"][0];
        assert_eq!(leader["slots"][0]["wal_held_bytes"], 3 << 20);
        assert_eq!(leader["slots"][0]["wal_status"], "reserved");
        assert!(leader.get("lag_bytes").is_none() && leader.get("archiver").is_none());
        assert_eq!(leader["wal_dir_bytes"], 1088u64 << 20);
        assert_eq!(leader["databases_bytes"], 23_207_055);
        let follower = &v["nodes"][1];
        assert_eq!(follower["lag_bytes"], 0);
        assert_eq!(follower["wal_dir_bytes"], 48 << 20);
        assert!(follower.get("slots").is_none() && follower.get("warnings").is_none() && follower.get("lag_seconds").is_none());
        assert!(follower.get("databases_bytes").is_none(), "unknown, left out");
        // The fields JSON readers had before stay, null or not.
        for key in ["upstream", "in_recovery", "streaming", "sync_state", "slot_active", "row_ms", "problems"] {
            assert!(leader.get(key).is_some(), "{key}");
        }
    }
}
