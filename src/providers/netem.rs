//! `tc netem` on the interface that carries a node's address: the slow or
//! lossy link of `fault NODE lag MS` and `fault NODE loss PCT`. The same
//! commands on every provider; where they run (inside a VM, or from the host
//! in a container's network namespace) is the provider's `net_run`.

use crate::error::{Error, Result};
use crate::plan::Node;
use crate::runner::Output;

/// The interface named in `ip -o -4 addr show` output whose IPv4 address is `address`.
pub(super) fn interface_of(ip_addr_show: &str, address: &str) -> Option<String> {
    ip_addr_show.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "inet")?;
        let addr = words.get(at + 1)?.split('/').next()?;
        (addr == address).then(|| words.get(1).map(|d| d.split('@').next().unwrap_or(d).to_string()))?
    })
}

/// Sets `rule` (`["delay", "200ms"]`) as the root qdisc of the node's
/// interface, or (None) removes whatever root qdisc clusterlab set.
pub(super) fn apply(node: &Node, rule: Option<&[&str]>, run: impl Fn(&[&str]) -> Result<Output>) -> Result<()> {
    let shown = run(&["ip", "-o", "-4", "addr", "show"])?;
    let dev = interface_of(&shown.stdout, &node.address).ok_or_else(|| {
        Error::usage(format!("no interface of {} carries its address {}", node.name, node.address), "`clusterlab status SPEC`: is the machine up?")
    })?;
    let Some(rule) = rule else {
        // Healing a link that was never slowed is fine: tc says there is no qdisc.
        run(&["tc", "qdisc", "del", "dev", &dev, "root"])?;
        return Ok(());
    };
    let mut args = vec!["tc", "qdisc", "replace", "dev", dev.as_str(), "root", "netem"];
    args.extend(rule);
    let out = run(&args)?;
    if out.ok() {
        return Ok(());
    }
    let why = out.stderr.trim();
    if why.contains("qdisc kind is unknown") || why.contains("No such file") {
        return Err(Error::usage(
            format!("{}'s kernel has no netem, so its link cannot be slowed ({why})", node.name),
            "a container shares the host's kernel: lag and loss need one with sch_netem (the libvirt guests' Debian kernel has it)",
        ));
    }
    Err(Error::usage(format!("tc could not change {}'s link on {dev}: {why}", node.name), "`clusterlab status SPEC`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_interface_that_carries_the_address() {
        let shown = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n\
                     2: eth0    inet 192.168.121.5/24 brd 192.168.121.255 scope global dynamic eth0\\ ...\n\
                     3: eth1    inet 10.44.17.10/24 brd 10.44.17.255 scope global eth1\\ ...\n";
        assert_eq!(interface_of(shown, "10.44.17.10").as_deref(), Some("eth1"));
        assert_eq!(interface_of(shown, "10.44.17.1"), None);
        // Containers name their veth end `eth0@if12`.
        assert_eq!(interface_of("7: eth0@if8    inet 10.44.18.10/24 brd 10.44.18.255 scope global eth0\n", "10.44.18.10").as_deref(), Some("eth0"));
    }
}
