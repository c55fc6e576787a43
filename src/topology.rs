//! The live topology: who leads, whom each follower streams from, and which
//! nodes are outside it (a fenced or kept former leader, until `rejoin`).
//! The plan is what the spec asks for; the topology is what is. A drill
//! returns the next one, `verify`, `status` and `sql` read it, and `reset`
//! brings back the plan's.
//!
//! The plan a topology implies is computed from the spec's plan alone: the
//! same machines and addresses, with slots, conninfo, synchronous standbys
//! and start waves following the new edges.

use crate::error::{Error, Result};
use crate::plan::{self, Node, Plan};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Kept in state.json as `live` (this shape: older working dirs still load).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Topology {
    pub leader: String,
    pub upstreams: BTreeMap<String, String>,
    #[serde(default)]
    pub detached: Vec<String>,
    /// The major every node runs after `clusterlab upgrade`; None: the spec's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<String>,
}

impl Topology {
    /// The topology the spec asks for.
    pub fn of(plan: &Plan) -> Topology {
        Topology {
            leader: plan.leader().name.clone(),
            upstreams: plan.nodes.iter().filter_map(|n| Some((n.name.clone(), n.upstream.clone()?))).collect(),
            detached: Vec::new(),
            major: None,
        }
    }

    pub fn is_detached(&self, node: &str) -> bool {
        self.detached.iter().any(|d| d == node)
    }

    /// NODE leads; the old leader's followers follow it. The old leader
    /// follows NODE after a switchover, else it is outside the topology.
    pub fn handed_over(&self, node: &str, old_follows: bool) -> Topology {
        let old = self.leader.clone();
        let mut next = self.clone();
        next.leader = node.to_string();
        next.upstreams.remove(node);
        for up in next.upstreams.values_mut() {
            if *up == old {
                *up = node.to_string();
            }
        }
        if old_follows {
            next.upstreams.insert(old, node.to_string());
        } else {
            next.detached.push(old);
        }
        next
    }

    /// A detached NODE back as a follower of the leader.
    pub fn rejoined(&self, node: &str) -> Topology {
        let mut next = self.clone();
        next.detached.retain(|d| d != node);
        next.upstreams.insert(node.to_string(), self.leader.clone());
        next
    }

    /// NODE leads alone; every other node of `plan` is outside.
    pub fn alone(node: &str, plan: &Plan, major: Option<String>) -> Topology {
        Topology {
            leader: node.to_string(),
            upstreams: BTreeMap::new(),
            detached: plan.nodes.iter().filter(|n| n.name != node).map(|n| n.name.clone()).collect(),
            major,
        }
    }

    /// The plan this topology implies, from the spec's plan `base`.
    pub fn plan(&self, base: &Plan) -> Result<Plan> {
        let leader = base.node(&self.leader).ok_or_else(|| no_node(&self.leader, base))?;
        // The leader first, then the others in the spec's order: build's order.
        let members: Vec<&Node> = std::iter::once(leader)
            .chain(base.nodes.iter().filter(|n| n.name != self.leader && !self.is_detached(&n.name)))
            .collect();
        let upstream_of = |name: &str| (name != self.leader).then(|| self.upstreams.get(name).cloned().unwrap_or_else(|| self.leader.clone()));
        let mut nodes = Vec::with_capacity(members.len());
        for m in &members {
            let upstream = upstream_of(&m.name);
            if let Some(up) = upstream.as_deref().filter(|up| !members.iter().any(|x| x.name == *up) || *up == m.name) {
                return Err(Error::usage(format!("{} cannot stream from `{up}`", m.name), "`clusterlab reset SPEC` brings back the spec's topology"));
            }
            let depth = depth(&m.name, &upstream_of)?;
            if m.sync_requested == Some(true) && depth > 1 {
                return Err(Error::usage(format!("`{}` is cascaded; only direct followers of the leader can be synchronous", m.name), "`clusterlab reset SPEC` brings back the spec's topology"));
            }
            let upstream_address = upstream.as_deref().and_then(|u| base.node(u)).map(|u| u.address.clone());
            nodes.push(Node {
                role: plan::Role::of(upstream.as_deref()),
                primary_conninfo: upstream_address.as_deref().map(|a| plan::primary_conninfo(a, base.ssl_mode, &m.name)),
                slot: upstream.as_ref().filter(|_| base.slots).map(|_| plan::slot_name(&m.name)),
                sync: base.sync && depth == 1 && m.sync_requested.unwrap_or(m.apply_delay.is_none()),
                depth,
                downstream_slots: Vec::new(),
                upstream_address,
                upstream,
                ..(*m).clone()
            });
        }
        for i in 0..nodes.len() {
            let name = nodes[i].name.clone();
            nodes[i].downstream_slots = nodes.iter().filter(|m| m.upstream.as_deref() == Some(name.as_str())).filter_map(|m| m.slot.clone()).collect();
        }
        nodes.sort_by_key(|n| n.depth); // stable: the order above within a depth
        let mut live = Plan { nodes, ..base.clone() };
        if base.sync && !base.sync_names_given {
            let standbys: Vec<String> = live.nodes.iter().filter(|n| n.sync).map(|n| n.name.clone()).collect();
            if standbys.is_empty() {
                // A leader with no follower that can be synchronous (after a
                // restore fenced the others) runs asynchronously until one
                // rejoins: otherwise every commit would hang.
                live.sync = false;
                live.synchronous_standby_names = None;
            } else {
                live.synchronous_standby_names = Some(live.facts.sync_names(&standbys));
            }
        }
        Ok(live)
    }

    /// For `status`: the topology as a tree, then how it differs from the
    /// spec's (`spec`) and what brings the spec's back.
    pub fn tree(&self, spec: &Topology) -> String {
        let mut out = format!("live topology:\n  {} (leader)\n", self.leader);
        self.branch(&self.leader, "  ", &mut out);
        for d in &self.detached {
            out += &format!("  {d}: outside the topology (`clusterlab rejoin SPEC {d}`)\n");
        }
        let diff = self.differences(spec);
        if diff.is_empty() && self.detached.is_empty() {
            out += "  (as the spec has it)\n";
        } else if !diff.is_empty() {
            out += &format!("  differs from the spec: {}; `clusterlab reset SPEC` brings back the spec's\n", diff.join(", "));
        }
        out
    }

    fn branch(&self, node: &str, indent: &str, out: &mut String) {
        let children: Vec<&String> = self.upstreams.iter().filter(|(_, up)| *up == node).map(|(n, _)| n).collect();
        for (i, c) in children.iter().enumerate() {
            let last = i + 1 == children.len();
            *out += &format!("{indent}{} {c}\n", if last { "└─" } else { "├─" });
            self.branch(c, &format!("{indent}{}", if last { "   " } else { "│  " }), out);
        }
    }

    fn differences(&self, spec: &Topology) -> Vec<String> {
        let mut diff = Vec::new();
        if let Some(m) = self.major.as_ref().filter(|_| self.major != spec.major) {
            diff.push(format!("every node runs PostgreSQL {m} since `clusterlab upgrade`"));
        }
        if self.leader != spec.leader {
            diff.push(format!("{} leads instead of {}", self.leader, spec.leader));
        }
        for (n, up) in &self.upstreams {
            match spec.upstreams.get(n) {
                Some(s) if s != up => diff.push(format!("{n} follows {up} instead of {s}")),
                None if *n == spec.leader => diff.push(format!("{n} follows {up}")),
                _ => {}
            }
        }
        diff
    }
}

/// How many hops from the leader; an upstream chain that loops is refused.
fn depth(name: &str, upstream_of: &dyn Fn(&str) -> Option<String>) -> Result<u32> {
    let mut chain = vec![name.to_string()];
    let mut cur = name.to_string();
    while let Some(up) = upstream_of(&cur) {
        if chain.contains(&up) {
            chain.push(up);
            return Err(Error::usage(format!("the upstream chain is a cycle: {}", chain.join(" -> ")), "`clusterlab reset SPEC` brings back the spec's topology"));
        }
        chain.push(up.clone());
        cur = up;
    }
    Ok(chain.len() as u32 - 1)
}

fn no_node(name: &str, base: &Plan) -> Error {
    Error::usage(format!("no node `{name}` in cluster {}", base.name), "`clusterlab reset SPEC` brings back the spec's topology")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{self, Source};

    fn plan(text: &str) -> Plan {
        let src = Source::new("c.yaml", text);
        plan::build(&spec::parse(&src).unwrap(), &src).unwrap()
    }

    #[test]
    fn the_specs_own_topology_implies_the_specs_plan() {
        for text in [
            "name: c\nversion: \"9.6\"\nprovider: docker\nreplication:\n  mode: sync\ntopology:\n  followers:\n    - {name: a}\n    - {name: b, apply_delay: 1h}\n    - {name: c-1, upstream: a}\n",
            "name: c\nversion: 15\ntopology:\n  followers:\n    - {name: leaf, upstream: mid}\n    - {name: mid}\n    - {name: lag-1, apply_delay: 5min}\n",
            "name: c\nversion: 12\nreplication:\n  mode: sync\n  slots: false\ntopology:\n  followers: 3\n",
        ] {
            let p = plan(text);
            let live = Topology::of(&p).plan(&p).unwrap();
            assert_eq!(live.nodes, p.nodes);
            assert_eq!(live.synchronous_standby_names, p.synchronous_standby_names);
        }
    }

    #[test]
    fn after_a_promote_the_live_plan_has_the_new_leader_and_its_slots() {
        let base = plan("name: c\nversion: \"9.4\"\nprovider: docker\ntopology:\n  followers: 2\n");
        let live = Topology::of(&base);
        assert_eq!(live.leader, "pg1");
        assert_eq!(live.upstreams["pg3"], "pg1");
        let live = live.handed_over("pg2", false);
        let p = live.plan(&base).unwrap();
        assert_eq!(p.leader().name, "pg2");
        assert_eq!(p.leader().address, base.node("pg2").unwrap().address, "machines keep their addresses");
        assert!(p.node("pg1").is_none(), "a fenced node is outside the topology");
        let pg3 = p.node("pg3").unwrap();
        assert_eq!(pg3.upstream.as_deref(), Some("pg2"));
        assert_eq!(pg3.slot.as_deref(), Some("pg3"));
        assert!(pg3.primary_conninfo.as_deref().unwrap().contains(&format!("host={}", p.leader().address)));
        assert_eq!(p.leader().downstream_slots, ["pg3"]);
        assert_eq!(
            live.tree(&Topology::of(&base)),
            "live topology:\n  pg2 (leader)\n  └─ pg3\n  pg1: outside the topology (`clusterlab rejoin SPEC pg1`)\n  differs from the spec: pg2 leads instead of pg1, pg3 follows pg2 instead of pg1; `clusterlab reset SPEC` brings back the spec's\n"
        );
    }

    #[test]
    fn a_sync_leader_left_alone_runs_async_until_a_follower_rejoins() {
        let base = plan("name: c\nversion: \"12\"\nprovider: docker\nreplication:\n  mode: sync\ntopology:\n  followers: 2\n");
        let alone = Topology::alone("pg3", &base, None);
        assert_eq!(alone.plan(&base).unwrap().synchronous_standby_names, None, "no standby can be synchronous");
        let back = alone.rejoined("pg1");
        assert_eq!(back.plan(&base).unwrap().synchronous_standby_names.as_deref(), Some("FIRST 1 (\"pg1\")"));
    }

    #[test]
    fn the_tree_draws_cascades_and_says_when_nothing_differs() {
        let live = Topology {
            leader: "a".into(),
            upstreams: [("b", "a"), ("c", "b"), ("d", "a")].into_iter().map(|(x, y)| (x.to_string(), y.to_string())).collect(),
            detached: vec![],
            major: None,
        };
        assert_eq!(live.tree(&live), "live topology:\n  a (leader)\n  ├─ b\n  │  └─ c\n  └─ d\n  (as the spec has it)\n");
    }

    #[test]
    fn a_rejoined_node_follows_the_leader_and_delays_survive() {
        let base = plan("name: c\nversion: \"15\"\nprovider: docker\ntopology:\n  followers:\n    - name: b\n    - name: lag\n      apply_delay: 5min\n");
        let live = Topology::of(&base).handed_over("b", false).rejoined("pg1");
        let p = live.plan(&base).unwrap();
        assert_eq!(p.node("pg1").unwrap().upstream.as_deref(), Some("b"));
        assert_eq!(p.node("lag").unwrap().apply_delay.as_deref(), Some("5min"));
        let mut slots = p.leader().downstream_slots.clone();
        slots.sort();
        assert_eq!(slots, ["lag", "pg1"]);
    }

    #[test]
    fn a_cascaded_follower_promoted_past_moves_up_a_wave_and_can_be_synchronous() {
        let base = plan("name: c\nversion: 16\nreplication:\n  mode: sync\ntopology:\n  followers:\n    - {name: a}\n    - {name: b, upstream: a}\n");
        assert!(!base.node("b").unwrap().sync);
        let p = Topology::of(&base).handed_over("a", false).plan(&base).unwrap();
        assert_eq!(p.node("b").unwrap().depth, 1);
        assert_eq!(p.synchronous_standby_names.as_deref(), Some("FIRST 1 (\"b\")"));
        assert_eq!(p.waves().len(), 2);
    }
}
