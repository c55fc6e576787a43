//! How an upgrade moves the leader's data to the new major: a closed set the
//! command line, the drills and the upgrade script's template all name.

/// How the leader's data reaches the new major.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpgradeMethod {
    /// pg_upgrade --link: hard links, seconds whatever the size; the old cluster cannot start once the new one has.
    Link,
    /// pg_upgrade --copy: the old cluster stays as it was.
    Copy,
    /// Logical replication into a new cluster beside the old one, then the writes move (source 10+): the shortest downtime.
    Logical,
    /// The new major's pg_dumpall into a fresh cluster: always works, slowest.
    Dump,
}

impl UpgradeMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            UpgradeMethod::Link => "link",
            UpgradeMethod::Copy => "copy",
            UpgradeMethod::Logical => "logical",
            UpgradeMethod::Dump => "dump",
        }
    }

    /// The new major's programs the leader needs for this method.
    pub fn programs(self) -> &'static [&'static str] {
        match self {
            UpgradeMethod::Link | UpgradeMethod::Copy => &["postgres", "initdb", "pg_upgrade"],
            UpgradeMethod::Dump | UpgradeMethod::Logical => &["postgres", "initdb", "pg_dumpall", "psql"],
        }
    }
}

