//! One cell: a combination of values applied to the base spec, named after
//! those values, written beside the matrix file and planned.

use super::file::{mode_str, yaml_error, Axes, Axis, Combo, Step};
use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::spec::{Followers, Mode, Source, Spec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One cell: a full spec of its own, and the steps to run on it.
#[derive(Debug, Clone)]
pub struct Cell {
    pub name: String,
    /// The matrix file's stem (`clog-loss`): with several files, reports
    /// name a cell `clog-loss/pg94-f2-slots`.
    pub matrix: String,
    /// The cell's spec without its name and network: cells of several files
    /// with the same key need the same cluster, so one serves them all.
    pub share_key: String,
    /// `<matrix dir>/.clusterlab/matrix-<stem>/<name>.yaml`.
    pub spec_path: PathBuf,
    pub spec_text: String,
    pub steps: Vec<Step>,
}

/// The base spec, typed (for the values cells inherit) and as YAML (so that
/// fields this module does not know about reach the cells unchanged).
pub(super) struct Base {
    spec: Spec,
    doc: serde_yaml::Value,
    /// Absolute, for rewriting the spec's relative `sql:` paths.
    dir: PathBuf,
}

impl Base {
    /// The base spec the matrix file (`src`) names at `path`.
    pub(super) fn load(src: &Source, path: &Path) -> Result<Base> {
        if !path.is_file() {
            return Err(src
                .error("base", format!("{} does not exist", path.display()), "give the base spec's path relative to the matrix file")
                .into());
        }
        let (spec, base_src) = crate::spec::load(path)?;
        let doc: serde_yaml::Value = serde_yaml::from_str(&base_src.text).map_err(|e| yaml_error(&base_src, &e))?;
        let base_dir = std::path::absolute(base_src.dir()).map_err(|e| Error::io(base_src.dir(), e))?;
        Ok(Base { spec, doc, dir: base_dir })
    }
}

impl Cell {
    /// Writes the spec (when changed) and plans it; checks the steps' nodes.
    pub fn load(&self) -> Result<Cluster> {
        if let Some(dir) = self.spec_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        if std::fs::read_to_string(&self.spec_path).ok().as_deref() != Some(self.spec_text.as_str()) {
            crate::workdir::write_atomic(&self.spec_path, self.spec_text.as_bytes())?;
        }
        let cluster = Cluster::load(&self.spec_path, None)?;
        let names = || cluster.plan.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ");
        for s in &self.steps {
            if let Some(node) = s.node.as_ref().filter(|n| cluster.plan.node(n).is_none()) {
                return Err(Error::usage(format!("step `{}` runs on `{node}`, which this cell does not have", s.name), format!("nodes: {}", names())));
            }
            if let Some(log) = s.log_expect().filter(|l| cluster.plan.node(&l.node).is_none()) {
                return Err(Error::usage(format!("step `{}` reads the server log of `{}`, which this cell does not have", s.name, log.node), format!("nodes: {}", names())));
            }
        }
        Ok(cluster)
    }
}

/// The cell's name and spec: the base document with the cell's values applied.
pub(super) fn cell_spec(base: &Base, combo: &Combo, axes: &Axes, boxes: &BTreeMap<String, String>, network: &str) -> (String, serde_yaml::Value) {
    use serde_yaml::Value;
    let spec = &base.spec;
    let base_version = spec.version.0.trim().to_string();
    let version = combo.get(Axis::Version).unwrap_or_else(|| base_version.clone());
    let followers = combo.followers.unwrap_or(match &spec.topology.followers {
        Followers::Count(n) => *n,
        Followers::List(l) => l.len() as u32,
    });
    let slots = combo.slots.unwrap_or(spec.replication.slots);
    let mode = combo.mode.unwrap_or(spec.replication.mode);
    let provider = combo.provider.unwrap_or(spec.provider);
    // The base's box is for the base's version: a cell of another version
    // without a mapped box gets the planner's default box for its version.
    let box_name = combo
        .box_name
        .clone()
        .or_else(|| boxes.get(&version).cloned())
        .or_else(|| if version == base_version { spec.box_name.clone() } else { None });

    let mut name = format!("pg{}-f{followers}-{}", slug(&version), if slots { "slots" } else { "noslots" });
    if mode == Mode::Sync {
        name += "-sync";
    }
    if axes.has(Axis::Box) {
        let last = box_name.as_deref().map_or("default", |b| b.rsplit('/').next().unwrap_or(b));
        name = format!("{name}-{}", slug(last));
    }
    if axes.has(Axis::Provider) {
        name = format!("{name}-{}", provider.as_str());
    }

    let mut doc = base.doc.clone();
    let m = doc.as_mapping_mut().expect("a spec that parsed is a mapping");
    let s = |t: &str| Value::String(t.to_string());
    m.insert(s("name"), s(&name));
    if combo.version.is_some() {
        m.insert(s("version"), s(&version));
    }
    match &box_name {
        Some(b) => m.insert(s("box"), s(b)),
        None => m.remove("box"),
    };
    if let Some(p) = combo.provider {
        m.insert(s("provider"), s(p.as_str()));
    }
    m.insert(s("network"), s(network));
    if let Some(n) = combo.followers {
        sub_mapping(m, "topology").insert(s("followers"), Value::Number(n.into()));
    }
    if let Some(b) = combo.slots {
        sub_mapping(m, "replication").insert(s("slots"), Value::Bool(b));
    }
    if let Some(md) = combo.mode {
        sub_mapping(m, "replication").insert(s("mode"), s(mode_str(md)));
    }
    // The cell's spec lives elsewhere: SQL files must not be relative to it.
    if !spec.sql.is_empty() {
        let files = spec.sql.iter().map(|f| s(&base.dir.join(f).display().to_string())).collect();
        m.insert(s("sql"), Value::Sequence(files));
    }
    (name, doc)
}

/// The cluster a cell needs, whatever its name and network: its spec
/// without those two (both only keep cells of one file apart).
pub(super) fn share_key(doc: &serde_yaml::Value) -> String {
    let mut d = doc.clone();
    if let Some(m) = d.as_mapping_mut() {
        m.remove("name");
        m.remove("network");
    }
    serde_yaml::to_string(&d).expect("a YAML value serializes")
}

/// `key` of `m` as a mapping, created (or replacing a null) when missing.
fn sub_mapping<'a>(m: &'a mut serde_yaml::Mapping, key: &str) -> &'a mut serde_yaml::Mapping {
    let v = m.entry(serde_yaml::Value::String(key.into())).or_insert(serde_yaml::Value::Null);
    if !v.is_mapping() {
        *v = serde_yaml::Value::Mapping(Default::default());
    }
    v.as_mapping_mut().expect("just made a mapping")
}

/// Lowercase letters, digits and `-`, for cell names: `9.4` -> `94`.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            '.' => {}
            _ if !out.ends_with('-') => out.push('-'),
            _ => {}
        }
    }
    out.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Provider;

    fn axes(yaml: &str) -> Axes {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn base(yaml: &str) -> Base {
        let src = Source::new("/specs/base.yaml", yaml);
        Base { spec: crate::spec::parse(&src).unwrap(), doc: serde_yaml::from_str(yaml).unwrap(), dir: "/specs".into() }
    }

    const BASE: &str = "name: b\nversion: 15\nbox: clusterlab/bookworm-pg15\nprovider: docker\ntopology: {followers: 2}\nsql: [data/seed.sql]\n";

    #[test]
    fn cells_are_named_from_their_values() {
        let b = base(BASE);
        let none = BTreeMap::new();
        let name = |combo: &str, ax: &str| cell_spec(&b, &serde_yaml::from_str(combo).unwrap(), &axes(ax), &none, "10.50.0.0/24").0;
        assert_eq!(name("{}", "{}"), "pg15-f2-slots");
        assert_eq!(name("{version: 9.4, followers: 1, slots: false, mode: sync}", "{version: [9.4]}"), "pg94-f1-noslots-sync");
        assert_eq!(name("{box: generic/Debian12}", "{box: [generic/Debian12]}"), "pg15-f2-slots-debian12");
        assert_eq!(name("{provider: libvirt}", "{provider: [libvirt]}"), "pg15-f2-slots-libvirt");
    }

    #[test]
    fn cell_spec_applies_values_and_keeps_the_rest() {
        let b = base(BASE);
        let combo: Combo = serde_yaml::from_str("{version: 13, followers: 1, slots: false, mode: sync}").unwrap();
        let (name, doc) = cell_spec(&b, &combo, &axes("{version: [13]}"), &BTreeMap::new(), "10.50.3.0/24");
        let spec: Spec = serde_yaml::from_value(doc).unwrap();
        assert_eq!(name, "pg13-f1-noslots-sync");
        assert_eq!(spec.name, name);
        assert_eq!(spec.version.0, "13");
        // Another version without a mapped box: the planner's default box.
        assert_eq!(spec.box_name, None);
        assert_eq!(spec.provider, Provider::Docker);
        assert_eq!(spec.network.as_deref(), Some("10.50.3.0/24"));
        assert!(matches!(spec.topology.followers, Followers::Count(1)));
        assert!(!spec.replication.slots);
        assert_eq!(spec.replication.mode, Mode::Sync);
        assert_eq!(spec.sql, ["/specs/data/seed.sql"]);
    }

    #[test]
    fn boxes_map_versions_to_boxes() {
        let b = base(BASE);
        let boxes: BTreeMap<String, String> = serde_yaml::from_str("{13: clusterlab/bullseye-pg13, 9.4: generic/debian9}").unwrap();
        let box_of = |combo: &str| {
            let (_, doc) = cell_spec(&b, &serde_yaml::from_str(combo).unwrap(), &axes("{version: [13]}"), &boxes, "10.50.0.0/24");
            serde_yaml::from_value::<Spec>(doc).unwrap().box_name
        };
        assert_eq!(box_of("{version: 13}").as_deref(), Some("clusterlab/bullseye-pg13"));
        assert_eq!(box_of("{version: 9.4}").as_deref(), Some("generic/debian9"));
        assert_eq!(box_of("{version: 17}"), None);
        // The base's own version keeps the base's box; a cell's box wins over the map.
        assert_eq!(box_of("{version: 15}").as_deref(), Some("clusterlab/bookworm-pg15"));
        assert_eq!(box_of("{version: 13, box: my/box}").as_deref(), Some("my/box"));
    }

    #[test]
    fn the_share_key_ignores_name_and_network_only() {
        let b = base(BASE);
        let spec = |combo: &str, net: &str| cell_spec(&b, &serde_yaml::from_str(combo).unwrap(), &axes("{version: [13]}"), &BTreeMap::new(), net).1;
        let k = share_key(&spec("{version: 13}", "10.50.0.0/24"));
        assert_eq!(k, share_key(&spec("{version: 13}", "10.60.7.0/24")));
        assert_ne!(k, share_key(&spec("{version: 13, followers: 1}", "10.50.0.0/24")));
        assert_ne!(k, share_key(&spec("{version: 12}", "10.50.0.0/24")));
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("9.4"), "94");
        assert_eq!(slug("Bookworm_PG15"), "bookworm-pg15");
    }
}
