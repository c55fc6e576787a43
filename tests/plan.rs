//! The planner: spec -> plan, the defaults it fills in and the topology it resolves.

use clusterlab::plan::{build, Plan};
use clusterlab::spec::{self, Provider, Source};

fn plan(text: &str) -> Plan {
    let src = Source::new("t.yaml", text);
    let spec = spec::parse(&src).unwrap();
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
    assert_eq!(p.provider, Provider::Libvirt);
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
