//! `resources.disk`: a filesystem of each node's own under its data
//! directory, so that `fault disk-full` fills that and never the host's disk.

use crate::error::SpecError;
use crate::facts::Facts;
use crate::providers::kind::DataDisk;
use crate::spec::{Source, Spec};
use serde::Serialize;

/// Fewer MiB than this do not hold a fresh cluster, its WAL and a base backup's.
pub const MIN_MIB: u32 = 128;
/// A tmpfs is memory: more than this is a typo, not a lab.
pub const MAX_MIB: u32 = 65536;

/// The node's own filesystem, mounted at the data directory's parent: the
/// file `fault disk-full` writes sits beside the data directory, on the same
/// filesystem, and the known state saved outside it does not count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    pub mib: u32,
    /// `/var/lib/postgresql/MAJOR`.
    pub mount: String,
    /// The guest's device to format and mount (a second virtual disk); none
    /// where the container runtime mounts a tmpfs at creation.
    pub device: Option<&'static str>,
}

pub fn disk_of(spec: &Spec, facts: &Facts, src: &Source) -> Result<Option<Disk>, SpecError> {
    let Some(mib) = spec.resources.disk else { return Ok(None) };
    let device = match spec.provider.capabilities().data_disk {
        DataDisk::Unsupported => {
            return Err(src.error(
                "resources.disk",
                format!("a data directory on a filesystem of its own is not built for {}", spec.provider),
                "remove resources.disk, or use `provider: docker` (a tmpfs) or `provider: libvirt` (a second virtual disk)",
            ))
        }
        DataDisk::Tmpfs => None,
        DataDisk::Device(dev) => Some(dev),
    };
    if !(MIN_MIB..=MAX_MIB).contains(&mib) {
        return Err(src.error(
            "resources.disk",
            format!("{mib} MiB is out of range for a node's data directory"),
            format!("use {MIN_MIB} to {MAX_MIB} (MiB); 256 holds a lab's data and lets `fault disk-full` fill it in a moment"),
        ));
    }
    let mount = std::path::Path::new(&facts.data_dir).parent().expect("the data directory has a parent").display().to_string();
    Ok(Some(Disk { mib, mount, device }))
}
