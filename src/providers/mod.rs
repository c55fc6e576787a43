//! What differs between libvirt, docker and virtualbox once machines exist:
//! running a command on a node, snapshots, freezing a machine, machine
//! states, leftovers. One interface, one module per provider (as kind keeps
//! `providers/{docker,podman}`); nothing outside this folder matches on a
//! provider's name. These are the hot paths of `reset`, `status` and the
//! drills, so they talk to virsh and docker directly (a vagrant call costs
//! 1.5-5 s) and handle nodes in parallel.

mod common;
mod docker;
pub mod kind;
mod libvirt;
mod netem;
mod virtualbox;

pub use common::{Env, Machines, SNAPSHOT};
pub use kind::{Capabilities, Provider};

use crate::plan::Plan;

/// The provider of a cluster's plan.
pub fn for_plan<'a>(env: Env<'a>) -> Box<dyn Machines + 'a> {
    match env.plan.provider {
        Provider::Docker => Box::new(docker::Docker(env)),
        Provider::Libvirt => Box::new(libvirt::Libvirt(env)),
        Provider::Virtualbox => Box::new(virtualbox::Virtualbox(env)),
    }
}

/// Settles for this host what the plan leaves to clusterlab (libvirt: KVM or
/// software emulation, `probe`d unless a dry run). What was chosen, for the
/// caller to say.
pub fn settle_for_host(plan: &mut Plan, probe: bool) -> Option<String> {
    match plan.provider {
        Provider::Libvirt => libvirt::accel::settle(plan, |b| {
            if probe {
                libvirt::accel::probe_cached(&crate::boxbuild::cache_dir(), b)
            } else {
                libvirt::accel::Probe { kvm: false, why: "a dry run does not probe; software emulation assumed".into() }
            }
        }),
        Provider::Docker | Provider::Virtualbox => None,
    }
}
