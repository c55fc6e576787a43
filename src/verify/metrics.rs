//! What a node says about its replication, in one round trip: recovery, its
//! walsenders with each follower's lag, its physical slots with the WAL each
//! holds, its archiver, its timeline, and what its WAL directory and
//! databases take on disk. The SQL differs per major (names from `Facts`),
//! the rest is pure: rows in, a `NodeView` out, and the warnings it deserves.

use crate::error::{Error, Result};
use crate::facts::Facts;
use serde::Serialize;

/// One statement's rows as a simple query returns them: text, `None` for NULL.
pub type Rows = Vec<Vec<Option<String>>>;

/// Above this a slot's WAL is named in verify's table. The lab keeps 1 GiB of
/// WAL anyway (`wal_keep_size` 1024MB, or 64 segments of 16 MB before 13:
/// `Facts::wal_keep_value`), and max_wal_size defaults to 1GB
/// (https://www.postgresql.org/docs/current/runtime-config-wal.html#GUC-MAX-WAL-SIZE):
/// a slot holding more is what keeps WAL beyond both, on nodes with small disks.
pub const SLOT_HELD_WARN_BYTES: u64 = 1 << 30;

/// One walsender as its server's `pg_stat_replication` shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Walsender {
    pub application_name: String,
    pub state: String,
    pub sync_state: String,
    /// The sender's WAL position minus the standby's replay position.
    pub lag_bytes: Option<u64>,
    /// `replay_lag` in seconds (10+; NULL there too once an idle standby has caught up).
    pub lag_seconds: Option<f64>,
}

/// One physical slot on the node that keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Slot {
    pub name: String,
    pub active: bool,
    /// WAL kept for it: the node's WAL position minus the slot's `restart_lsn`
    /// (none when it reserves none, e.g. lost).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_held_bytes: Option<u64>,
    /// reserved, extended, unreserved or lost (13+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_status: Option<String>,
    /// When the slot became inactive, as the server has it (17+; none while in use).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inactive_since: Option<String>,
}

/// `pg_stat_archiver` of a node that archives (https://www.postgresql.org/docs/9.4/monitoring-stats.html#PG-STAT-ARCHIVER-VIEW).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Archiver {
    pub archived_count: u64,
    pub failed_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_archived_wal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failed_wal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failed_time: Option<String>,
    /// The last attempt failed: a failure after the last success.
    pub failing: bool,
}

/// Everything verify reads from one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeView {
    pub in_recovery: bool,
    pub walsenders: Vec<Walsender>,
    pub slots: Vec<Slot>,
    pub archiver: Option<Archiver>,
    pub timeline: Option<u32>,
    /// Bytes in the WAL directory (`disk_sql`).
    pub wal_dir_bytes: Option<u64>,
    /// Bytes of the databases one may connect to (`disk_sql`).
    pub databases_bytes: Option<u64>,
    /// Why the node did not say what it takes on disk (PostgreSQL's message).
    pub disk_unread: Option<String>,
}

/// Where this node's WAL ends, for lag and for the WAL a slot holds. On a
/// primary its current write position; on a standby (the upstream of a
/// cascade) that function fails ("recovery is in progress"), and what it has
/// received or replayed, whichever is further, is what it can send on.
/// CASE evaluates only the branch it needs, and these functions are volatile,
/// so none is folded at planning time
/// (https://www.postgresql.org/docs/current/functions-conditional.html#FUNCTIONS-CASE);
/// GREATEST skips a NULL (no walreceiver yet) and pg_lsn compares (9.4+:
/// https://www.postgresql.org/docs/9.4/datatype-pg-lsn.html).
fn position(f: &Facts) -> String {
    format!("CASE WHEN pg_is_in_recovery() THEN greatest({}(), {}()) ELSE {}() END", f.receive_lsn_fn, f.replay_lsn_fn, f.current_lsn_fn)
}

/// The five statements of a node's view, in this major's names.
pub fn view_sql(f: &Facts) -> String {
    let pos = position(f);
    let diff = f.lsn_diff_fn;
    // pg_stat_replication: replay_location (<10) or replay_lsn (10+) is the
    // standby's replay position (https://www.postgresql.org/docs/10/monitoring-stats.html#PG-STAT-REPLICATION-VIEW).
    let replay_lag = if f.has_replay_lag { "extract(epoch FROM replay_lag)::text" } else { "NULL::text" };
    let wal_status = if f.has_slot_wal_status { "wal_status" } else { "NULL::text" };
    let inactive_since = if f.has_slot_inactive_since { "inactive_since::text" } else { "NULL::text" };
    // The timeline: a primary's is the first 8 hex digits of its current WAL
    // file's name (all majors: https://www.postgresql.org/docs/9.4/continuous-archiving.html#BACKUP-TIMELINES,
    // "the timeline ID number is part of WAL segment file names"); the
    // function fails in recovery. A standby's is the one its walreceiver
    // streams on, else its last restartpoint's (which lags a timeline switch
    // until the next restartpoint); 9.4/9.5 have neither.
    let mut standby_tli = Vec::new();
    if f.has_wal_receiver_view {
        standby_tli.push("(SELECT nullif(received_tli, 0) FROM pg_stat_wal_receiver)");
    }
    if f.has_pg_control_checkpoint {
        standby_tli.push("(SELECT timeline_id FROM pg_control_checkpoint())");
    }
    let standby_tli = if standby_tli.is_empty() { "NULL::text".to_string() } else { format!("coalesce({})::text", standby_tli.join(", ")) };
    format!(
        "SELECT pg_is_in_recovery(); \
         SELECT coalesce(application_name, ''), coalesce(state, ''), coalesce(sync_state, ''), \
         {diff}({pos}, {replay})::text, {replay_lag} FROM pg_stat_replication; \
         SELECT slot_name::text, active, {diff}({pos}, restart_lsn)::text, {wal_status}, {inactive_since} \
         FROM pg_replication_slots WHERE slot_type = 'physical'; \
         SELECT archived_count, failed_count, last_archived_wal, last_failed_wal, last_failed_time::text, \
         last_failed_time IS NOT NULL AND (last_archived_time IS NULL OR last_failed_time > last_archived_time) \
         FROM pg_stat_archiver WHERE {archives}; \
         SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE {walfile}({current}()) END, \
         CASE WHEN pg_is_in_recovery() THEN {standby_tli} END",
        replay = f.replay_lsn_column,
        // A primary archives with archive_mode on; a standby only with `always` (9.5+:
        // https://www.postgresql.org/docs/9.5/runtime-config-wal.html#GUC-ARCHIVE-MODE).
        archives = "current_setting('archive_mode') = 'always' OR (current_setting('archive_mode') = 'on' AND NOT pg_is_in_recovery())",
        walfile = f.walfile_name_fn,
        current = f.current_lsn_fn,
    )
}

/// What a node's WAL directory and its databases take on disk, in bytes: one
/// statement of two columns.
///
/// The WAL directory: from 10 the sum of `pg_ls_waldir()`, every regular file
/// in pg_wal. Before 10 the number of WAL segment files in pg_xlog (names of
/// 24 hex digits, as the server names them) times the segment size: a
/// segment file always has its full size (the server creates it so, and
/// recycles it by renaming), and counting names stats no file, so a segment
/// a checkpoint removes between listing and counting cannot fail the
/// statement. `pg_stat_file` per file could: its `missing_ok` came in 9.5,
/// 9.4 has none (https://www.postgresql.org/docs/9.5/functions-admin.html#FUNCTIONS-ADMIN-GENFILE).
/// The segment size before 11 is fixed when the server is built: 16 MB
/// unless configured otherwise (https://www.postgresql.org/docs/9.4/wal-internals.html),
/// `wal_segment_size` blocks of `wal_block_size` bytes
/// (https://www.postgresql.org/docs/9.4/runtime-config-preset.html), which
/// is what the statement multiplies. So before 10 only segments count: not
/// the timeline and backup history files (small text files), nor the
/// `.partial` segment a 9.5/9.6 promotion leaves, which 10+ counts.
///
/// The databases: `pg_database_size` of each one that allows connections
/// (template0 does not), which needs CONNECT on it (granted to PUBLIC by
/// default) or pg_read_all_stats, a member of pg_monitor, from 10
/// (https://www.postgresql.org/docs/10/functions-admin.html#FUNCTIONS-ADMIN-DBSIZE);
/// before 10 the lab user is a superuser.
pub fn disk_sql(f: &Facts) -> String {
    let wal = if f.has_pg_ls_waldir {
        "SELECT coalesce(sum(size), 0) FROM pg_ls_waldir()".to_string()
    } else {
        format!(
            "SELECT count(*) * (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size') \
             * (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_block_size') \
             FROM pg_ls_dir('{}') AS f(name) WHERE name ~ '^[0-9A-F]{{24}}$'",
            f.wal_dir
        )
    };
    format!("SELECT ({wal}), (SELECT sum(pg_database_size(oid)) FROM pg_database WHERE datallowconn)")
}

/// A node's view as verify sends it: the five statements and the disk
/// statement in one round trip (`with_disk`), and the five alone, for a
/// node where the disk statement failed. Disk use is not worth a failed
/// verify: `pg_ls_waldir` fails on a file removed between listing and stat
/// in servers that predate PostgreSQL's fix for that race, and a DBA may
/// have taken privileges away.
pub struct ViewSql {
    pub with_disk: String,
    pub view: String,
}

impl ViewSql {
    pub fn new(f: &Facts) -> ViewSql {
        let view = view_sql(f);
        ViewSql { with_disk: format!("{view}; {}", disk_sql(f)), view }
    }
}

/// The view from the results of `view_sql` (five), or of `ViewSql::with_disk` (six).
pub fn parse_view(mut results: Vec<Rows>) -> Result<NodeView> {
    let disk = if results.len() == 6 { results.pop() } else { None };
    let [recovery, senders, slots, archiver, timeline] = <[_; 5]>::try_from(results).map_err(|r| Error::Verify(format!("expected 5 or 6 results, got {}", r.len())))?;
    let cell = |row: &[Option<String>], i: usize| row.get(i).cloned().flatten();
    let in_recovery = recovery.first().is_some_and(|row| cell(row, 0).as_deref() == Some("t"));
    let walsenders = senders
        .iter()
        .map(|row| Walsender {
            application_name: cell(row, 0).unwrap_or_default(),
            state: cell(row, 1).unwrap_or_default(),
            sync_state: cell(row, 2).unwrap_or_default(),
            lag_bytes: cell(row, 3).as_deref().and_then(bytes),
            lag_seconds: cell(row, 4).and_then(|s| s.parse().ok()),
        })
        .collect();
    let slots = slots
        .iter()
        .map(|row| Slot {
            name: cell(row, 0).unwrap_or_default(),
            active: cell(row, 1).as_deref() == Some("t"),
            wal_held_bytes: cell(row, 2).as_deref().and_then(bytes),
            wal_status: cell(row, 3),
            inactive_since: cell(row, 4),
        })
        .collect();
    let archiver = archiver.first().map(|row| Archiver {
        archived_count: cell(row, 0).and_then(|s| s.parse().ok()).unwrap_or(0),
        failed_count: cell(row, 1).and_then(|s| s.parse().ok()).unwrap_or(0),
        last_archived_wal: cell(row, 2),
        last_failed_wal: cell(row, 3),
        last_failed_time: cell(row, 4),
        failing: cell(row, 5).as_deref() == Some("t"),
    });
    let timeline = timeline.first().and_then(|row| timeline_of(cell(row, 0).as_deref(), cell(row, 1).as_deref()));
    let disk_row = disk.as_ref().and_then(|rows| rows.first());
    let size = |i: usize| disk_row.and_then(|row| cell(row, i)).as_deref().and_then(bytes);
    Ok(NodeView { in_recovery, walsenders, slots, archiver, timeline, wal_dir_bytes: size(0), databases_bytes: size(1), disk_unread: None })
}

/// Bytes from numeric text: a WAL distance or a size. A standby a hair ahead
/// of what its cascading upstream reports counts as 0, not as a negative lag.
fn bytes(text: &str) -> Option<u64> {
    let n: f64 = text.trim().parse().ok()?;
    n.is_finite().then(|| n.max(0.0).round() as u64)
}

/// The timeline from a primary's WAL file name (8 hex digits first) or a standby's number.
fn timeline_of(wal_file: Option<&str>, standby_tli: Option<&str>) -> Option<u32> {
    match wal_file {
        Some(name) => name.get(..8).and_then(|t| u32::from_str_radix(t, 16).ok()),
        None => standby_tli.and_then(|t| t.trim().parse().ok()),
    }
}

/// Bytes as PostgreSQL writes sizes: B, kB, MB, GB, TB, each 1024 of the one
/// before (https://www.postgresql.org/docs/current/config-setting.html#CONFIG-SETTING-NAMES-VALUES);
/// one decimal below 10.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if v < 10.0 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

/// What deserves a word on a node that works: a failing archiver, a slot that
/// lost its WAL or is about to, one holding a lot of WAL, one nobody uses,
/// disk use the node did not say.
/// `used`: the slots followers of this topology stream through on this node.
/// Warnings do not fail verify: replication works, the cluster needs care.
pub fn warnings(view: &NodeView, used: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(a) = view.archiver.as_ref().filter(|a| a.failing) {
        let wal = a.last_failed_wal.as_deref().unwrap_or("?");
        out.push(format!("archiver failing ({} failures, last WAL {wal})", a.failed_count));
    }
    for s in &view.slots {
        // https://www.postgresql.org/docs/13/view-pg-replication-slots.html: `lost` means the
        // WAL it needs is gone; `unreserved` that it goes at the next checkpoint.
        match s.wal_status.as_deref() {
            Some("lost") => out.push(format!("slot {} lost (the WAL it needs was removed)", s.name)),
            Some("unreserved") => out.push(format!("slot {} about to lose its WAL (wal_status unreserved)", s.name)),
            _ => {}
        }
        if let Some(held) = s.wal_held_bytes.filter(|b| *b > SLOT_HELD_WARN_BYTES) {
            out.push(format!("slot {} holds {} of WAL", s.name, format_bytes(held)));
        }
        if !s.active && !used.contains(&s.name.as_str()) {
            out.push(format!("slot {} is inactive and no follower streams through it (it keeps WAL until dropped)", s.name));
        }
    }
    if let Some(why) = &view.disk_unread {
        out.push(format!("disk use not read ({why})"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Major;

    fn f(v: &str) -> Facts {
        Facts::for_major(Major::parse(v).unwrap())
    }

    fn row(cells: &[Option<&str>]) -> Vec<Option<String>> {
        cells.iter().map(|c| c.map(str::to_string)).collect()
    }

    #[test]
    fn sql_uses_the_xlog_names_before_10() {
        let sql = view_sql(&f("9.4"));
        assert!(sql.contains("pg_xlog_location_diff(CASE WHEN pg_is_in_recovery() THEN greatest(pg_last_xlog_receive_location(), pg_last_xlog_replay_location()) ELSE pg_current_xlog_location() END, replay_location)"), "{sql}");
        assert!(sql.contains(", restart_lsn)::text, NULL::text, NULL::text FROM pg_replication_slots"), "no wal_status before 13, no inactive_since before 17: {sql}");
        assert!(!sql.contains("extract(epoch"), "no replay_lag before 10: {sql}");
        assert!(sql.contains("pg_xlogfile_name(pg_current_xlog_location())"), "{sql}");
        assert!(!sql.contains("pg_control_checkpoint") && !sql.contains("pg_stat_wal_receiver"), "neither exists in 9.4: {sql}");
        assert!(!sql.contains("_wal_") && !sql.contains("_lsn()"), "no 10+ names: {sql}");
    }

    #[test]
    fn sql_reads_the_standby_timeline_from_96() {
        let sql = view_sql(&f("9.6"));
        assert!(sql.contains("coalesce((SELECT nullif(received_tli, 0) FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))::text"), "{sql}");
        assert!(sql.contains("replay_location") && !sql.contains("replay_lag"), "{sql}");
    }

    #[test]
    fn sql_uses_the_wal_names_and_replay_lag_from_10() {
        for v in ["10", "12"] {
            let sql = view_sql(&f(v));
            assert!(sql.contains("pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) ELSE pg_current_wal_lsn() END, replay_lsn)::text, extract(epoch FROM replay_lag)::text FROM pg_stat_replication"), "{v}: {sql}");
            assert!(sql.contains("pg_walfile_name(pg_current_wal_lsn())"), "{v}: {sql}");
            assert!(!sql.contains("xlog") && !sql.contains("replay_location"), "{v}: {sql}");
            assert!(!sql.contains("wal_status"), "{v}: {sql}");
        }
    }

    #[test]
    fn sql_reads_wal_status_from_13_and_inactive_since_from_17() {
        for (v, since) in [("13", "NULL::text"), ("16", "NULL::text"), ("17", "inactive_since::text"), ("18", "inactive_since::text")] {
            let sql = view_sql(&f(v));
            assert!(sql.contains(&format!("restart_lsn)::text, wal_status, {since} FROM pg_replication_slots WHERE slot_type = 'physical'")), "{v}: {sql}");
        }
    }

    #[test]
    fn five_statements_for_every_major() {
        for v in crate::facts::MAJORS {
            let sql = view_sql(&f(v));
            assert_eq!(sql.matches("; ").count(), 4, "{v}: {sql}");
            assert!(sql.contains("FROM pg_stat_archiver WHERE current_setting('archive_mode') = 'always'"), "{v}");
        }
    }

    #[test]
    fn disk_sql_counts_segments_before_10() {
        let sql = disk_sql(&f("9.4"));
        assert!(sql.contains("SELECT count(*) * (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size') * (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_block_size') FROM pg_ls_dir('pg_xlog') AS f(name) WHERE name ~ '^[0-9A-F]{24}$'"), "{sql}");
        assert!(!sql.contains("pg_ls_waldir") && !sql.contains("pg_stat_file") && !sql.contains("pg_wal'"), "9.4 has neither, and pg_stat_file has no missing_ok there: {sql}");
        assert_eq!(disk_sql(&f("9.6")), sql, "one form for every major before 10");
    }

    #[test]
    fn disk_sql_lists_the_wal_dir_from_10() {
        for v in ["10", "18"] {
            let sql = disk_sql(&f(v));
            assert!(sql.starts_with("SELECT (SELECT coalesce(sum(size), 0) FROM pg_ls_waldir()), "), "{v}: {sql}");
            assert!(!sql.contains("pg_ls_dir(") && !sql.contains("xlog"), "{v}: {sql}");
        }
    }

    #[test]
    fn disk_sql_sums_the_databases_one_may_connect_to() {
        for v in crate::facts::MAJORS {
            let sql = disk_sql(&f(v));
            assert!(sql.ends_with(", (SELECT sum(pg_database_size(oid)) FROM pg_database WHERE datallowconn)"), "{v}: {sql}");
            assert!(!sql.contains(';'), "one statement: {v}: {sql}");
            let both = ViewSql::new(&f(v));
            assert_eq!(both.with_disk, format!("{}; {sql}", view_sql(&f(v))), "{v}: the view's five statements first");
            assert_eq!(both.with_disk.matches("; ").count(), 5, "{v}");
        }
    }

    /// The rows a 13+ leader with two followers, one far behind, might answer.
    fn leader_rows() -> Vec<Rows> {
        vec![
            vec![row(&[Some("f")])],
            vec![
                row(&[Some("pg2"), Some("streaming"), Some("async"), Some("0"), Some("0.000512")]),
                row(&[Some("pg3"), Some("catchup"), Some("async"), Some("2147483648"), None]),
            ],
            vec![
                row(&[Some("pg2"), Some("t"), Some("56"), Some("reserved")]),
                row(&[Some("pg3"), Some("t"), Some("2147483648"), Some("extended")]),
                row(&[Some("old"), Some("f"), None, Some("lost"), Some("2026-11-30 23:10:00.5+00")]),
            ],
            vec![row(&[Some("12"), Some("3"), Some("00000001000000000000000B"), Some("00000001000000000000000C"), Some("2026-01-01 00:00:00+00"), Some("t")])],
            vec![row(&[Some("00000002000000000000000C"), None])],
        ]
    }

    #[test]
    fn parses_a_leader() {
        let v = parse_view(leader_rows()).unwrap();
        assert!(!v.in_recovery);
        assert_eq!(v.timeline, Some(2));
        assert_eq!(v.walsenders[0].lag_bytes, Some(0));
        assert_eq!(v.walsenders[0].lag_seconds, Some(0.000512));
        assert_eq!(v.walsenders[1].lag_bytes, Some(2 << 30));
        assert_eq!(v.walsenders[1].lag_seconds, None);
        assert_eq!(v.slots[2], Slot { name: "old".into(), active: false, wal_held_bytes: None, wal_status: Some("lost".into()), inactive_since: Some("2026-11-30 23:10:00.5+00".into()) });
        let a = v.archiver.unwrap();
        assert_eq!((a.archived_count, a.failed_count, a.failing), (12, 3, true));
        assert_eq!(a.last_failed_wal.as_deref(), Some("00000001000000000000000C"));
    }

    #[test]
    fn parses_disk_use_when_asked_for_it() {
        let v = parse_view(leader_rows()).unwrap();
        assert_eq!((v.wal_dir_bytes, v.databases_bytes), (None, None), "the view alone");
        let mut rows = leader_rows();
        rows.push(vec![row(&[Some("1140850688"), Some("23207055")])]);
        let v = parse_view(rows).unwrap();
        assert_eq!((v.wal_dir_bytes, v.databases_bytes), (Some(1_140_850_688), Some(23_207_055)));
        assert_eq!(v.timeline, Some(2), "the five before it parse as ever");
        let mut rows = leader_rows();
        rows.push(vec![row(&[Some("0"), None])]);
        let v = parse_view(rows).unwrap();
        assert_eq!((v.wal_dir_bytes, v.databases_bytes), (Some(0), None));
        let mut rows = leader_rows();
        rows.extend([vec![], vec![]]);
        assert!(parse_view(rows).is_err(), "seven results");
    }

    #[test]
    fn parses_a_94_standby() {
        let rows = vec![vec![row(&[Some("t")])], vec![], vec![], vec![], vec![row(&[None, None])]];
        let v = parse_view(rows).unwrap();
        assert!(v.in_recovery && v.walsenders.is_empty() && v.slots.is_empty());
        assert_eq!((v.archiver, v.timeline), (None, None));
        let rows = vec![vec![row(&[Some("t")])], vec![], vec![], vec![], vec![row(&[None, Some("3")])]];
        assert_eq!(parse_view(rows).unwrap().timeline, Some(3), "9.6+ standby");
        assert!(parse_view(vec![vec![]]).is_err());
    }

    #[test]
    fn wal_distances() {
        assert_eq!(bytes("1234"), Some(1234));
        assert_eq!(bytes("-16"), Some(0));
        assert_eq!(bytes("x"), None);
        assert_eq!(timeline_of(Some("0000000A0000000000000001"), None), Some(10));
        assert_eq!(timeline_of(Some("short"), Some("4")), None);
    }

    #[test]
    fn byte_formatting() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1024), "1.0 kB");
        assert_eq!(format_bytes(16 * 1024 * 1024), "16 MB");
        assert_eq!(format_bytes(1536 * 1024 * 1024), "1.5 GB");
        assert_eq!(format_bytes(u64::MAX), "16777216 TB");
    }

    #[test]
    fn warnings_name_the_problems() {
        let v = parse_view(leader_rows()).unwrap();
        let w = warnings(&v, &["pg2", "pg3"]);
        assert_eq!(
            w,
            [
                "archiver failing (3 failures, last WAL 00000001000000000000000C)",
                "slot pg3 holds 2.0 GB of WAL",
                "slot old lost (the WAL it needs was removed)",
                "slot old is inactive and no follower streams through it (it keeps WAL until dropped)",
            ]
        );
    }

    #[test]
    fn a_healthy_node_has_no_warnings() {
        let mut v = parse_view(leader_rows()).unwrap();
        v.slots.truncate(1);
        v.archiver.as_mut().unwrap().failing = false;
        assert!(warnings(&v, &["pg2"]).is_empty());
        v.slots[0].wal_held_bytes = Some(SLOT_HELD_WARN_BYTES);
        assert!(warnings(&v, &["pg2"]).is_empty(), "at the threshold is fine");
        v.slots[0].wal_status = Some("unreserved".into());
        assert_eq!(warnings(&v, &["pg2"]), ["slot pg2 about to lose its WAL (wal_status unreserved)"]);
    }

    #[test]
    fn disk_use_not_read_is_a_warning() {
        let mut v = parse_view(leader_rows()).unwrap();
        v.slots.truncate(1);
        v.archiver = None;
        v.disk_unread = Some("permission denied for function pg_ls_waldir".into());
        assert_eq!(warnings(&v, &["pg2"]), ["disk use not read (permission denied for function pg_ls_waldir)"]);
    }
}
