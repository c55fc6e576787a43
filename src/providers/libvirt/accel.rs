//! KVM where it works, without asking. A libvirt spec that does not name
//! `provider_options.driver` (or says `auto`) gets KVM and the host's CPU
//! where a KVM guest really boots on this host, and software emulation
//! (`qemu`, CPU model qemu64) where it does not. `/dev/kvm` existing is not
//! enough: on some hosts guests hang under KVM before their kernel prints a
//! line. So the box's own kernel is booted under KVM once, for a few seconds,
//! and the answer is kept in the cache until the host's kernel changes.

use crate::plan::Plan;
use std::path::{Path, PathBuf};

/// The answer of one probe, as the cache keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub kvm: bool,
    pub why: String,
}

/// Fills in the driver and CPU of a (libvirt) plan whose spec left them to
/// clusterlab; says what it chose and why. Explicit settings win.
pub fn settle(plan: &mut Plan, probe: impl FnOnce(&str) -> Probe) -> Option<String> {
    let o = &mut plan.provider_options;
    if matches!(o.driver.as_deref(), Some(d) if d != "auto") {
        return None;
    }
    let p = probe(&plan.box_name);
    o.driver = Some(if p.kvm { "kvm" } else { "qemu" }.into());
    if o.cpu_mode.is_none() {
        o.cpu_mode = Some(if p.kvm { "host-passthrough" } else { "custom" }.into());
        if !p.kvm && o.cpu_model.is_none() {
            o.cpu_model = Some("qemu64".into());
        }
    }
    let how = if p.kvm { "KVM" } else { "software emulation" };
    Some(format!("libvirt VMs run with {how}: {} (`provider_options.driver` chooses)", p.why))
}

/// The cached answer for this host, or a new probe (up to 20 s, once).
pub fn probe_cached(cache: &Path, box_name: &str) -> Probe {
    let file = cache.join("kvm-probe");
    let host = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    if let Ok(text) = std::fs::read_to_string(&file) {
        let mut lines = text.lines();
        if let (Some(answer), Some(kernel), Some(why)) = (lines.next(), lines.next(), lines.next()) {
            if kernel == host {
                return Probe { kvm: answer == "kvm", why: format!("{why} (cached in {})", file.display()) };
            }
        }
    }
    let p = probe(box_name);
    let _ = std::fs::create_dir_all(cache);
    let _ = std::fs::write(&file, format!("{}\n{host}\n{}\n", if p.kvm { "kvm" } else { "qemu" }, p.why));
    p
}

fn probe(box_name: &str) -> Probe {
    let no = |why: String| Probe { kvm: false, why };
    if !Path::new("/dev/kvm").exists() {
        return no("this host has no /dev/kvm".into());
    }
    let Some(kernel) = box_kernel(box_name) else {
        return no(format!("no kernel of box {box_name} to try KVM with; add the box and delete the cache's kvm-probe"));
    };
    // No network device: the probe guest must not send anything anywhere.
    let out = duct::cmd!(
        "timeout", "20", "qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "256", "-smp", "1", "-nographic", "-no-reboot",
        "-nic", "none", "-kernel", &kernel, "-append", "console=ttyS0 panic=-1"
    )
    .stderr_to_stdout()
    .stdout_capture()
    .unchecked()
    .run();
    match out {
        Ok(o) if String::from_utf8_lossy(&o.stdout).contains("Linux version") => {
            Probe { kvm: true, why: format!("a KVM guest booted {}", kernel.display()) }
        }
        Ok(_) => no(format!("a KVM guest of {} did not print its first line within 20 s", kernel.display())),
        Err(e) => no(format!("qemu-system-x86_64 could not run ({e})")),
    }
}

/// The kernel a clusterlab libvirt box carries beside its disk image.
fn box_kernel(box_name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("VAGRANT_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".vagrant.d")))?;
    let dir = home.join("boxes").join(box_name.replace('/', "-VAGRANTSLASH-"));
    let versions = std::fs::read_dir(dir).ok()?;
    versions.flatten().map(|v| v.path().join("libvirt/vmlinuz")).find(|k| k.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{self, Source};

    fn plan(extra: &str) -> Plan {
        let src = Source::new("c.yaml", format!("name: c\nversion: \"15\"\nprovider: libvirt\n{extra}"));
        crate::plan::build(&spec::parse(&src).unwrap(), &src).unwrap()
    }

    #[test]
    fn kvm_where_a_guest_boots_emulation_where_not_explicit_settings_win() {
        let mut p = plan("");
        let note = settle(&mut p, |_| Probe { kvm: true, why: "a KVM guest booted".into() }).unwrap();
        assert!(note.contains("with KVM: a KVM guest booted"), "{note}");
        let o = &p.provider_options;
        assert_eq!((o.driver.as_deref(), o.cpu_mode.as_deref(), o.cpu_model.as_deref()), (Some("kvm"), Some("host-passthrough"), None));

        let mut p = plan("provider_options:\n  driver: auto\n");
        settle(&mut p, |_| Probe { kvm: false, why: "no /dev/kvm".into() }).unwrap();
        let o = &p.provider_options;
        assert_eq!((o.driver.as_deref(), o.cpu_mode.as_deref(), o.cpu_model.as_deref()), (Some("qemu"), Some("custom"), Some("qemu64")));

        let mut p = plan("provider_options:\n  driver: qemu\n");
        assert_eq!(settle(&mut p, |_| panic!("an explicit driver needs no probe")), None);
        let mut p = plan("provider_options:\n  cpu_mode: host-model\n");
        settle(&mut p, |_| Probe { kvm: true, why: String::new() });
        assert_eq!(p.provider_options.cpu_mode.as_deref(), Some("host-model"), "an explicit CPU mode stays");
    }

    #[test]
    fn the_cached_answer_is_used_until_the_host_kernel_changes() {
        let dir = tempfile::tempdir().unwrap();
        let host = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        std::fs::write(dir.path().join("kvm-probe"), format!("kvm\n{}\nbooted\n", host.trim())).unwrap();
        let p = probe_cached(dir.path(), "none/such");
        assert!(p.kvm && p.why.starts_with("booted (cached in"), "{p:?}");
        std::fs::write(dir.path().join("kvm-probe"), "kvm\nanother-kernel\nbooted\n").unwrap();
        let p = probe_cached(dir.path(), "none/such");
        assert!(p.why != "booted" && !p.why.contains("cached"), "a stale answer is probed again: {p:?}");
        let again = std::fs::read_to_string(dir.path().join("kvm-probe")).unwrap();
        assert!(again.contains(host.trim()), "{again}");
    }
}
