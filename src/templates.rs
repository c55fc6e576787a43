//! The template store: the built-in templates (embedded at build time) and
//! the user's overrides from `--templates`. A leaf: rendering (`render`) and
//! box building (`boxbuild`) both read from it.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The built-in templates, by the name a `--templates` directory overrides them with.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("Vagrantfile.tera", include_str!("../templates/Vagrantfile.tera")),
    ("providers/docker.Vagrantfile.tera", include_str!("../templates/providers/docker.Vagrantfile.tera")),
    ("providers/libvirt.Vagrantfile.tera", include_str!("../templates/providers/libvirt.Vagrantfile.tera")),
    ("providers/virtualbox.Vagrantfile.tera", include_str!("../templates/providers/virtualbox.Vagrantfile.tera")),
    ("scripts/common.sh.tera", include_str!("../templates/scripts/common.sh.tera")),
    ("scripts/leader.sh.tera", include_str!("../templates/scripts/leader.sh.tera")),
    ("scripts/follower.sh.tera", include_str!("../templates/scripts/follower.sh.tera")),
    ("scripts/pgctl.sh.tera", include_str!("../templates/scripts/pgctl.sh.tera")),
    ("scripts/pgctl-faults.sh.tera", include_str!("../templates/scripts/pgctl-faults.sh.tera")),
    ("scripts/pgctl-upgrade.sh.tera", include_str!("../templates/scripts/pgctl-upgrade.sh.tera")),
    ("scripts/pgctl-state.sh.tera", include_str!("../templates/scripts/pgctl-state.sh.tera")),
    ("scripts/pgctl-backup.sh.tera", include_str!("../templates/scripts/pgctl-backup.sh.tera")),
    ("scripts/controldata.sh.tera", include_str!("../templates/scripts/controldata.sh.tera")),
    ("scripts/upgrade.sh.tera", include_str!("../templates/scripts/upgrade.sh.tera")),
    ("scripts/new-cluster.sh.tera", include_str!("../templates/scripts/new-cluster.sh.tera")),
    ("spec.yaml.tera", include_str!("../templates/spec.yaml.tera")),
    ("box/build.sh", include_str!("../templates/box/build.sh")),
    ("box/compile.sh", include_str!("../templates/box/compile.sh")),
    ("box/lib.sh", include_str!("../templates/box/lib.sh")),
    ("box/settle.pl", include_str!("../templates/box/settle.pl")),
];

/// Returns a template's text: the override in `dir` if there is one, else the built-in.
pub fn template_text(name: &str, dir: Option<&Path>) -> Result<String> {
    if let Some(dir) = dir {
        let p = dir.join(name);
        if p.is_file() {
            return std::fs::read_to_string(&p).map_err(|e| Error::io(p, e));
        }
    }
    TEMPLATES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.to_string())
        .ok_or_else(|| Error::Template { name: name.into(), message: "no such template".into() })
}

/// Copies the built-in templates into `dir` for editing; refuses to overwrite.
pub fn export(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (name, text) in TEMPLATES {
        let p = dir.join(name);
        if p.exists() {
            return Err(Error::usage(format!("{} already exists", p.display()), "export into an empty directory"));
        }
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
        written.push(p);
    }
    Ok(written)
}
