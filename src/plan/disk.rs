//! `resources.disk` and `resources.wal_disk`: filesystems of each node's own
//! under its data directory and under its WAL, so that `fault disk-full`
//! fills those and never the host's disk.

use crate::error::SpecError;
use crate::facts::Facts;
use crate::providers::kind::DataDisk;
use crate::spec::{Source, Spec};
use serde::Serialize;

/// Fewer MiB than this do not hold a fresh cluster, its WAL and a base backup's.
pub const MIN_MIB: u32 = 128;
/// A tmpfs is memory: more than this is a typo, not a lab.
pub const MAX_MIB: u32 = 65536;

/// A filesystem of the node's own: the data directory's is mounted at its
/// parent, pg_wal's at `/var/lib/postgresql/wal-disk`. The file `fault
/// disk-full` writes sits beside the directory it starves, on the same
/// filesystem, and the known state saved outside it does not count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    pub mib: u32,
    /// `/var/lib/postgresql/MAJOR`, `/var/lib/postgresql/wal-disk`.
    pub mount: String,
    /// The guest's device to format and mount (a virtual disk); none
    /// where the container runtime mounts a tmpfs at creation.
    pub device: Option<&'static str>,
}

/// The filesystems of each node's own the spec asks for: the data
/// directory's (`resources.disk`) and pg_wal's (`resources.wal_disk`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disks {
    pub data: Option<Disk>,
    pub wal: Option<Disk>,
}

impl Disks {
    /// The filesystem WAL is written to, when it is one of the node's own:
    /// the one WAL's budget must fit.
    pub fn for_wal(&self) -> Option<&Disk> {
        self.wal.as_ref().or(self.data.as_ref())
    }
}

pub fn disks_of(spec: &Spec, facts: &Facts, src: &Source) -> Result<Disks, Box<SpecError>> {
    let data_mount = std::path::Path::new(&facts.data_dir).parent().expect("the data directory has a parent").display().to_string();
    // Beside the data directory's filesystem, not inside it, so that each
    // fills on its own.
    let wal_mount = format!("{}/wal-disk", std::path::Path::new(&data_mount).parent().expect("under /var/lib/postgresql").display());
    let mut devices = 0;
    let mut one = |field: &str, mib: Option<u32>, mount: String, what: &str| -> Result<Option<Disk>, Box<SpecError>> {
        let Some(mib) = mib else { return Ok(None) };
        let device = match spec.provider.capabilities().data_disk {
            DataDisk::Unsupported => {
                return Err(src.error(
                    field,
                    format!("a {what} on a filesystem of its own is not built for {}", spec.provider),
                    format!("remove {field}, or use `provider: docker` (a tmpfs) or `provider: libvirt` (a virtual disk of its own)"),
                ))
            }
            DataDisk::Tmpfs => None,
            DataDisk::Devices(list) => {
                devices += 1;
                Some(list[devices - 1])
            }
        };
        if !(MIN_MIB..=MAX_MIB).contains(&mib) {
            return Err(src.error(
                field,
                format!("{mib} MiB is out of range for a node's {what}"),
                format!("use {MIN_MIB} to {MAX_MIB} (MiB); 256 holds a lab's data and lets `fault disk-full` fill it in a moment"),
            ));
        }
        Ok(Some(Disk { mib, mount, device }))
    };
    let data = one("resources.disk", spec.resources.disk, data_mount, "data directory")?;
    let wal = one("resources.wal_disk", spec.resources.wal_disk, wal_mount, "WAL directory")?;
    Ok(Disks { data, wal })
}

/// The WAL settings of a node: what the lab keeps for its followers
/// (1 GB), and with a disk of its own a budget that fits it: an eighth of
/// the disk kept for followers, checkpoints at a quarter. A node on a
/// 256 MiB disk that kept 1 GB would fill it with its own WAL; with the
/// budget, only WAL something else holds (a slot whose follower is gone)
/// can fill it, which is the drill.
pub fn wal_settings(disk: Option<&Disk>, facts: &Facts) -> Vec<(&'static str, String)> {
    let Some(d) = disk else {
        return vec![(facts.wal_keep_setting, facts.wal_keep_value.to_string())];
    };
    const SEGMENT_MIB: u32 = 16;
    let keep = d.mib / 8;
    let keep = if facts.wal_keep_setting == "wal_keep_size" { format!("{keep}MB") } else { (keep / SEGMENT_MIB).max(1).to_string() };
    let mut out = vec![(facts.wal_keep_setting, keep)];
    if facts.has_max_wal_size {
        // Two segments is the least either takes.
        let max = (d.mib / 4).max(2 * SEGMENT_MIB);
        out.push(("max_wal_size", format!("{max}MB")));
        out.push(("min_wal_size", format!("{}MB", 2 * SEGMENT_MIB)));
    } else {
        // 9.4 keeps up to (2 + checkpoint_completion_target) x
        // checkpoint_segments + 1 segments (https://www.postgresql.org/docs/9.4/wal-configuration.html).
        out.push(("checkpoint_segments", (d.mib / 4 / SEGMENT_MIB / 3).max(1).to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Major;

    fn settings(version: &str, mib: Option<u32>) -> Vec<(&'static str, String)> {
        let facts = Facts::for_major(Major::parse(version).unwrap());
        let disk = mib.map(|mib| Disk { mib, mount: "/var/lib/postgresql/x".into(), device: None });
        wal_settings(disk.as_ref(), &facts)
    }

    #[test]
    fn without_a_disk_the_lab_keeps_a_gigabyte() {
        assert_eq!(settings("9.4", None), [("wal_keep_segments", "64".to_string())]);
        assert_eq!(settings("18", None), [("wal_keep_size", "1024MB".to_string())]);
    }

    #[test]
    fn the_wal_budget_fits_the_filesystem_wal_is_on() {
        let disk = |mib| Some(Disk { mib, mount: "/x".into(), device: None });
        let wal_of = |disks: Disks| disks.for_wal().map(|d| d.mib);
        assert_eq!(wal_of(Disks { data: disk(1024), wal: disk(128) }), Some(128), "pg_wal's own, where it has one");
        assert_eq!(wal_of(Disks { data: disk(1024), wal: None }), Some(1024), "else the data directory's");
        assert_eq!(wal_of(Disks { data: None, wal: disk(256) }), Some(256));
        assert_eq!(wal_of(Disks::default()), None, "the machine's disk: the lab's gigabyte");
    }

    #[test]
    fn a_disk_of_its_own_gets_a_budget_that_fits() {
        let s = |v: &[(&'static str, &str)]| v.iter().map(|(k, v)| (*k, v.to_string())).collect::<Vec<_>>();
        assert_eq!(settings("9.4", Some(256)), s(&[("wal_keep_segments", "2"), ("checkpoint_segments", "1")]));
        assert_eq!(settings("12", Some(256)), s(&[("wal_keep_segments", "2"), ("max_wal_size", "64MB"), ("min_wal_size", "32MB")]));
        assert_eq!(settings("18", Some(128)), s(&[("wal_keep_size", "16MB"), ("max_wal_size", "32MB"), ("min_wal_size", "32MB")]));
        assert_eq!(settings("9.4", Some(65536)), s(&[("wal_keep_segments", "512"), ("checkpoint_segments", "341")]));
    }
}
