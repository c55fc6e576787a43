//! How many walsenders, slots and connections each node allows: sized from
//! the plan's topology, so that a leader with many followers can serve all of
//! their base backups at once.

use crate::facts::Facts;
use serde::Serialize;

/// What every node's postgresql.conf gets for replication connections (the
/// spec's `postgresql_conf` can still raise or lower them: it comes last).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Capacity {
    pub max_wal_senders: u32,
    pub max_replication_slots: u32,
    pub max_connections: u32,
}

/// PostgreSQL's own defaults from 10 on (max_wal_senders, max_replication_slots)
/// and Debian's postgresql.conf (max_connections): never written lower.
const DEFAULT_SENDERS: u32 = 10;
const DEFAULT_SLOTS: u32 = 10;
const DEFAULT_CONNECTIONS: u32 = 100;
/// superuser_reserved_connections' default (3 on every major clusterlab knows).
const SUPERUSER_RESERVED: u32 = 3;
/// Room for what nobody planned: a user's pg_basebackup or pg_receivewal.
const MARGIN: u32 = 2;

/// Sizes max_wal_senders and max_replication_slots for the busiest moment a
/// node can see, and max_connections around them.
///
/// Per node, its walsenders at the peak are:
/// - each direct follower's base backup in flight, all at once at `up` (one
///   wave of followers clones together) or at a drill's re-clone: with
///   `--wal-method=stream` (`--xlog-method=stream` before 10, the facts'
///   `basebackup_wal_flag`: every major) two walsenders each, one for the files
///   and one for the WAL; once it streams, one. So 2 per direct follower;
/// - a drill's `clusterlab backup` (`backup_wal_flag`): two walsenders with
///   `--wal-method=stream` (10+), one with `--xlog-method=fetch` (before 10);
///   pg_rewind connects as an ordinary client, not a walsender;
/// - a margin of 2.
///
/// Slots: one per direct follower, plus the margin.
///
/// The drills move followers: `promote` repoints the old leader's other
/// followers to the new one and `rejoin` adds the old leader, so a promoted
/// node can end up with its own followers and all of its upstream's. The
/// count per node therefore takes the node's direct followers plus, for a
/// follower, its upstream's. One value, the largest, goes to every node:
/// from 12 a hot standby refuses to start with max_wal_senders (like
/// max_connections, from 9.4) lower than its primary's
/// (https://www.postgresql.org/docs/current/hot-standby.html#HOT-STANDBY-ADMIN).
///
/// max_connections: before 12 walsenders count towards it and max_wal_senders
/// must stay below max_connections minus superuser_reserved_connections
/// (https://www.postgresql.org/docs/11/runtime-config-replication.html), so it
/// leaves 20 client connections beside them; written on every major, so every
/// node has the same (a standby needs at least its primary's).
///
/// `nodes` are (name, upstream) pairs: the topology's edges.
pub fn replication_capacity(nodes: &[(&str, Option<&str>)], facts: &Facts) -> Capacity {
    let direct = |name: &str| nodes.iter().filter(|(_, up)| *up == Some(name)).count() as u32;
    let peak = nodes
        .iter()
        .map(|(name, up)| direct(name) + up.map_or(0, direct))
        .max()
        .unwrap_or(0);
    let backup = if facts.backup_wal_flag.ends_with("=stream") { 2 } else { 1 };
    let basebackup = if facts.basebackup_wal_flag.ends_with("=stream") { 2 } else { 1 };
    let max_wal_senders = (basebackup * peak + backup + MARGIN).max(DEFAULT_SENDERS);
    let max_replication_slots = (peak + MARGIN).max(DEFAULT_SLOTS);
    let max_connections = (max_wal_senders + SUPERUSER_RESERVED + 20).max(DEFAULT_CONNECTIONS);
    Capacity { max_wal_senders, max_replication_slots, max_connections }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{build, Plan};
    use crate::spec::Source;

    fn edges(p: &Plan) -> Vec<(&str, Option<&str>)> {
        p.nodes.iter().map(|n| (n.name.as_str(), n.upstream.as_deref())).collect()
    }

    fn plan(text: &str) -> Plan {
        let src = Source::new("t.yaml", text);
        build(&crate::spec::parse(&src).unwrap(), &src).unwrap()
    }

    fn capacity(text: &str) -> Capacity {
        plan(text).capacity
    }

    #[test]
    fn two_followers_keep_the_defaults() {
        let c = capacity("name: a\nversion: 15\ntopology: {followers: 2}\n");
        assert_eq!(c, Capacity { max_wal_senders: 10, max_replication_slots: 10, max_connections: 100 });
    }

    #[test]
    fn five_and_eight_followers_get_two_walsenders_each_for_their_base_backups() {
        // 2 per follower (stream), 2 for a backup (stream from 10), 2 spare.
        assert_eq!(capacity("name: a\nversion: 15\ntopology: {followers: 5}\n").max_wal_senders, 14);
        let c = capacity("name: a\nversion: 15\ntopology: {followers: 8}\n");
        assert_eq!(c, Capacity { max_wal_senders: 20, max_replication_slots: 10, max_connections: 100 });
        // 9.4's tar backup fetches its WAL: one walsender.
        assert_eq!(capacity("name: a\nversion: 9.4\ntopology: {followers: 8}\n").max_wal_senders, 19);
    }

    #[test]
    fn many_followers_raise_slots_and_connections() {
        // More than a spec's count allows (9): followers listed, as a list may.
        let p = plan("name: a\nversion: 11\ntopology: {followers: 1}\n");
        let names: Vec<String> = (0..39).map(|i| format!("f{i}")).collect();
        let mut nodes = edges(&p);
        nodes.extend(names.iter().map(|n| (n.as_str(), Some("pg1"))));
        let c = replication_capacity(&nodes, &p.facts);
        assert_eq!(c.max_wal_senders, 84);
        assert_eq!(c.max_replication_slots, 42);
        // Before 12 the walsenders count towards max_connections.
        assert!(c.max_connections > c.max_wal_senders + SUPERUSER_RESERVED);
        assert_eq!(c.max_connections, 107);
    }

    #[test]
    fn a_cascade_counts_what_a_promoted_follower_inherits() {
        // pg1 <- a, b; a <- c, d, e: promoting a gives it c, d, e and b (and pg1 on rejoin).
        let c = capacity(
            "name: c\nversion: 17\ntopology:\n  followers:\n    - {name: a}\n    - {name: b}\n    - {name: c, upstream: a}\n    - {name: d, upstream: a}\n    - {name: e, upstream: a}\n",
        );
        assert_eq!(c.max_wal_senders, 2 * (3 + 2) + 2 + 2);
        let p = plan("name: c\nversion: 17\ntopology:\n  followers:\n    - {name: a}\n    - {name: b}\n    - {name: c, upstream: a}\n");
        assert_eq!(replication_capacity(&edges(&p), &p.facts), p.capacity);
        assert_eq!(p.capacity.max_wal_senders, 10);
    }
}
