//! The cluster spec as the user writes it (`clusters/*.yaml`), and loading it
//! with errors that name file, line, column and field.
//!
//! This module only parses. What the values mean, and whether they fit
//! together, is the planner's business (`plan.rs`).

use crate::error::SpecError;
pub use crate::providers::kind::Provider;
use crate::spans::{offset_of, Pos, SpanIndex};
use miette::NamedSource;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Specs are hand-written files of a few dozen lines; anything this big is a mistake.
const MAX_SPEC_BYTES: usize = 1 << 20;

pub const MINIMAL_SPEC: &str =
    "name: demo\nversion: 15\nbox: clusterlab/bookworm-pg15\nprovider: docker\ntopology: {followers: 2}";

/// One database test cluster.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Cluster name: lowercase letters, digits and `-`; names the VMs and the working directory.
    pub name: String,
    /// Database engine. Only `postgres` today.
    #[serde(default)]
    pub engine: Engine,
    /// PostgreSQL major version: 9.4, 9.5, 9.6, 10 ... 18.
    pub version: Scalar,
    /// Vagrant box (libvirt, virtualbox) or image (docker). Default: `clusterlab/<debian>-pg<version>`.
    #[serde(rename = "box", default)]
    pub box_name: Option<String>,
    /// Box version constraint, passed to `config.vm.box_version`.
    #[serde(default)]
    pub box_version: Option<String>,
    /// Vagrant provider.
    #[serde(default)]
    pub provider: Provider,
    /// Private network as a CIDR; node addresses come from it unless given. Default 10.42.0.0/24.
    #[serde(default)]
    pub network: Option<String>,
    /// CPUs and memory of every node.
    #[serde(default)]
    pub resources: Resources,
    /// Provider tuning (libvirt: software emulation, CPU model, direct kernel boot).
    #[serde(default)]
    pub provider_options: ProviderOptions,
    #[serde(default)]
    pub topology: Topology,
    #[serde(default)]
    pub replication: Replication,
    /// Extra postgresql.conf settings, applied on every node after clusterlab's own.
    #[serde(default)]
    pub postgresql_conf: BTreeMap<String, Scalar>,
    /// Extra pg_hba.conf lines, added after clusterlab's own on every node.
    #[serde(default)]
    pub pg_hba: Vec<String>,
    /// SQL files (relative to the spec) loaded on the leader, in order, after provisioning.
    #[serde(default)]
    pub sql: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    #[default]
    Postgres,
    /// Reserved: Apache Cassandra support is planned, not built.
    Cassandra,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// MiB per node.
    #[serde(default = "default_memory")]
    pub memory: u32,
    /// MiB: each node's data directory on a filesystem of its own of this
    /// size (docker: a tmpfs, which is memory; libvirt: a second virtual
    /// disk), which `fault disk-full` fills. Unset: the machine's own disk.
    #[serde(default)]
    pub disk: Option<u32>,
    /// MiB: each node's WAL directory (pg_wal, pg_xlog before 10) on a
    /// filesystem of its own of this size, the data directory's `pg_wal`
    /// a symbolic link to it (as `initdb --waldir` makes it), which
    /// `fault disk-full --wal` fills. Unset: WAL stays in the data directory.
    #[serde(default)]
    pub wal_disk: Option<u32>,
}

fn default_cpus() -> u32 {
    1
}
fn default_memory() -> u32 {
    768
}

impl Default for Resources {
    fn default() -> Self {
        Resources { cpus: default_cpus(), memory: default_memory(), disk: None, wal_disk: None }
    }
}

/// libvirt settings; unset values keep the box's own defaults.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderOptions {
    /// `kvm`, `qemu` (software emulation), or `auto` (the default): KVM and
    /// the host's CPU where a KVM guest boots on this host, else emulation.
    #[serde(default)]
    pub driver: Option<String>,
    /// e.g. `host-passthrough`, `host-model`, `custom`.
    #[serde(default)]
    pub cpu_mode: Option<String>,
    /// CPU model when cpu_mode is `custom`, e.g. `qemu64`.
    #[serde(default)]
    pub cpu_model: Option<String>,
    /// Kernel, initrd and command line for boxes booted without a bootloader.
    #[serde(default)]
    pub kernel: Option<String>,
    #[serde(default)]
    pub initrd: Option<String>,
    #[serde(default)]
    pub cmd_line: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    #[serde(default)]
    pub leader: NodeSpec,
    /// A number of followers (named `<leader>` + 2, 3, ...) or a list of them.
    #[serde(default)]
    pub followers: Followers,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Host name of the node. Default for the leader: `pg1`.
    #[serde(default)]
    pub name: Option<String>,
    /// Address on the private network. Default: the next free one from .10 up.
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowerSpec {
    pub name: String,
    #[serde(default)]
    pub address: Option<String>,
    /// Node this follower streams from (cascading). Default: the leader.
    #[serde(default)]
    pub upstream: Option<String>,
    /// Delayed standby: `recovery_min_apply_delay`, e.g. `5min`, `30s`, `1h`.
    #[serde(default)]
    pub apply_delay: Option<Scalar>,
    /// With `replication.mode: sync`, whether this follower is a synchronous standby (default true).
    #[serde(default)]
    pub sync: Option<bool>,
}

/// `followers: 2` or `followers: [{name: a}, {name: b, upstream: a}]`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Followers {
    Count(u32),
    List(Vec<FollowerSpec>),
}

impl Default for Followers {
    fn default() -> Self {
        Followers::Count(2)
    }
}

// Hand-written so that errors inside a follower keep serde's own message
// (an untagged enum would only say "did not match any variant").
impl<'de> Deserialize<'de> for Followers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Followers;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number of followers or a list of followers")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Followers, E> {
                u32::try_from(n).map(Followers::Count).map_err(|_| E::custom("too many followers"))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Followers, E> {
                if n < 0 {
                    return Err(E::custom("the number of followers cannot be negative"));
                }
                self.visit_u64(n as u64)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Followers, A::Error> {
                Vec::<FollowerSpec>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(Followers::List)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Replication {
    /// One physical replication slot per follower, named after it, on its upstream.
    #[serde(default = "yes")]
    pub slots: bool,
    #[serde(default)]
    pub mode: Mode,
    /// Override the computed `synchronous_standby_names` (sync mode only).
    #[serde(default)]
    pub synchronous_standby_names: Option<String>,
    /// WAL archiving on the leader into /var/lib/postgresql/wal-archive.
    #[serde(default)]
    pub archive: bool,
    /// TLS on the replication connections (walreceivers, base backups,
    /// pg_rewind): `sslmode=require` instead of `disable`. Off by default:
    /// the cluster's network is private, and under software emulation TLS
    /// made a base backup take 11 s instead of 4.
    #[serde(default)]
    pub ssl: bool,
}

fn yes() -> bool {
    true
}

impl Default for Replication {
    fn default() -> Self {
        Replication { slots: true, mode: Mode::Async, synchronous_standby_names: None, archive: false, ssl: false }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Async,
    Sync,
}

/// A YAML scalar kept as text: `version: 9.4`, `version: "9.4"` and
/// `work_mem: 64MB` all arrive as strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Scalar(pub String);

impl JsonSchema for Scalar {
    fn schema_name() -> String {
        "Scalar".into()
    }
    fn json_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        use schemars::schema::{InstanceType, SchemaObject, SingleOrVec};
        SchemaObject {
            instance_type: Some(SingleOrVec::Vec(vec![
                InstanceType::String,
                InstanceType::Number,
                InstanceType::Boolean,
            ])),
            ..Default::default()
        }
        .into()
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(if v { "on" } else { "off" }.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The text a spec came from, kept to place errors found later.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    pub index: SpanIndex,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Source {
        let text = text.into();
        Source { path: path.into(), index: SpanIndex::build(&text), text }
    }

    /// The directory relative paths in the spec are resolved against.
    pub fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// An error about `field` (a path like `topology.followers[1].upstream`).
    pub fn error(&self, field: &str, message: impl Into<String>, hint: impl Into<String>) -> Box<SpecError> {
        let pos = if field.is_empty() { None } else { self.index.find(field) };
        self.error_at(pos, field, message.into(), Some(hint.into()))
    }

    fn error_at(&self, pos: Option<Pos>, field: &str, message: String, hint: Option<String>) -> Box<SpecError> {
        let file = self.path.display().to_string();
        let location = match pos {
            Some(p) => format!("{file}:{}:{}", p.line, p.column),
            None => file.clone(),
        };
        let span = pos.map(|p| {
            let len = self.text[p.offset..].find(['\n', ':']).unwrap_or(0).max(1);
            (p.offset, len).into()
        });
        Box::new(SpecError {
            location,
            field: if field.is_empty() { String::new() } else { format!("{field}: ") },
            message,
            hint: hint.filter(|h| !h.is_empty()),
            src: NamedSource::new(file, self.text.clone()),
            span,
        })
    }
}

/// Reads and parses a spec file.
pub fn load(path: &Path) -> Result<(Spec, Source), crate::error::Error> {
    let bytes = std::fs::read(path).map_err(|e| crate::error::Error::io(path, e))?;
    Ok(parse_bytes(path, bytes)?)
}

pub fn parse_bytes(path: &Path, bytes: Vec<u8>) -> Result<(Spec, Source), Box<SpecError>> {
    if bytes.len() > MAX_SPEC_BYTES {
        let src = Source::new(path, String::new());
        return Err(src.error_at(
            None,
            "",
            format!("the file is {} bytes; a spec is at most {MAX_SPEC_BYTES} bytes", bytes.len()),
            Some("is this the right file? A cluster spec is a short YAML document".into()),
        ));
    }
    // Some editors start UTF-8 files with a byte-order mark; YAML does not want it.
    let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let good = String::from_utf8_lossy(&e.as_bytes()[..valid]).into_owned();
            let line = good.matches('\n').count() + 1;
            let column = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let src = Source::new(path, good.clone());
            let pos = Pos { line, column, offset: good.len() };
            return Err(src.error_at(
                Some(pos),
                "",
                format!("the file is not UTF-8 (invalid byte at offset {valid})"),
                Some("save the spec as UTF-8 text".into()),
            ));
        }
    };
    let src = Source::new(path, text);
    parse(&src).map(|spec| (spec, src))
}

/// Parses `src.text`; syntax and type errors carry serde's position.
pub fn parse(src: &Source) -> Result<Spec, Box<SpecError>> {
    if src.text.trim().is_empty() || src.text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Err(src.error_at(
            None,
            "",
            "the file is empty".into(),
            Some(format!("a minimal spec is:\n{MINIMAL_SPEC}\n(or run `clusterlab new NAME`)")),
        ));
    }
    serde_yaml::from_str::<Spec>(&src.text).map_err(|e| {
        let pos = e.location().map(|l| Pos {
            line: l.line(),
            column: l.column(),
            offset: offset_of(&src.text, l.line(), l.column()),
        });
        let mut raw = e.to_string();
        if let Some(l) = e.location() {
            // The error's own position is shown in front; other positions stay.
            raw = raw.replace(&format!(" at line {} column {}", l.line(), l.column()), "");
        }
        let (field, message) = split_serde_message(&raw);
        let hint = hint_for(&message);
        src.error_at(pos, &field, message, hint)
    })
}

/// serde_yaml says `topology.followers[0]: unknown field ...`: split off the field.
fn split_serde_message(raw: &str) -> (String, String) {
    let msg = raw;
    if let Some((field, rest)) = msg.split_once(": ") {
        if !field.is_empty() && !field.contains(' ') {
            return (field.to_string(), rest.to_string());
        }
    }
    (String::new(), msg.to_string())
}

fn hint_for(message: &str) -> Option<String> {
    let hint = if message.starts_with("unknown field") {
        "check the spelling; `clusterlab schema` lists every field"
    } else if message.starts_with("missing field") {
        "add the field; `clusterlab new NAME` writes a complete, commented spec"
    } else if message.starts_with("unknown variant") {
        "use one of the values listed"
    } else if message.starts_with("invalid type") {
        "give a value of the expected type; `clusterlab schema` shows the types"
    } else {
        "fix the YAML at that line (indentation, a missing `:` or an unclosed quote are common causes)"
    };
    Some(hint.into())
}

pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Spec);
    serde_json::to_string_pretty(&schema).expect("schema serializes")
}
