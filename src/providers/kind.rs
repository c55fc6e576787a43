//! Which provider a cluster runs on, and what each one can do. The one place
//! that says how the providers differ as values: everything outside
//! `providers/` asks a capability, never a name.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Serialized as the lowercase name ("libvirt", "virtualbox", "docker"): specs,
/// plan.json, state.json and the templates all see that.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[default]
    Libvirt,
    Virtualbox,
    Docker,
}

/// What a provider can do, as the rest of clusterlab needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Whole-machine snapshots: `up`'s default known state and `reset --method snapshot`.
    pub snapshots: bool,
    /// After a snapshot is loaded, the guests' clocks are set and what the
    /// snapshot held for the restore's sake is put back once replication settled.
    pub settle_after_restore: bool,
    /// The provisioning script sets the private NIC and the hostname itself
    /// (the Vagrantfile says `auto_config: false`: vagrant's guest
    /// configuration costs about 20 s a machine under emulation).
    pub configure_network: bool,
    /// `vagrant up` makes host networks that clusters starting at once must take turns on.
    pub shared_networks: bool,
    /// Freezes a whole machine (`fault pause`): `docker pause`, `virsh suspend`.
    pub freeze: bool,
    /// Takes `provider_options` (driver, CPU, kernel).
    pub provider_options: bool,
    /// `clusterlab box build` makes boxes for it.
    pub box_build: bool,
    /// How a node's data directory gets a filesystem of its own (`resources.disk`).
    pub data_disk: DataDisk,
}

/// How a node's data directory gets a filesystem of its own, of the size
/// `resources.disk` says, so that `fault disk-full` never fills the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDisk {
    /// Not built: the spec is refused.
    Unsupported,
    /// A size-capped tmpfs the container runtime mounts at creation: the
    /// containers are not privileged and cannot mount a loop device. Memory,
    /// and gone if the container restarts (clusterlab never restarts one).
    Tmpfs,
    /// Extra virtual disks, these devices in the guest in the order the
    /// Vagrantfile adds them (the data directory's first, then pg_wal's),
    /// which provisioning formats and mounts.
    Devices(&'static [&'static str]),
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Libvirt, Provider::Virtualbox, Provider::Docker];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Libvirt => "libvirt",
            Provider::Virtualbox => "virtualbox",
            Provider::Docker => "docker",
        }
    }

    pub fn capabilities(self) -> Capabilities {
        match self {
            Provider::Libvirt => Capabilities {
                snapshots: true,
                settle_after_restore: true,
                configure_network: true,
                shared_networks: false,
                freeze: true,
                provider_options: true,
                box_build: true,
                data_disk: DataDisk::Devices(&["/dev/vdb", "/dev/vdc"]),
            },
            Provider::Virtualbox => Capabilities {
                snapshots: true,
                settle_after_restore: false,
                configure_network: false,
                shared_networks: false,
                freeze: false,
                provider_options: false,
                box_build: false,
                data_disk: DataDisk::Unsupported,
            },
            Provider::Docker => Capabilities {
                snapshots: false,
                settle_after_restore: false,
                configure_network: false,
                shared_networks: true,
                freeze: true,
                provider_options: false,
                box_build: true,
                data_disk: DataDisk::Tmpfs,
            },
        }
    }

    /// The template that renders this provider's Vagrantfile (its machine
    /// part, inside the common `Vagrantfile.tera`).
    pub fn vagrantfile_template(self) -> &'static str {
        match self {
            Provider::Libvirt => "providers/libvirt.Vagrantfile.tera",
            Provider::Virtualbox => "providers/virtualbox.Vagrantfile.tera",
            Provider::Docker => "providers/docker.Vagrantfile.tera",
        }
    }

    /// `clusterlab box build --provider`: the providers a box can be built for.
    pub fn box_builder_parser() -> impl clap::builder::TypedValueParser<Value = Provider> {
        use clap::builder::TypedValueParser;
        let names: Vec<&'static str> = Provider::ALL.iter().filter(|p| p.capabilities().box_build).map(|p| p.as_str()).collect();
        clap::builder::PossibleValuesParser::new(names).map(|s| Provider::ALL.into_iter().find(|p| p.as_str() == s).expect("one of the names listed"))
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_serializes_as_its_name_and_says_what_it_can() {
        for p in Provider::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
            assert_eq!(p.to_string(), p.as_str());
        }
        let only = |f: fn(Capabilities) -> bool| Provider::ALL.into_iter().filter(|p| f(p.capabilities())).map(Provider::as_str).collect::<Vec<_>>();
        assert_eq!(only(|c| c.snapshots), ["libvirt", "virtualbox"]);
        assert_eq!(only(|c| c.configure_network), ["libvirt"]);
        assert_eq!(only(|c| c.freeze), ["libvirt", "docker"]);
        assert_eq!(only(|c| c.box_build), ["libvirt", "docker"]);
    }
}
