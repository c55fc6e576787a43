//! Spec -> Plan: validate, fill in defaults, resolve the topology and attach
//! the version's facts. Pure: no I/O besides checking that SQL files exist.
//! The plan is exactly what the templates see (`clusterlab check --json`).

mod capacity;
mod disk;
mod rules;
mod upgrade;

pub use capacity::{replication_capacity, Capacity};
pub use rules::{is_hostname, ssl_mode};
pub use upgrade::UpgradeMethod;
pub use disk::{Disk, Disks};
use rules::{check_sync_syntax, has_provider_options, is_delay, is_setting_name, mac_for};

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
    pub provider: Provider,
    #[serde(rename = "box")]
    pub box_name: String,
    pub box_version: Option<String>,
    pub network: String,
    pub netmask: String,
    /// The network's prefix length: Vagrant's docker provider wants `netmask: 24`.
    pub prefix_len: u8,
    pub cpus: u32,
    pub memory: u32,
    /// The data directory's own filesystem (`resources.disk`).
    pub disk: Option<Disk>,
    /// pg_wal's own filesystem (`resources.wal_disk`), behind a symbolic
    /// link in the data directory.
    pub wal_disk: Option<Disk>,
    /// WAL kept and checkpoint spacing, as (setting, value): sized to the
    /// disk when the node has one of its own.
    pub wal_settings: Vec<(&'static str, String)>,
    pub provider_options: ProviderOptions,
    /// The provisioning script sets the private NIC and the hostname itself
    /// (the provider's Vagrantfile part leaves them alone).
    pub configure_network: bool,
    /// In provisioning order: the leader, then each follower after its upstream.
    pub nodes: Vec<Node>,
    pub slots: bool,
    pub sync: bool,
    pub synchronous_standby_names: Option<String>,
    /// The spec wrote synchronous_standby_names itself: a live topology keeps them.
    #[serde(skip)]
    pub sync_names_given: bool,
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
    pub role: Role,
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
    /// The spec's `sync:` for this node, for a live topology to apply again.
    #[serde(skip)]
    pub sync_requested: Option<bool>,
}

/// A node's part in the topology; serialized as "leader"/"follower" (templates compare it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Leader,
    Follower,
}

impl Role {
    /// The leader streams from nobody.
    pub fn of(upstream: Option<&str>) -> Role {
        if upstream.is_none() {
            Role::Leader
        } else {
            Role::Follower
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SqlFile {
    pub source: PathBuf,
    /// Name inside the working directory's `sql/`: `01.sql`, `02.sql`...
    pub name: String,
}

/// Slot names cannot contain `-`.
pub fn slot_name(node: &str) -> String {
    node.replace('-', "_")
}

/// libpq connection string to an upstream (no password: that comes from ~postgres/.pgpass).
pub fn primary_conninfo(upstream_address: &str, ssl_mode: &str, node: &str) -> String {
    format!("host={upstream_address} port=5432 user={REPLICATION_USER} sslmode={ssl_mode} application_name={node}")
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


struct Draft {
    name: String,
    field: String,
    address: Option<String>,
    upstream: Option<String>,
    apply_delay: Option<String>,
    sync: Option<bool>,
}

pub fn build(spec: &Spec, src: &Source) -> Result<Plan, Box<SpecError>> {
    build_for_major(spec, src, None)
}

/// The plan of the spec's cluster running another major (`major`, after an
/// upgrade): the same machines and box, that major's facts and settings.
pub fn build_for_major(spec: &Spec, src: &Source, major: Option<Major>) -> Result<Plan, Box<SpecError>> {
    let spec_major = major_of(spec, src)?;
    let facts = Facts::for_major(major.unwrap_or(spec_major));
    let net = network_of(spec, src)?;
    check_machines(spec, src)?;
    let drafts = drafts_of(spec, src)?;
    let names = check_names(&drafts, src)?;
    let addresses = addresses_of(&drafts, net, src)?;
    let depth_of = depths_of(&drafts, &names, src)?;
    check_followers(spec, &drafts, &depth_of, src)?;
    let nodes = nodes_of(spec, &drafts, &addresses, &depth_of);
    let synchronous_standby_names = standby_names(spec, &nodes, &facts, src)?;
    let settings = settings_of(spec, src)?;
    check_hba(spec, src)?;
    let sql = sql_files(spec, src)?;
    let box_name = spec
        .box_name
        .clone()
        .unwrap_or_else(|| Facts::for_major(spec_major).default_box());

    let disks = disk::disks_of(spec, &facts, src)?;
    Ok(Plan {
        name: spec.name.clone(),
        engine: "postgres",
        version: facts.major.clone(),
        provider: spec.provider,
        box_name,
        box_version: spec.box_version.clone(),
        network: net.to_string(),
        netmask: net.netmask().to_string(),
        prefix_len: net.prefix_len(),
        cpus: spec.resources.cpus,
        memory: spec.resources.memory,
        wal_settings: disk::wal_settings(disks.for_wal(), &facts),
        disk: disks.data,
        wal_disk: disks.wal,
        provider_options: spec.provider_options.clone(),
        configure_network: spec.provider.capabilities().configure_network,
        slots: spec.replication.slots,
        sync: spec.replication.mode == Mode::Sync,
        synchronous_standby_names,
        sync_names_given: spec.replication.synchronous_standby_names.is_some(),
        archive: spec.replication.archive,
        ssl_mode: ssl_mode(spec.replication.ssl),
        settings,
        hba: spec.pg_hba.clone(),
        sql,
        replication_user: REPLICATION_USER,
        lab_user: LAB_USER,
        lab_database: LAB_DATABASE,
        rewind_user: REWIND_USER,
        capacity: replication_capacity(&nodes.iter().map(|n| (n.name.as_str(), n.upstream.as_deref())).collect::<Vec<_>>(), &facts),
        nodes,
        facts,
    })
}

/// The major the spec asks for, checked as written (YAML would read `9.10` as 9.1).
fn major_of(spec: &Spec, src: &Source) -> Result<Major, Box<SpecError>> {
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
    Ok(major)
}

fn network_of(spec: &Spec, src: &Source) -> Result<Ipv4Net, Box<SpecError>> {
    let err = |field: &str, msg: String, hint: &str| src.error(field, msg, hint);
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
    Ok(net)
}

/// What the machines are given: provider options where the provider takes them, CPUs, memory.
fn check_machines(spec: &Spec, src: &Source) -> Result<(), Box<SpecError>> {
    let err = |field: &str, msg: String, hint: &str| src.error(field, msg, hint);
    if !spec.provider.capabilities().provider_options && has_provider_options(&spec.provider_options) {
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
    Ok(())
}

/// Nodes as written, before addresses and topology are resolved: the leader first.
fn drafts_of(spec: &Spec, src: &Source) -> Result<Vec<Draft>, Box<SpecError>> {
    let err = |field: &str, msg: String, hint: &str| src.error(field, msg, hint);
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
    Ok(drafts)
}

/// Every node's name is a hostname, and its own; the names.
fn check_names(drafts: &[Draft], src: &Source) -> Result<BTreeSet<String>, Box<SpecError>> {
    let err = |field: &str, msg: String, hint: &str| src.error(field, msg, hint);
    let mut seen = BTreeSet::new();
    for d in drafts {
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
    Ok(seen)
}

/// Addresses, in the drafts' order: given ones are checked, the rest are handed out from .10 up.
fn addresses_of(drafts: &[Draft], net: Ipv4Net, src: &Source) -> Result<Vec<String>, Box<SpecError>> {
    let err = |field: &str, msg: String, hint: &str| src.error(field, msg, hint);
    let first_host = u32::from(net.network()) + 1;
    let mut used: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
    for d in drafts {
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
    for d in drafts {
        let ip = match &d.address {
            Some(a) => a.parse().unwrap(),
            None => free.next().ok_or_else(|| {
                err("network", format!("{net} has too few addresses for {} nodes", drafts.len()), "use a larger network, e.g. a /24")
            })?,
        };
        addresses.push(ip.to_string());
    }
    Ok(addresses)
}

/// Every follower's upstream chain ends at the leader; each node's depth.
fn depths_of(drafts: &[Draft], seen: &BTreeSet<String>, src: &Source) -> Result<BTreeMap<String, u32>, Box<SpecError>> {
    let err = |field: &str, msg: String, hint: &str| src.error(field, msg, hint);
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
    let mut depth_of: BTreeMap<String, u32> = BTreeMap::new();
    for d in drafts {
        let mut chain = vec![d.name.clone()];
        let mut cur = d.name.clone();
        while let Some(up) = upstream_of(drafts, &cur) {
            if chain.contains(&up) {
                chain.push(up);
                return Err(err(&format!("{}.upstream", d.field), format!("the upstream chain is a cycle: {}", chain.join(" -> ")), "point one of these followers at the leader"));
            }
            chain.push(up.clone());
            cur = up;
        }
        depth_of.insert(d.name.clone(), chain.len() as u32 - 1);
    }
    Ok(depth_of)
}

/// The leader streams from nobody; a follower from its upstream, else the leader.
fn upstream_of(drafts: &[Draft], name: &str) -> Option<String> {
    let leader = &drafts[0].name;
    let d = drafts.iter().find(|d| d.name == name)?;
    if d.name == *leader {
        None
    } else {
        Some(d.upstream.clone().unwrap_or_else(|| leader.clone()))
    }
}

/// Delays are delays; `sync: true` needs sync mode and a direct follower.
fn check_followers(spec: &Spec, drafts: &[Draft], depth_of: &BTreeMap<String, u32>, src: &Source) -> Result<(), Box<SpecError>> {
    let err = |field: &str, msg: String, hint: &str| src.error(field, msg, hint);
    for d in drafts {
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
    Ok(())
}

/// The nodes with their edges resolved, in provisioning order (by depth, spec order within one).
fn nodes_of(spec: &Spec, drafts: &[Draft], addresses: &[String], depth_of: &BTreeMap<String, u32>) -> Vec<Node> {
    let mut nodes: Vec<Node> = drafts
        .iter()
        .zip(addresses)
        .map(|(d, addr)| {
            let upstream = upstream_of(drafts, &d.name);
            let depth = depth_of[&d.name];
            Node {
                name: d.name.clone(),
                role: Role::of(upstream.as_deref()),
                address: addr.clone(),
                upstream_address: None,
                primary_conninfo: None,
                slot: upstream.as_ref().filter(|_| spec.replication.slots).map(|_| slot_name(&d.name)),
                sync: spec.replication.mode == Mode::Sync && depth == 1 && d.sync.unwrap_or(d.apply_delay.is_none()),
                apply_delay: d.apply_delay.clone(),
                depth,
                downstream_slots: Vec::new(),
                machine: format!("clusterlab-{}-{}", spec.name, d.name),
                mac: mac_for(addr),
                sync_requested: d.sync,
                upstream,
            }
        })
        .collect();
    let by_name: BTreeMap<String, String> = nodes.iter().map(|n| (n.name.clone(), n.address.clone())).collect();
    let snapshot = nodes.clone();
    for n in &mut nodes {
        n.upstream_address = n.upstream.as_ref().map(|u| by_name[u].clone());
        n.primary_conninfo = n.upstream_address.as_ref().map(|a| primary_conninfo(a, ssl_mode(spec.replication.ssl), &n.name));
        n.downstream_slots = snapshot
            .iter()
            .filter(|m| m.upstream.as_deref() == Some(n.name.as_str()))
            .filter_map(|m| m.slot.clone())
            .collect();
    }
    nodes.sort_by_key(|n| n.depth); // stable: spec order within a depth
    nodes
}

/// The spec's synchronous_standby_names (checked against the major), or the direct undelayed followers in its syntax.
fn standby_names(spec: &Spec, nodes: &[Node], facts: &Facts, src: &Source) -> Result<Option<String>, Box<SpecError>> {
    let err = |field: &str, msg: String, hint: &str| src.error(field, msg, hint);
    Ok(match spec.replication.mode {
        Mode::Async => {
            if spec.replication.synchronous_standby_names.is_some() {
                return Err(err("replication.synchronous_standby_names", "only used with `mode: sync`".into(), "set replication.mode to sync, or remove it"));
            }
            None
        }
        Mode::Sync => Some(match &spec.replication.synchronous_standby_names {
            Some(names) => {
                check_sync_syntax(names, facts).map_err(|m| err("replication.synchronous_standby_names", m, "use the syntax of this major, or leave it out to have it computed"))?;
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
    })
}

/// postgresql_conf, checked, with each value as written.
fn settings_of(spec: &Spec, src: &Source) -> Result<BTreeMap<String, String>, Box<SpecError>> {
    let err = |field: &str, msg: String, hint: &str| src.error(field, msg, hint);
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
    Ok(settings)
}

fn check_hba(spec: &Spec, src: &Source) -> Result<(), Box<SpecError>> {
    let err = |field: &str, msg: String, hint: &str| src.error(field, msg, hint);
    for (i, line) in spec.pg_hba.iter().enumerate() {
        if line.contains(['\n', '\r', '\0']) {
            return Err(err(&format!("pg_hba[{i}]"), "a pg_hba entry must be a single line".into(), "write one list item per pg_hba line"));
        }
    }
    Ok(())
}

/// The SQL files, beside the spec, named in the order they run.
fn sql_files(spec: &Spec, src: &Source) -> Result<Vec<SqlFile>, Box<SpecError>> {
    let err = |field: &str, msg: String, hint: &str| src.error(field, msg, hint);
    let mut sql = Vec::new();
    for (i, file) in spec.sql.iter().enumerate() {
        let source = src.dir().join(file);
        if !source.is_file() {
            return Err(err(&format!("sql[{i}]"), format!("{} does not exist", source.display()), "give a path relative to the spec file"));
        }
        sql.push(SqlFile { source, name: format!("{:02}.sql", i + 1) });
    }
    Ok(sql)
}
