//! Spec -> Plan: validate, fill in defaults, resolve the topology and attach
//! the version's facts. Pure: no I/O besides checking that SQL files exist.
//! The plan is exactly what the templates see (`clusterlab check --json`).

use crate::error::SpecError;
use crate::facts::{Facts, Major, MAJORS};
use crate::spec::{Engine, Followers, FollowerSpec, Mode, Provider, ProviderOptions, Source, Spec};
use ipnet::Ipv4Net;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;

pub const REPLICATION_USER: &str = "replicator";
/// Login role used by `verify` and `sql` from the host; owns the `clusterlab` database.
pub const LAB_USER: &str = "clusterlab";
pub const LAB_DATABASE: &str = "clusterlab";
/// Login role `clusterlab rejoin` gives pg_rewind for its connection to the
/// new leader (its password is the replication password); only where the
/// major has pg_rewind.
pub const REWIND_USER: &str = "clusterlab_rewind";

/// Settings clusterlab must own for the cluster to work at all.
const RESERVED_SETTINGS: &[&str] = &["port", "data_directory", "config_file", "hba_file", "ident_file", "include_dir"];

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub name: String,
    pub engine: &'static str,
    pub version: String,
    pub facts: Facts,
    pub provider: &'static str,
    #[serde(rename = "box")]
    pub box_name: String,
    pub box_version: Option<String>,
    pub network: String,
    pub netmask: String,
    /// The network's prefix length: Vagrant's docker provider wants `netmask: 24`.
    pub prefix_len: u8,
    pub cpus: u32,
    pub memory: u32,
    pub provider_options: ProviderOptions,
    /// In provisioning order: the leader, then each follower after its upstream.
    pub nodes: Vec<Node>,
    pub slots: bool,
    pub sync: bool,
    pub synchronous_standby_names: Option<String>,
    pub archive: bool,
    /// libpq's sslmode for the replication connections (the spec's replication.ssl).
    pub ssl_mode: &'static str,
    /// Extra postgresql.conf settings, sorted by name.
    pub settings: BTreeMap<String, String>,
    pub hba: Vec<String>,
    pub sql: Vec<SqlFile>,
    pub replication_user: &'static str,
    pub lab_user: &'static str,
    pub lab_database: &'static str,
    pub rewind_user: &'static str,
    /// max_wal_senders, max_replication_slots and max_connections, sized for
    /// this cluster and written on every node (see `replication_capacity`).
    pub capacity: Capacity,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub role: &'static str,
    pub address: String,
    pub upstream: Option<String>,
    pub upstream_address: Option<String>,
    /// libpq connection string to the upstream (no password: that comes from ~postgres/.pgpass).
    pub primary_conninfo: Option<String>,
    /// The slot this node streams through on its upstream.
    pub slot: Option<String>,
    pub sync: bool,
    pub apply_delay: Option<String>,
    /// 0 for the leader, 1 for its direct followers, 2 for cascaded ones...
    pub depth: u32,
    /// Slots this node keeps for its direct followers.
    pub downstream_slots: Vec<String>,
    /// VM or container name, unique per cluster on the host.
    pub machine: String,
    /// The private NIC's MAC on VMs (qemu's 52:54:00 prefix and the address's
    /// last three bytes): provisioning finds the interface by it.
    pub mac: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SqlFile {
    pub source: PathBuf,
    /// Name inside the working directory's `sql/`: `01.sql`, `02.sql`...
    pub name: String,
}

pub fn ssl_mode(ssl: bool) -> &'static str {
    if ssl {
        "require"
    } else {
        "disable"
    }
}

/// Unique within a cluster, whose addresses are; clusters never share a network.
fn mac_for(address: &str) -> String {
    let o: Vec<u8> = address.split('.').filter_map(|p| p.parse().ok()).collect();
    format!("52:54:00:{:02x}:{:02x}:{:02x}", o[1], o[2], o[3])
}

impl Plan {
    pub fn leader(&self) -> &Node {
        &self.nodes[0]
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Nodes grouped by depth: each group can start once the previous one runs.
    pub fn waves(&self) -> Vec<Vec<&Node>> {
        let max = self.nodes.iter().map(|n| n.depth).max().unwrap_or(0);
        (0..=max).map(|d| self.nodes.iter().filter(|n| n.depth == d).collect()).collect()
    }
}

pub fn is_hostname(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 40
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !s.ends_with('-')
}

fn is_setting_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// `5min`, `30s`, `1h`, `250ms`, `2d`, or a bare number of milliseconds.
fn is_delay(s: &str) -> bool {
    let digits = s.chars().take_while(|c| c.is_ascii_digit()).count();
    digits > 0 && ["", "ms", "s", "min", "h", "d"].contains(&&s[digits..])
}

struct Draft {
    name: String,
    field: String,
    address: Option<String>,
    upstream: Option<String>,
    apply_delay: Option<String>,
    sync: Option<bool>,
}

pub fn build(spec: &Spec, src: &Source) -> Result<Plan, SpecError> {
    let err = |field: &str, msg: String, hint: &str| src.error(field, msg, hint);

    if spec.engine == Engine::Cassandra {
        return Err(err("engine", "Apache Cassandra is not supported yet".into(), "use `engine: postgres`"));
    }
    if !is_hostname(&spec.name) {
        return Err(err(
            "name",
            format!("`{}` is not a valid cluster name", spec.name.escape_debug()),
            "use 1-40 lowercase letters, digits and `-`, starting with a letter (it names VMs and directories)",
        ));
    }
    // As written: YAML would read `9.10` as the number 9.1.
    let version = src.index.raw("version").unwrap_or(&spec.version.0).trim();
    let major = Major::parse(version).ok_or_else(|| {
        let why = match version.split_once('.') {
            Some(("9", m)) if m.parse::<u32>().is_ok_and(|m| m < 4) => {
                format!("PostgreSQL {version} has no physical replication slots (they came in 9.4)")
            }
            Some((a, _)) if a.parse::<u32>().is_ok_and(|a| a >= 10) => {
                format!("`{version}` is a minor release; give the major only")
            }
            _ => format!("`{version}` is not a PostgreSQL major clusterlab knows"),
        };
        err("version", why, &format!("use one of: {}", MAJORS.join(", ")))
    })?;
    let facts = Facts::for_major(major);

    let net: Ipv4Net = spec.network.as_deref().unwrap_or("10.42.0.0/24").parse().map_err(|_| {
        err(
            "network",
            format!("`{}` is not an IPv4 network in CIDR form", spec.network.as_deref().unwrap_or_default()),
            "write it like 10.42.0.0/24",
        )
    })?;
    if !(16..=28).contains(&net.prefix_len()) || net.network() != net.addr() {
        return Err(err(
            "network",
            format!("`{net}` is not usable: give the network address with a prefix from /16 to /28"),
            &format!("did you mean {}/{}?", net.network(), net.prefix_len().min(24)),
        ));
    }
    if spec.provider != Provider::Libvirt && has_libvirt_options(&spec.provider_options) {
        return Err(err(
            "provider_options",
            format!("provider_options apply to libvirt only, and the provider is {}", spec.provider.as_str()),
            "remove provider_options or set `provider: libvirt`",
        ));
    }
    if let Some(d) = spec.provider_options.driver.as_deref().filter(|d| !["kvm", "qemu", "auto"].contains(d)) {
        return Err(err(
            "provider_options.driver",
            format!("`{d}` is not a libvirt driver"),
            "use kvm, qemu (software emulation) or auto (the default: KVM where a KVM guest boots here)",
        ));
    }
    if spec.resources.cpus == 0 || spec.resources.cpus > 64 {
        return Err(err("resources.cpus", format!("{} CPUs is out of range", spec.resources.cpus), "use 1 to 64"));
    }
    if spec.resources.memory < 256 {
        return Err(err(
            "resources.memory",
            format!("{} MiB is too little for a PostgreSQL node", spec.resources.memory),
            "use at least 256 (MiB)",
        ));
    }

    // Nodes as written, before addresses and topology are resolved.
    let leader_name = spec.topology.leader.name.clone().unwrap_or_else(|| "pg1".into());
    let mut drafts = vec![Draft {
        name: leader_name.clone(),
        field: "topology.leader.name".into(),
        address: spec.topology.leader.address.clone(),
        upstream: None,
        apply_delay: None,
        sync: None,
    }];
    match &spec.topology.followers {
        Followers::Count(n) => {
            if *n > 9 {
                return Err(err("topology.followers", format!("{n} followers is more than 9"), "use 0 to 9"));
            }
            let base = leader_name.trim_end_matches(|c: char| c.is_ascii_digit());
            for i in 0..*n {
                drafts.push(Draft {
                    name: format!("{base}{}", i + 2),
                    field: "topology.followers".into(),
                    address: None,
                    upstream: None,
                    apply_delay: None,
                    sync: None,
                });
            }
        }
        Followers::List(list) => {
            if list.len() > 9 {
                return Err(err("topology.followers", format!("{} followers is more than 9", list.len()), "use 0 to 9"));
            }
            for (i, FollowerSpec { name, address, upstream, apply_delay, sync }) in list.iter().enumerate() {
                drafts.push(Draft {
                    name: name.clone(),
                    field: format!("topology.followers[{i}]"),
                    address: address.clone(),
                    upstream: upstream.clone(),
                    apply_delay: apply_delay.as_ref().map(|d| d.0.clone()),
                    sync: *sync,
                });
            }
        }
    }

    let mut seen = BTreeSet::new();
    for d in &drafts {
        let field = if d.field.ends_with(".name") || d.field == "topology.followers" {
            d.field.clone()
        } else {
            format!("{}.name", d.field)
        };
        if !is_hostname(&d.name) {
            return Err(err(
                &field,
                format!("`{}` is not a valid node name", d.name.escape_debug()),
                "use a hostname: 1-40 lowercase letters, digits and `-`, starting with a letter",
            ));
        }
        if !seen.insert(d.name.clone()) {
            return Err(err(&field, format!("node name `{}` is used twice", d.name), "give every node its own name"));
        }
    }

    // Addresses: given ones are checked, the rest are handed out from .10 up.
    let first_host = u32::from(net.network()) + 1;
    let mut used: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
    for d in &drafts {
        let Some(a) = &d.address else { continue };
        let field = if d.field.starts_with("topology.leader") {
            "topology.leader.address".to_string()
        } else {
            format!("{}.address", d.field)
        };
        let ip: Ipv4Addr = a.parse().map_err(|_| err(&field, format!("`{a}` is not an IPv4 address"), "write it like 10.42.0.11"))?;
        if !net.contains(&ip) || ip == net.network() || ip == net.broadcast() {
            return Err(err(&field, format!("{ip} is not a host address in the network {net}"), "pick an address inside `network`, or leave it out to have one assigned"));
        }
        if u32::from(ip) == first_host {
            return Err(err(&field, format!("{ip} is the network's gateway (the host side)"), "use another address, e.g. from .10 up"));
        }
        if let Some(other) = used.insert(ip, d.name.clone()) {
            return Err(err(&field, format!("{ip} is already the address of `{other}`"), "give every node its own address, or leave it out"));
        }
    }
    // Free host addresses from .10 up (the low ones are gateways and the like).
    let mut free = net.hosts().skip(9).filter(|ip| !used.contains_key(ip)).collect::<Vec<_>>().into_iter();
    let mut addresses = Vec::new();
    for d in &drafts {
        let ip = match &d.address {
            Some(a) => a.parse().unwrap(),
            None => free.next().ok_or_else(|| {
                err("network", format!("{net} has too few addresses for {} nodes", drafts.len()), "use a larger network, e.g. a /24")
            })?,
        };
        addresses.push(ip.to_string());
    }

    // Topology: every follower's upstream chain must end at the leader.
    for d in drafts.iter().skip(1) {
        if let Some(up) = &d.upstream {
            if !seen.contains(up) {
                return Err(err(&format!("{}.upstream", d.field), format!("`{up}` names no node of this cluster"), &format!("use one of: {}", seen.iter().cloned().collect::<Vec<_>>().join(", "))));
            }
            if up == &d.name {
                return Err(err(&format!("{}.upstream", d.field), format!("`{up}` cannot stream from itself"), "name another node, or leave upstream out to follow the leader"));
            }
        }
    }
    let upstream_of = |name: &str| -> Option<String> {
        let d = drafts.iter().find(|d| d.name == name)?;
        if d.name == leader_name {
            None
        } else {
            Some(d.upstream.clone().unwrap_or_else(|| leader_name.clone()))
        }
    };
    let mut depth_of: BTreeMap<String, u32> = BTreeMap::new();
    for d in &drafts {
        let mut chain = vec![d.name.clone()];
        let mut cur = d.name.clone();
        while let Some(up) = upstream_of(&cur) {
            if chain.contains(&up) {
                chain.push(up);
                return Err(err(&format!("{}.upstream", d.field), format!("the upstream chain is a cycle: {}", chain.join(" -> ")), "point one of these followers at the leader"));
            }
            chain.push(up.clone());
            cur = up;
        }
        depth_of.insert(d.name.clone(), chain.len() as u32 - 1);
    }

    for d in &drafts {
        if let Some(delay) = &d.apply_delay {
            if !is_delay(delay) {
                return Err(err(&format!("{}.apply_delay", d.field), format!("`{delay}` is not a delay"), "write a number with a unit: 250ms, 30s, 5min, 1h or 2d"));
            }
        }
        if d.sync == Some(true) && spec.replication.mode != Mode::Sync {
            return Err(err(&format!("{}.sync", d.field), "`sync: true` needs `replication.mode: sync`".into(), "set replication.mode to sync, or remove sync"));
        }
        if d.sync == Some(true) && depth_of[&d.name] > 1 {
            return Err(err(&format!("{}.sync", d.field), format!("`{}` is cascaded; only direct followers of the leader can be synchronous", d.name), "remove sync, or stream it from the leader"));
        }
    }

    let slot_of = |name: &str| name.replace('-', "_");
    let mut nodes: Vec<Node> = drafts
        .iter()
        .zip(&addresses)
        .map(|(d, addr)| {
            let upstream = upstream_of(&d.name);
            let depth = depth_of[&d.name];
            Node {
                name: d.name.clone(),
                role: if upstream.is_none() { "leader" } else { "follower" },
                address: addr.clone(),
                upstream_address: None,
                primary_conninfo: None,
                slot: upstream.as_ref().filter(|_| spec.replication.slots).map(|_| slot_of(&d.name)),
                sync: spec.replication.mode == Mode::Sync && depth == 1 && d.sync.unwrap_or(d.apply_delay.is_none()),
                apply_delay: d.apply_delay.clone(),
                depth,
                downstream_slots: Vec::new(),
                machine: format!("clusterlab-{}-{}", spec.name, d.name),
                mac: mac_for(addr),
                upstream,
            }
        })
        .collect();
    let by_name: BTreeMap<String, String> = nodes.iter().map(|n| (n.name.clone(), n.address.clone())).collect();
    let snapshot = nodes.clone();
    for n in &mut nodes {
        n.upstream_address = n.upstream.as_ref().map(|u| by_name[u].clone());
        n.primary_conninfo = n.upstream_address.as_ref().map(|a| {
            format!("host={a} port=5432 user={REPLICATION_USER} sslmode={} application_name={}", ssl_mode(spec.replication.ssl), n.name)
        });
        n.downstream_slots = snapshot
            .iter()
            .filter(|m| m.upstream.as_deref() == Some(n.name.as_str()))
            .filter_map(|m| m.slot.clone())
            .collect();
    }
    nodes.sort_by_key(|n| n.depth); // stable: spec order within a depth

    let synchronous_standby_names = match spec.replication.mode {
        Mode::Async => {
            if spec.replication.synchronous_standby_names.is_some() {
                return Err(err("replication.synchronous_standby_names", "only used with `mode: sync`".into(), "set replication.mode to sync, or remove it"));
            }
            None
        }
        Mode::Sync => Some(match &spec.replication.synchronous_standby_names {
            Some(names) => {
                check_sync_syntax(names, &facts).map_err(|m| err("replication.synchronous_standby_names", m, "use the syntax of this major, or leave it out to have it computed"))?;
                names.clone()
            }
            None => {
                let standbys: Vec<String> = nodes.iter().filter(|n| n.sync).map(|n| n.name.clone()).collect();
                if standbys.is_empty() {
                    return Err(err("replication.mode", "sync mode needs at least one direct, undelayed follower".into(), "add a follower that streams from the leader, or use mode: async"));
                }
                facts.sync_names(&standbys)
            }
        }),
    };

    let mut settings = BTreeMap::new();
    for (k, v) in &spec.postgresql_conf {
        let field = format!("postgresql_conf.{k}");
        if !is_setting_name(k) {
            return Err(err(&field, format!("`{}` is not a setting name", k.escape_debug()), "use letters, digits, `_` and `.` only"));
        }
        // Setting names are case-insensitive in PostgreSQL: `Port` is `port`.
        if RESERVED_SETTINGS.contains(&k.to_ascii_lowercase().as_str()) {
            return Err(err(&field, format!("clusterlab manages `{k}` itself"), "remove it from postgresql_conf"));
        }
        if v.0.contains(['\n', '\r', '\0']) || src.index.raw(&field).is_some_and(|r| r.contains(['\n', '\r', '\0'])) {
            return Err(err(&field, "a setting value cannot span lines".into(), "put the value on one line"));
        }
        // As written, so `1.10` stays `1.10` and `0x1F` stays `0x1F`.
        let value = src.index.raw(&format!("postgresql_conf.{k}")).unwrap_or(&v.0);
        settings.insert(k.clone(), value.to_string());
    }
    for (i, line) in spec.pg_hba.iter().enumerate() {
        if line.contains(['\n', '\r', '\0']) {
            return Err(err(&format!("pg_hba[{i}]"), "a pg_hba entry must be a single line".into(), "write one list item per pg_hba line"));
        }
    }
    let mut sql = Vec::new();
    for (i, file) in spec.sql.iter().enumerate() {
        let source = src.dir().join(file);
        if !source.is_file() {
            return Err(err(&format!("sql[{i}]"), format!("{} does not exist", source.display()), "give a path relative to the spec file"));
        }
        sql.push(SqlFile { source, name: format!("{:02}.sql", i + 1) });
    }

    let nodes_for_capacity = nodes.clone();
    let box_name = spec
        .box_name
        .clone()
        .unwrap_or_else(|| facts.default_box());

    Ok(Plan {
        name: spec.name.clone(),
        engine: "postgres",
        version: facts.major.clone(),
        provider: spec.provider.as_str(),
        box_name,
        box_version: spec.box_version.clone(),
        network: net.to_string(),
        netmask: net.netmask().to_string(),
        prefix_len: net.prefix_len(),
        cpus: spec.resources.cpus,
        memory: spec.resources.memory,
        provider_options: spec.provider_options.clone(),
        nodes,
        slots: spec.replication.slots,
        sync: spec.replication.mode == Mode::Sync,
        synchronous_standby_names,
        archive: spec.replication.archive,
        ssl_mode: ssl_mode(spec.replication.ssl),
        settings,
        hba: spec.pg_hba.clone(),
        sql,
        replication_user: REPLICATION_USER,
        lab_user: LAB_USER,
        lab_database: LAB_DATABASE,
        rewind_user: REWIND_USER,
        capacity: replication_capacity(&nodes_for_capacity, &facts),
        facts,
    })
}

fn has_libvirt_options(o: &ProviderOptions) -> bool {
    o.driver.is_some() || o.cpu_mode.is_some() || o.cpu_model.is_some() || o.kernel.is_some() || o.initrd.is_some() || o.cmd_line.is_some()
}

/// The notes' §7.9: `N (...)` needs 9.6, `FIRST`/`ANY` need 10.
fn check_sync_syntax(names: &str, facts: &Facts) -> Result<(), String> {
    let upper = names.trim_start().to_ascii_uppercase();
    let keyword = upper.starts_with("FIRST ") || upper.starts_with("ANY ");
    let counted = upper.chars().next().is_some_and(|c| c.is_ascii_digit()) && upper.contains('(');
    if names.contains(['\n', '\r', '\0']) {
        return Err("must be a single line".into());
    }
    if keyword && facts.sync_syntax != "first_any" {
        return Err(format!("FIRST/ANY syntax needs PostgreSQL 10 or later; this cluster is {}", facts.major));
    }
    if counted && facts.sync_syntax == "plain" {
        return Err(format!("the `N (a, b)` syntax needs PostgreSQL 9.6 or later; this cluster is {}", facts.major));
    }
    Ok(())
}

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
pub fn replication_capacity(nodes: &[Node], facts: &Facts) -> Capacity {
    let direct = |name: &str| nodes.iter().filter(|m| m.upstream.as_deref() == Some(name)).count() as u32;
    let peak = nodes
        .iter()
        .map(|n| direct(&n.name) + n.upstream.as_deref().map_or(0, direct))
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

    fn plan(text: &str) -> Plan {
        let src = Source::new("t.yaml", text);
        let spec = crate::spec::parse(&src).unwrap();
        build(&spec, &src).unwrap()
    }

    #[test]
    fn the_minimal_spec_gets_a_leader_and_two_followers_with_slots() {
        let p = plan("name: m\nversion: 15\n");
        let names: Vec<&str> = p.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["pg1", "pg2", "pg3"]);
        assert_eq!(p.nodes[0].address, "10.42.0.10");
        assert_eq!(p.nodes[2].address, "10.42.0.12");
        assert_eq!(p.leader().downstream_slots, ["pg2", "pg3"]);
        assert_eq!(p.nodes[1].slot.as_deref(), Some("pg2"));
        assert_eq!(p.nodes[1].machine, "clusterlab-m-pg2");
        assert_eq!(p.box_name, "clusterlab/bookworm-pg15");
        assert_eq!(p.provider, "libvirt");
        assert!(p.synchronous_standby_names.is_none());
    }

    #[test]
    fn cascades_come_in_waves_and_keep_slots_on_their_upstream() {
        let p = plan(
            "name: c\nversion: 10\ntopology:\n  followers:\n    - {name: leaf, upstream: mid}\n    - {name: mid}\n    - {name: lag-1, apply_delay: 5min}\n",
        );
        let waves: Vec<Vec<&str>> = p.waves().iter().map(|w| w.iter().map(|n| n.name.as_str()).collect()).collect();
        assert_eq!(waves, vec![vec!["pg1"], vec!["mid", "lag-1"], vec!["leaf"]]);
        let mid = p.node("mid").unwrap();
        assert_eq!(mid.downstream_slots, ["leaf"]);
        assert_eq!(p.node("leaf").unwrap().upstream_address.as_deref(), Some(mid.address.as_str()));
        // Slot names cannot contain `-`.
        assert_eq!(p.node("lag-1").unwrap().slot.as_deref(), Some("lag_1"));
        assert_eq!(p.leader().downstream_slots, ["mid", "lag_1"]);
    }

    #[test]
    fn given_addresses_are_kept_and_the_rest_assigned_around_them() {
        let p = plan("name: a\nversion: 13\nnetwork: 10.9.8.0/24\ntopology:\n  leader: {address: 10.9.8.11}\n  followers: 2\n");
        let addrs: Vec<&str> = p.nodes.iter().map(|n| n.address.as_str()).collect();
        assert_eq!(addrs, ["10.9.8.11", "10.9.8.10", "10.9.8.12"]);
    }

    #[test]
    fn each_private_nic_gets_a_mac_from_its_address() {
        let p = plan("name: a\nversion: 13\nnetwork: 10.9.8.0/24\ntopology:\n  leader: {address: 10.9.8.11}\n  followers: 2\n");
        let macs: Vec<&str> = p.nodes.iter().map(|n| n.mac.as_str()).collect();
        assert_eq!(macs, ["52:54:00:09:08:0b", "52:54:00:09:08:0a", "52:54:00:09:08:0c"]);
    }

    #[test]
    fn replication_connections_use_tls_only_when_the_spec_asks() {
        let off = plan("name: a\nversion: 15\n");
        assert_eq!(off.ssl_mode, "disable");
        assert!(off.nodes[1].primary_conninfo.as_deref().unwrap().contains(" sslmode=disable "));
        let on = plan("name: a\nversion: 15\nreplication: {ssl: true}\n");
        assert_eq!(on.ssl_mode, "require");
        assert!(on.nodes[1].primary_conninfo.as_deref().unwrap().contains(" sslmode=require "));
    }

    #[test]
    fn sync_mode_lists_direct_undelayed_followers_in_the_majors_syntax() {
        let p = plan("name: s\nversion: 9.6\ntopology:\n  followers:\n    - {name: a}\n    - {name: b, apply_delay: 1h}\n    - {name: c, upstream: a}\nreplication: {mode: sync}\n");
        assert_eq!(p.synchronous_standby_names.as_deref(), Some(r#"1 ("a")"#));
        assert!(p.node("a").unwrap().sync && !p.node("b").unwrap().sync && !p.node("c").unwrap().sync);
    }

    #[test]
    fn no_followers_is_a_single_node() {
        let p = plan("name: one\nversion: 18\ntopology: {followers: 0}\n");
        assert_eq!(p.nodes.len(), 1);
        assert!(p.leader().downstream_slots.is_empty());
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
        let mut nodes = p.nodes.clone();
        for i in 0..39 {
            nodes.push(Node { name: format!("f{i}"), ..p.nodes[1].clone() });
        }
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
        assert_eq!(replication_capacity(&p.nodes, &p.facts), p.capacity);
        assert_eq!(p.capacity.max_wal_senders, 10);
    }
}
