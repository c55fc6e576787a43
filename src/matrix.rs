//! `clusterlab matrix`: one scenario over many versions and topologies.
//!
//! A matrix file names a base spec and axes (`version`, `followers`, `slots`,
//! `mode`, `box`, `provider`). Expansion follows GitHub Actions: the product
//! of the axes, minus `exclude`, plus or extended by `include`. Every cell
//! becomes a full spec of its own (own name, so own VM names and working
//! directory; own /24 network), written under
//! `.clusterlab/matrix-<stem>/` beside the matrix file and validated by the
//! planner before anything starts. Cells then run on `--jobs` worker threads:
//! up -> verify -> steps -> destroy, reported as progress lines, a summary
//! table, JUnit and JSON.

use crate::cluster::{Cluster, Ctx, Method};
use crate::error::{Error, Result, SpecError};
use crate::spec::{Followers, Mode, Provider, Scalar, Source, Spec};
use ipnet::Ipv4Net;
use miette::{Diagnostic, NamedSource};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Network the cells' /24s are carved from when the matrix names none.
const DEFAULT_NETWORK: &str = "10.50.0.0/16";
/// Seconds a step may run when it gives no `timeout`.
const DEFAULT_STEP_TIMEOUT: u64 = 300;
/// How long verify waits for replication to settle (as `up` does).
const VERIFY_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of output kept for a failure in the reports.
const TAIL_LINES: usize = 60;
/// Lines of it repeated under the summary table.
const SUMMARY_TAIL_LINES: usize = 15;

#[derive(Debug, Clone, clap::Args)]
pub struct MatrixArgs {
    /// The matrix file (e.g. clusters/ci.matrix.yaml).
    pub file: PathBuf,
    /// Cells run at once (default: as many as fit in available memory).
    #[arg(short, long, value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// After the first failure start no new cell (the running ones finish).
    #[arg(long)]
    pub fail_fast: bool,
    /// Leave failed or interrupted cells up for debugging, and print how to reach them.
    #[arg(long)]
    pub keep_failed: bool,
    /// Only cells whose name contains PATTERN, or matches it with `*` as a wildcard (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub filter: Vec<String>,
    /// Only the cell NAME (for CI fan-out: one runner per cell, see --list).
    #[arg(long, value_name = "NAME", conflicts_with = "filter")]
    pub cell: Option<String>,
    /// Skip the replication check after up (steps still run).
    #[arg(long)]
    pub no_verify: bool,
    /// Write a JUnit XML report: one testcase per cell.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a JSON summary: cells with result, phase timings and error.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Print the cells instead of running them.
    #[arg(long)]
    pub list: bool,
    /// Format of --list.
    #[arg(long, value_enum, default_value_t = ListFormat::Text, requires = "list")]
    pub format: ListFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// One cell name per line.
    Text,
    /// `{"include": [...]}` for a GitHub Actions `strategy.matrix: ${{ fromJSON(...) }}`.
    Github,
    /// A `parallel: matrix:` snippet for GitLab CI.
    Gitlab,
}

// ---------------------------------------------------------------------------
// The matrix file
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatrixFile {
    /// The spec every cell starts from, relative to the matrix file.
    base: PathBuf,
    #[serde(default)]
    axes: Axes,
    #[serde(default)]
    include: Vec<Combo>,
    #[serde(default)]
    exclude: Vec<Combo>,
    /// Version -> box, for cells whose version comes from the matrix.
    #[serde(default)]
    boxes: BTreeMap<String, String>,
    /// Each cell gets the next /24 of this network.
    #[serde(default)]
    network: Option<String>,
    /// Steps every cell runs after verify.
    #[serde(default)]
    steps: Vec<Step>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Axes {
    #[serde(default)]
    version: Vec<Scalar>,
    #[serde(default)]
    followers: Vec<u32>,
    #[serde(default)]
    slots: Vec<bool>,
    #[serde(default)]
    mode: Vec<Mode>,
    #[serde(default, rename = "box")]
    box_name: Vec<String>,
    #[serde(default)]
    provider: Vec<Provider>,
}

/// One combination of axis values (unset: the base spec's value); also the
/// shape of an `include` or `exclude` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Combo {
    version: Option<Scalar>,
    followers: Option<u32>,
    slots: Option<bool>,
    mode: Option<Mode>,
    #[serde(rename = "box")]
    box_name: Option<String>,
    provider: Option<Provider>,
    /// Steps an include entry adds to the cells it matches or creates.
    #[serde(default)]
    steps: Vec<Step>,
}

/// A test step, run on a node after verify.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    /// Node to run on (default: the leader).
    #[serde(default)]
    pub node: Option<String>,
    /// Shell command, run as root with `bash -c`.
    #[serde(default)]
    pub run: Option<String>,
    /// SQL text, sent as the lab user to the lab database.
    #[serde(default)]
    pub sql: Option<String>,
    /// SQL file relative to the matrix file; read at load time into `sql`.
    #[serde(default, skip_serializing)]
    pub sql_file: Option<PathBuf>,
    /// Seconds (default 300).
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

fn default_timeout() -> u64 {
    DEFAULT_STEP_TIMEOUT
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Axis {
    Version,
    Followers,
    Slots,
    Mode,
    Box,
    Provider,
}

impl Axis {
    /// In product order: the first axis varies slowest, as in GitHub Actions.
    const ALL: [Axis; 6] = [Axis::Version, Axis::Followers, Axis::Slots, Axis::Mode, Axis::Box, Axis::Provider];

    fn key(self) -> &'static str {
        match self {
            Axis::Version => "version",
            Axis::Followers => "followers",
            Axis::Slots => "slots",
            Axis::Mode => "mode",
            Axis::Box => "box",
            Axis::Provider => "provider",
        }
    }
}

fn mode_str(m: Mode) -> &'static str {
    match m {
        Mode::Async => "async",
        Mode::Sync => "sync",
    }
}

impl Combo {
    /// The value of `axis` as text, for comparing and naming.
    fn get(&self, axis: Axis) -> Option<String> {
        match axis {
            Axis::Version => self.version.as_ref().map(|v| v.0.trim().to_string()),
            Axis::Followers => self.followers.map(|n| n.to_string()),
            Axis::Slots => self.slots.map(|b| b.to_string()),
            Axis::Mode => self.mode.map(|m| mode_str(m).to_string()),
            Axis::Box => self.box_name.clone(),
            Axis::Provider => self.provider.map(|p| p.as_str().to_string()),
        }
    }

    fn set_from(&mut self, other: &Combo, axis: Axis) {
        match axis {
            Axis::Version => self.version = other.version.clone(),
            Axis::Followers => self.followers = other.followers,
            Axis::Slots => self.slots = other.slots,
            Axis::Mode => self.mode = other.mode,
            Axis::Box => self.box_name = other.box_name.clone(),
            Axis::Provider => self.provider = other.provider,
        }
    }
}

impl Axes {
    fn has(&self, axis: Axis) -> bool {
        match axis {
            Axis::Version => !self.version.is_empty(),
            Axis::Followers => !self.followers.is_empty(),
            Axis::Slots => !self.slots.is_empty(),
            Axis::Mode => !self.mode.is_empty(),
            Axis::Box => !self.box_name.is_empty(),
            Axis::Provider => !self.provider.is_empty(),
        }
    }

    fn is_empty(&self) -> bool {
        !Axis::ALL.iter().any(|&a| self.has(a))
    }

    /// Every combination of the axes' values, first axis outermost; none without axes.
    fn product(&self) -> Vec<Combo> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut combos = vec![Combo::default()];
        combos = spread(combos, &self.version, |c, v| c.version = Some(v.clone()));
        combos = spread(combos, &self.followers, |c, v| c.followers = Some(*v));
        combos = spread(combos, &self.slots, |c, v| c.slots = Some(*v));
        combos = spread(combos, &self.mode, |c, v| c.mode = Some(*v));
        combos = spread(combos, &self.box_name, |c, v| c.box_name = Some(v.clone()));
        spread(combos, &self.provider, |c, v| c.provider = Some(*v))
    }
}

/// Each combination once per value (an empty axis leaves them as they are).
fn spread<T>(combos: Vec<Combo>, values: &[T], set: impl Fn(&mut Combo, &T)) -> Vec<Combo> {
    if values.is_empty() {
        return combos;
    }
    let mut out = Vec::with_capacity(combos.len() * values.len());
    for c in &combos {
        for v in values {
            let mut c = c.clone();
            set(&mut c, v);
            out.push(c);
        }
    }
    out
}

/// GitHub Actions' semantics: the product of the axes; minus every
/// combination that matches all keys of an `exclude` entry; then each
/// `include` entry extends every original combination whose axis values it
/// does not contradict (adding its other keys, and its steps), or, matching
/// none, is a combination of its own. Entries never extend each other's new
/// combinations. No axes and no includes: one cell, the base spec itself.
fn expand(axes: &Axes, exclude: &[Combo], include: &[Combo]) -> Vec<Combo> {
    let excluded = |c: &Combo| exclude.iter().any(|e| Axis::ALL.iter().all(|&a| e.get(a).is_none() || e.get(a) == c.get(a)));
    let mut combos: Vec<Combo> = axes.product().into_iter().filter(|c| !excluded(c)).collect();
    let original = combos.len();
    for inc in include {
        let mut matched = false;
        for c in &mut combos[..original] {
            let fits = Axis::ALL.iter().all(|&a| !axes.has(a) || inc.get(a).is_none() || inc.get(a) == c.get(a));
            if fits {
                for a in Axis::ALL.into_iter().filter(|&a| !axes.has(a) && inc.get(a).is_some()) {
                    c.set_from(inc, a);
                }
                c.steps.extend(inc.steps.iter().cloned());
                matched = true;
            }
        }
        if !matched {
            combos.push(inc.clone());
        }
    }
    if combos.is_empty() && axes.is_empty() && include.is_empty() {
        combos.push(Combo::default());
    }
    combos
}

/// One cell: a full spec of its own, and the steps to run on it.
#[derive(Debug, Clone)]
pub struct Cell {
    pub name: String,
    /// `<matrix dir>/.clusterlab/matrix-<stem>/<name>.yaml`.
    pub spec_path: PathBuf,
    pub spec_text: String,
    pub steps: Vec<Step>,
}

#[derive(Debug)]
pub struct Matrix {
    pub path: PathBuf,
    /// `ci` for `ci.matrix.yaml`: names the cells' directory and the JUnit classname.
    pub stem: String,
    pub cells: Vec<Cell>,
}

/// The base spec, typed (for the values cells inherit) and as YAML (so that
/// fields this module does not know about reach the cells unchanged).
struct Base {
    spec: Spec,
    doc: serde_yaml::Value,
    /// Absolute, for rewriting the spec's relative `sql:` paths.
    dir: PathBuf,
}

impl Matrix {
    /// Reads, checks and expands a matrix file; writes nothing.
    pub fn load(path: &Path) -> Result<Matrix> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let src = Source::new(path, text);
        let mut file: MatrixFile = serde_yaml::from_str(&src.text).map_err(|e| yaml_error(&src, &e))?;
        let dir = src.dir().to_path_buf();

        let base_path = dir.join(&file.base);
        if !base_path.is_file() {
            return Err(src
                .error("base", format!("{} does not exist", base_path.display()), "give the base spec's path relative to the matrix file")
                .into());
        }
        let (spec, base_src) = crate::spec::load(&base_path)?;
        let doc: serde_yaml::Value = serde_yaml::from_str(&base_src.text).map_err(|e| yaml_error(&base_src, &e))?;
        let base_dir = std::path::absolute(base_src.dir()).map_err(|e| Error::io(base_src.dir(), e))?;
        let base = Base { spec, doc, dir: base_dir };

        let net_text = file.network.as_deref().unwrap_or(DEFAULT_NETWORK);
        let net: Ipv4Net = net_text
            .parse()
            .ok()
            .filter(|n: &Ipv4Net| n.prefix_len() <= 24 && n.network() == n.addr())
            .ok_or_else(|| src.error("network", format!("`{net_text}` is not an IPv4 network of /24 or larger"), "write it like 10.50.0.0/16; each cell gets one /24 of it"))?;

        for (i, e) in file.exclude.iter().enumerate() {
            if !e.steps.is_empty() {
                return Err(src.error(&format!("exclude[{i}].steps"), "an exclude entry has no steps", "move the steps to an include entry").into());
            }
            if let Some(a) = Axis::ALL.into_iter().find(|&a| e.get(a).is_some() && !file.axes.has(a)) {
                return Err(src
                    .error(&format!("exclude[{i}].{}", a.key()), format!("`{}` is not an axis of this matrix", a.key()), "exclude only by keys listed under `axes`")
                    .into());
            }
        }
        check_steps(&mut file.steps, "steps", &src, &dir)?;
        for (i, inc) in file.include.iter_mut().enumerate() {
            check_steps(&mut inc.steps, &format!("include[{i}].steps"), &src, &dir)?;
        }

        let combos = expand(&file.axes, &file.exclude, &file.include);
        if combos.is_empty() {
            return Err(src.error("exclude", "the matrix has no cells: exclude removes every combination", "remove some exclude entries").into());
        }
        let stem = matrix_stem(path);
        let cells_dir = dir.join(".clusterlab").join(format!("matrix-{stem}"));
        let mut subnets = net.subnets(24).expect("a /24 or larger network has /24 subnets");
        let mut cells = Vec::new();
        for combo in &combos {
            let Some(subnet) = subnets.next() else {
                return Err(src
                    .error("network", format!("{net} has room for fewer /24s than the {} cells", combos.len()), "give a larger network, e.g. a /16")
                    .into());
            };
            let (name, doc) = cell_spec(&base, combo, &file.axes, &file.boxes, &subnet.to_string());
            let mut steps = file.steps.clone();
            steps.extend(combo.steps.iter().cloned());
            let spec_text = format!(
                "# Cell `{name}` of the matrix {}, generated by `clusterlab matrix`;\n# edit the matrix or its base spec instead: this file is rewritten.\n{}",
                path.display(),
                serde_yaml::to_string(&doc).expect("a YAML value serializes")
            );
            cells.push(Cell { spec_path: cells_dir.join(format!("{name}.yaml")), name, spec_text, steps });
        }

        let mut seen = BTreeSet::new();
        let twice: BTreeSet<&str> = cells.iter().filter(|c| !seen.insert(&c.name)).map(|c| c.name.as_str()).collect();
        if !twice.is_empty() {
            return Err(Error::usage(
                format!("{}: several cells would be named {}", path.display(), twice.into_iter().collect::<Vec<_>>().join(", ")),
                "cells are named by version, followers, slots and mode (plus box and provider when those are axes); make the combinations differ in those, e.g. give include entries' steps to an existing cell instead of adding a new one",
            ));
        }
        Ok(Matrix { path: path.to_path_buf(), stem, cells })
    }

    /// Writes every cell's spec and loads it through the planner. All
    /// problems are reported together, each with its cell's name.
    pub fn validate(&self) -> Result<Vec<Cluster>> {
        let mut clusters = Vec::new();
        let mut problems = Vec::new();
        for cell in &self.cells {
            match cell.load() {
                Ok(c) => clusters.push(c),
                Err(e) => problems.push(format!("  {}: {}", cell.name, describe(&e).replace('\n', "\n      "))),
            }
        }
        if problems.is_empty() {
            return Ok(clusters);
        }
        Err(Error::usage(
            format!("{}: {} of {} cells are invalid, so none was started:\n{}", self.path.display(), problems.len(), self.cells.len(), problems.join("\n")),
            "fix the matrix or its base spec (exclude the combinations that cannot work); `clusterlab check CELL-SPEC` shows an error in context",
        ))
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
        for s in &self.steps {
            if let Some(node) = &s.node {
                if cluster.plan.node(node).is_none() {
                    let names: Vec<&str> = cluster.plan.nodes.iter().map(|n| n.name.as_str()).collect();
                    return Err(Error::usage(format!("step `{}` runs on `{node}`, which this cell does not have", s.name), format!("nodes: {}", names.join(", "))));
                }
            }
        }
        Ok(cluster)
    }
}

/// `ci` for `clusters/ci.matrix.yaml`.
fn matrix_stem(path: &Path) -> String {
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = file.strip_suffix(".yaml").or_else(|| file.strip_suffix(".yml")).unwrap_or(&file);
    let stem = stem.strip_suffix(".matrix").unwrap_or(stem);
    if stem.is_empty() {
        "matrix".into()
    } else {
        stem.into()
    }
}

/// Each step runs exactly one of `run`, `sql` or `sql_file` (read here, so a
/// missing file is an error before anything starts).
fn check_steps(steps: &mut [Step], field: &str, src: &Source, dir: &Path) -> Result<(), SpecError> {
    for (i, s) in steps.iter_mut().enumerate() {
        let at = format!("{field}[{i}]");
        let actions = [s.run.is_some(), s.sql.is_some(), s.sql_file.is_some()].iter().filter(|b| **b).count();
        if actions != 1 {
            return Err(src.error(&at, format!("step `{}` needs exactly one of `run`, `sql` and `sql_file`", s.name), "e.g. `run: \"pg_isready\"` or `sql: \"SELECT 1\"`"));
        }
        if s.timeout == 0 {
            return Err(src.error(&format!("{at}.timeout"), "a timeout of 0 seconds ends the step at once", "give seconds, e.g. 300"));
        }
        if let Some(f) = s.sql_file.take() {
            let p = dir.join(&f);
            let text = std::fs::read_to_string(&p).map_err(|e| src.error(&format!("{at}.sql_file"), format!("cannot read {}: {e}", p.display()), "give a path relative to the matrix file"))?;
            s.sql = Some(text);
        }
    }
    Ok(())
}

/// The cell's name and spec: the base document with the cell's values applied.
fn cell_spec(base: &Base, combo: &Combo, axes: &Axes, boxes: &BTreeMap<String, String>, network: &str) -> (String, serde_yaml::Value) {
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

/// A serde error in a YAML file, placed at its line and column.
fn yaml_error(src: &Source, e: &serde_yaml::Error) -> SpecError {
    let raw = e.to_string();
    let message = raw.rfind(" at line ").map_or(raw.as_str(), |i| &raw[..i]).to_string();
    let file = src.path.display().to_string();
    let (location, span) = match e.location() {
        Some(l) => {
            let offset = crate::spans::offset_of(&src.text, l.line(), l.column());
            let len = src.text[offset..].find(['\n', ':']).unwrap_or(0).max(1);
            (format!("{file}:{}:{}", l.line(), l.column()), Some((offset, len).into()))
        }
        None => (file.clone(), None),
    };
    let hint = if message.contains("unknown field") {
        "check the spelling: a matrix has base, axes, include, exclude, boxes, network and steps; a step has name, node, run, sql, sql_file and timeout"
    } else {
        "fix the YAML at that line"
    };
    SpecError { location, field: String::new(), message, hint: Some(hint.into()), src: NamedSource::new(file, src.text.clone()), span }
}

/// An error on one line-ish, with its help when it has one.
fn describe(e: &Error) -> String {
    match e.help() {
        Some(h) => format!("{e}\nhint: {h}"),
        None => e.to_string(),
    }
}

/// `*` matches any run of characters; a pattern without `*` matches as a substring.
fn name_matches(name: &str, pattern: &str) -> bool {
    if !pattern.contains('*') {
        return name.contains(pattern);
    }
    let (p, s) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut si) = (0, 0);
    // Where the last `*` was, and how much of the name it has taken so far.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed,
    Interrupted,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseTime {
    /// `up`, `verify`, `step NAME` or `destroy`.
    pub name: String,
    pub seconds: f64,
    pub ok: bool,
}

/// What happened to one cell: the JSON summary's entries.
#[derive(Debug, Clone, Serialize)]
pub struct CellReport {
    pub name: String,
    pub result: Outcome,
    pub seconds: f64,
    pub phases: Vec<PhaseTime>,
    /// The phase that failed, for failed and interrupted cells.
    pub failed_phase: Option<String>,
    pub error: Option<String>,
    /// The tail of the failing phase's output (a step's stdout and stderr).
    pub output: Option<String>,
    pub spec: PathBuf,
    /// Left up by --keep-failed.
    pub kept: bool,
    /// The cell's vagrant logs: saved beside its spec before destroy, or in its kept working directory.
    pub logs: Option<PathBuf>,
    /// The cell's values as planned (version, followers, ...).
    pub values: serde_json::Value,
    /// The cell's progress lines and step output, for JUnit's system-out.
    #[serde(skip)]
    pub log: Vec<String>,
}

impl CellReport {
    fn new(cell: &Cell, cluster: &Cluster) -> CellReport {
        CellReport {
            name: cell.name.clone(),
            result: Outcome::Skipped,
            seconds: 0.0,
            phases: Vec::new(),
            failed_phase: None,
            error: None,
            output: None,
            spec: cell.spec_path.clone(),
            kept: false,
            logs: None,
            values: values_json(cell, cluster),
            log: Vec::new(),
        }
    }

    fn phase_seconds(&self, pred: impl Fn(&str) -> bool) -> Option<f64> {
        let matching: Vec<f64> = self.phases.iter().filter(|p| pred(&p.name)).map(|p| p.seconds).collect();
        (!matching.is_empty()).then(|| matching.iter().sum())
    }
}

/// The cell's values from its plan: what `--list --format github` prints and reports carry.
fn values_json(cell: &Cell, c: &Cluster) -> serde_json::Value {
    let p = &c.plan;
    serde_json::json!({
        "cell": cell.name,
        "version": p.version,
        "followers": p.nodes.len() - 1,
        "slots": p.slots,
        "mode": if p.sync { "sync" } else { "async" },
        "box": p.box_name,
        "provider": p.provider,
    })
}

/// Why a cell failed: the phase, one line, and the output worth keeping.
#[derive(Debug)]
struct Failure {
    phase: String,
    message: String,
    output: Option<String>,
    interrupted: bool,
}

impl Failure {
    fn new(phase: &str, message: impl Into<String>, output: Option<String>) -> Failure {
        Failure { phase: phase.into(), message: message.into(), output, interrupted: crate::signals::requested() }
    }

    /// The first line is the message; the rest (a command's output tail) and the hint are output.
    fn from_error(phase: &str, e: &Error) -> Failure {
        let text = describe(e);
        let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
        let mut f = Failure::new(phase, first, (!rest.trim().is_empty()).then(|| rest.to_string()));
        f.interrupted |= matches!(e, Error::Interrupted(_));
        f
    }
}

/// Seconds, to the millisecond (the reports need no more).
fn millis(d: Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// stdout and stderr of a step, labelled when both have something.
fn step_output(out: &crate::runner::Output) -> String {
    match (out.stdout.trim_end(), out.stderr.trim_end()) {
        ("", e) => e.to_string(),
        (o, "") => o.to_string(),
        (o, e) => format!("stdout:\n{o}\nstderr:\n{e}"),
    }
}

struct Session<'a> {
    /// Quiet: the cells' vagrant output goes to their logs/ only.
    ctx: Ctx<'a>,
    args: &'a MatrixArgs,
    start: Instant,
    show_progress: bool,
    /// Set by --fail-fast after a failure: start no new cells.
    stop: AtomicBool,
}

impl Session<'_> {
    /// A progress line for the terminal, also kept in the cell's log.
    fn note(&self, r: &mut CellReport, msg: &str) {
        let line = format!("[{:>6.1}s] {}: {msg}", self.start.elapsed().as_secs_f64(), r.name);
        if self.show_progress {
            eprintln!("{line}");
        }
        r.log.push(line);
    }

    fn timed<T>(&self, r: &mut CellReport, phase: &str, body: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
        let t = Instant::now();
        let out = body();
        r.phases.push(PhaseTime { name: phase.into(), seconds: millis(t.elapsed()), ok: out.is_ok() });
        out
    }

    fn run_cell(&self, cell: &Cell, cluster: &Cluster) -> CellReport {
        let t0 = Instant::now();
        let mut r = CellReport::new(cell, cluster);
        let mut failure = self.phases(cell, cluster, &mut r).err();
        let workdir_logs = cluster.workdir.path("logs");
        if failure.is_some() && self.args.keep_failed {
            r.kept = true;
            r.logs = Some(workdir_logs.clone());
            let p = shell_words::quote(&cell.spec_path.display().to_string()).into_owned();
            let leader = &cluster.plan.leader().name;
            self.note(&mut r, &format!("kept for debugging: `clusterlab status {p}`, `clusterlab ssh {p} {leader}`; `clusterlab destroy {p}` when done"));
        } else {
            if self.ctx.runner.is_real() {
                r.logs = save_logs(&workdir_logs, &cell.spec_path.with_extension("logs"));
            }
            self.note(&mut r, "destroy");
            let destroyed = self.timed(&mut r, "destroy", || cluster.destroy(&self.ctx).map_err(|e| Failure::from_error("destroy", &e)));
            match (destroyed, &mut failure) {
                (Err(e), None) => failure = Some(e),
                (Err(e), Some(f)) => f.output = Some(format!("{}\n(destroy failed too: {})", f.output.take().unwrap_or_default(), e.message)),
                (Ok(()), _) => {}
            }
        }
        let total = millis(t0.elapsed());
        r.seconds = total;
        match failure {
            None => {
                r.result = Outcome::Passed;
                self.note(&mut r, &format!("PASSED in {total:.1}s"));
            }
            Some(mut f) => {
                // The hints of cluster operations say `clusterlab status SPEC`
                // and point into logs/, which destroy removed: name this
                // cell's spec and where its logs were saved.
                let spec = format!(" {}", shell_words::quote(&cell.spec_path.display().to_string()));
                let logs = r.logs.as_ref().map_or_else(|| workdir_logs.display().to_string(), |l| l.display().to_string());
                f.output = f.output.map(|o| o.replace(" SPEC", &spec).replace(&workdir_logs.display().to_string(), &logs));
                r.result = if f.interrupted { Outcome::Interrupted } else { Outcome::Failed };
                let word = if f.interrupted { "INTERRUPTED" } else { "FAILED" };
                self.note(&mut r, &format!("{word} in {total:.1}s: {}: {}", f.phase, f.message));
                r.failed_phase = Some(f.phase);
                r.error = Some(f.message);
                r.output = f.output.map(|o| tail(&o, TAIL_LINES));
            }
        }
        r
    }

    /// up, verify and the steps; the first failure ends the cell.
    fn phases(&self, cell: &Cell, cluster: &Cluster, r: &mut CellReport) -> Result<(), Failure> {
        let real = self.ctx.runner.is_real();
        self.note(r, "up");
        // Render + up + provision. Verify is done here rather than by `up`, so
        // its time is its own phase and its report goes to the cell, not stdout.
        self.timed(r, "up", || cluster.up(&self.ctx, false, Some(Method::Skip)).map_err(|e| Failure::from_error("up", &e)))?;
        if self.args.no_verify {
            self.note(r, "verify skipped (--no-verify)");
        } else if !real {
            self.note(r, "verify skipped (dry run)");
        } else {
            interrupted("verify")?;
            self.timed(r, "verify", || {
                let password = cluster.workdir.lab_password().map_err(|e| Failure::from_error("verify", &e))?;
                let report = crate::verify::verify(&cluster.plan, &password, VERIFY_TIMEOUT);
                if report.ok {
                    return Ok(());
                }
                let first = report.nodes.iter().find(|n| !n.problems.is_empty()).map(|n| format!("{}: {}", n.node, n.problems.join("; ")));
                Err(Failure::new("verify", format!("replication broken: {}", first.unwrap_or_default()), Some(report.table())))
            })?;
            self.note(r, "verify ok");
        }
        for step in &cell.steps {
            let phase = format!("step {}", step.name);
            interrupted(&phase)?;
            let output = self.timed(r, &phase, || run_step(&self.ctx, cluster, step, &phase))?;
            let how = if !real && step.sql.is_some() { " (dry run: SQL not sent)" } else { "" };
            self.note(r, &format!("{phase}: ok{how}"));
            if !output.trim().is_empty() {
                r.log.push(tail(&output, TAIL_LINES));
            }
        }
        Ok(())
    }

    /// Workers take cells from a shared queue until it is empty, or until
    /// Ctrl-C / --fail-fast say to stop; cells not started are skipped.
    fn run_all(&self, cells: &[(&Cell, &Cluster)], jobs: usize) -> Vec<CellReport> {
        let queue = Mutex::new((0..cells.len()).collect::<VecDeque<usize>>());
        let results: Mutex<Vec<Option<CellReport>>> = Mutex::new(cells.iter().map(|_| None).collect());
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(|| loop {
                    let Some(i) = queue.lock().unwrap().pop_front() else { break };
                    let (cell, cluster) = cells[i];
                    let report = match self.why_not_start() {
                        Some(reason) => self.skipped(cell, cluster, reason),
                        None => self.run_cell(cell, cluster),
                    };
                    if self.args.fail_fast && matches!(report.result, Outcome::Failed | Outcome::Interrupted) {
                        self.stop.store(true, Ordering::SeqCst);
                    }
                    results.lock().unwrap()[i] = Some(report);
                });
            }
        });
        let results = results.into_inner().unwrap();
        results.into_iter().zip(cells).map(|(r, (cell, cluster))| r.unwrap_or_else(|| self.skipped(cell, cluster, "not started"))).collect()
    }

    fn why_not_start(&self) -> Option<&'static str> {
        if crate::signals::requested() {
            Some("interrupted before it started")
        } else if self.stop.load(Ordering::SeqCst) {
            Some("not started after a failure (--fail-fast)")
        } else {
            None
        }
    }

    fn skipped(&self, cell: &Cell, cluster: &Cluster, reason: &str) -> CellReport {
        let mut r = CellReport::new(cell, cluster);
        r.error = Some(reason.into());
        self.note(&mut r, &format!("skipped: {reason}"));
        r
    }
}

fn interrupted(phase: &str) -> Result<(), Failure> {
    if crate::signals::requested() {
        return Err(Failure { phase: phase.into(), message: "interrupted before it started".into(), output: None, interrupted: true });
    }
    Ok(())
}

/// Runs one step; its output on success, the failure with the output otherwise.
fn run_step(ctx: &Ctx, cluster: &Cluster, step: &Step, phase: &str) -> Result<String, Failure> {
    let node = step.node.clone().unwrap_or_else(|| cluster.plan.leader().name.clone());
    if let Some(cmd) = &step.run {
        let secs = step.timeout.to_string();
        let out = cluster.exec_on(ctx, &node, &["timeout", &secs, "bash", "-c", cmd]).map_err(|e| Failure::from_error(phase, &e))?;
        let text = step_output(&out);
        return match out.code {
            Some(0) => Ok(text),
            // timeout(1) exits 124 when it had to stop the command.
            Some(124) => Err(Failure::new(phase, format!("timed out after {} s on {node}", step.timeout), Some(text))),
            Some(c) => Err(Failure::new(phase, format!("exit {c} on {node}"), Some(text))),
            None => Err(Failure::new(phase, format!("killed by a signal on {node}"), Some(text))),
        };
    }
    let sql = step.sql.as_deref().unwrap_or_default();
    if !ctx.runner.is_real() {
        return Ok(String::new());
    }
    let n = cluster.plan.node(&node).expect("step nodes were checked at load");
    let password = cluster.workdir.lab_password().map_err(|e| Failure::from_error(phase, &e))?;
    let mut client = crate::verify::connect(n, &password, &cluster.plan, Duration::from_secs(10)).map_err(|e| Failure::from_error(phase, &e))?;
    let pg_error = |e: postgres::Error| {
        let why = e.as_db_error().map_or_else(|| e.to_string(), |d| d.to_string());
        Failure::new(phase, format!("SQL failed on {node}: {}", why.lines().next().unwrap_or_default()), Some(why))
    };
    client.batch_execute(&format!("SET statement_timeout = {}", step.timeout * 1000)).map_err(pg_error)?;
    let mut out = Vec::new();
    for m in client.simple_query(sql).map_err(pg_error)? {
        if let postgres::SimpleQueryMessage::Row(row) = m {
            out.push((0..row.len()).map(|i| row.get(i).unwrap_or("")).collect::<Vec<_>>().join("\t"));
        }
    }
    Ok(out.join("\n"))
}

/// Copies a cell's logs out of its working directory, which destroy removes.
/// Best effort: the logs help, but their loss must not fail the cell.
fn save_logs(from: &Path, to: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(from).ok()?;
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).ok()?;
    for e in entries.flatten() {
        let _ = std::fs::copy(e.path(), to.join(e.file_name()));
    }
    Some(to.to_path_buf())
}

/// MiB the kernel says can be used without swapping.
fn mem_available_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb = text.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?;
    Some(kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok()? / 1024)
}

/// As many cells as fit in available memory: the largest cell's nodes, plus
/// 256 MiB for its vagrant, at least 1 and no more than there are cells.
fn default_jobs(clusters: &[&Cluster]) -> usize {
    let cell_mib = clusters.iter().map(|c| c.plan.nodes.len() as u64 * u64::from(c.plan.memory) + 256);
    fit_jobs(mem_available_mib(), cell_mib.max().unwrap_or(1024), clusters.len())
}

fn fit_jobs(available_mib: Option<u64>, cell_mib: u64, cells: usize) -> usize {
    let fit = available_mib.map_or(1, |m| (m / cell_mib.max(1)) as usize);
    fit.clamp(1, cells.max(1))
}

pub fn run(ctx: &Ctx, args: &MatrixArgs) -> Result<i32> {
    let matrix = Matrix::load(&args.file)?;
    let clusters = matrix.validate()?;
    let all: Vec<(&Cell, &Cluster)> = matrix.cells.iter().zip(&clusters).collect();
    let selected = select(&matrix, &all, args)?;

    if args.list {
        print!("{}", list(&selected, args.format));
        return Ok(0);
    }

    let jobs = match args.jobs {
        Some(j) => (j as usize).min(selected.len()),
        None => default_jobs(&selected.iter().map(|(_, c)| *c).collect::<Vec<_>>()),
    };
    let session = Session {
        ctx: Ctx { runner: ctx.runner, quiet: true, templates: ctx.templates.clone() },
        args,
        start: Instant::now(),
        show_progress: !ctx.quiet,
        stop: AtomicBool::new(false),
    };
    if !ctx.quiet {
        eprintln!("matrix {}: {} of {} cells, {jobs} at a time", matrix.path.display(), selected.len(), matrix.cells.len());
    }
    let reports = session.run_all(&selected, jobs);
    let elapsed = session.start.elapsed();

    print!("{}", summary_table(&reports, elapsed));
    if let Some(p) = &args.junit {
        std::fs::write(p, junit(&matrix, &reports, elapsed)).map_err(|e| Error::io(p, e))?;
    }
    if let Some(p) = &args.json {
        std::fs::write(p, json_summary(&matrix, &reports, elapsed, jobs)).map_err(|e| Error::io(p, e))?;
    }
    Ok(if crate::signals::requested() {
        130
    } else if reports.iter().any(|r| r.result != Outcome::Passed) {
        1
    } else {
        0
    })
}

/// The cells named by --cell, or matching any --filter; all without either.
fn select<'a>(matrix: &Matrix, all: &[(&'a Cell, &'a Cluster)], args: &MatrixArgs) -> Result<Vec<(&'a Cell, &'a Cluster)>> {
    let names = || all.iter().map(|(c, _)| c.name.as_str()).collect::<Vec<_>>().join(", ");
    if let Some(name) = &args.cell {
        return match all.iter().find(|(c, _)| &c.name == name) {
            Some(pair) => Ok(vec![*pair]),
            None => Err(Error::usage(format!("{} has no cell `{name}`", matrix.path.display()), format!("cells: {}", names()))),
        };
    }
    if args.filter.is_empty() {
        return Ok(all.to_vec());
    }
    let picked: Vec<_> = all.iter().filter(|(c, _)| args.filter.iter().any(|p| name_matches(&c.name, p))).copied().collect();
    if picked.is_empty() {
        return Err(Error::usage(format!("no cell of {} matches {}", matrix.path.display(), args.filter.join(", ")), format!("cells: {}", names())));
    }
    Ok(picked)
}

fn list(cells: &[(&Cell, &Cluster)], format: ListFormat) -> String {
    match format {
        ListFormat::Text => cells.iter().map(|(c, _)| format!("{}\n", c.name)).collect(),
        ListFormat::Github => {
            let include: Vec<serde_json::Value> = cells.iter().map(|(c, cl)| values_json(c, cl)).collect();
            format!("{}\n", serde_json::json!({ "include": include }))
        }
        ListFormat::Gitlab => {
            let names: Vec<String> = cells.iter().map(|(c, _)| serde_json::Value::from(c.name.as_str()).to_string()).collect();
            format!("parallel:\n  matrix:\n    - CELL: [{}]\n", names.join(", "))
        }
    }
}

fn secs(s: Option<f64>) -> String {
    s.map_or_else(|| "-".into(), |s| format!("{s:.1}s"))
}

fn summary_table(reports: &[CellReport], elapsed: Duration) -> String {
    let mut rows = vec![["CELL", "RESULT", "UP", "VERIFY", "STEPS", "DESTROY", "TOTAL"].map(String::from).to_vec()];
    for r in reports {
        let word = match r.result {
            Outcome::Passed => "passed",
            Outcome::Failed => "FAILED",
            Outcome::Interrupted => "interrupted",
            Outcome::Skipped => "skipped",
        };
        rows.push(vec![
            r.name.clone(),
            word.into(),
            secs(r.phase_seconds(|p| p == "up")),
            secs(r.phase_seconds(|p| p == "verify")),
            secs(r.phase_seconds(|p| p.starts_with("step "))),
            secs(r.phase_seconds(|p| p == "destroy")),
            if r.result == Outcome::Skipped { "-".into() } else { secs(Some(r.seconds)) },
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap()).collect();
    let mut out = String::from("\n");
    for row in &rows {
        let cols: Vec<String> = row.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect();
        out += cols.join("  ").trim_end();
        out.push('\n');
    }
    let count = |o: Outcome| reports.iter().filter(|r| r.result == o).count();
    out += &format!(
        "{} passed, {} failed, {} interrupted, {} skipped in {:.1}s\n",
        count(Outcome::Passed),
        count(Outcome::Failed),
        count(Outcome::Interrupted),
        count(Outcome::Skipped),
        elapsed.as_secs_f64()
    );
    for r in reports.iter().filter(|r| matches!(r.result, Outcome::Failed | Outcome::Interrupted)) {
        out += &format!("\n{}: {}: {}\n", r.name, r.failed_phase.as_deref().unwrap_or("?"), r.error.as_deref().unwrap_or(""));
        if let Some(o) = r.output.as_deref().filter(|o| !o.trim().is_empty()) {
            out += &format!("  | {}\n", tail(o, SUMMARY_TAIL_LINES).replace('\n', "\n  | "));
        }
        if r.kept {
            out += &format!("  kept: `clusterlab status {}`\n", r.spec.display());
        }
    }
    out
}

fn junit(matrix: &Matrix, reports: &[CellReport], elapsed: Duration) -> String {
    use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
    let file_name = matrix.path.file_name().map_or_else(|| matrix.stem.clone(), |f| f.to_string_lossy().into_owned());
    let mut suite = TestSuite::new(file_name);
    suite.set_time(elapsed);
    for r in reports {
        let status = match r.result {
            Outcome::Passed => TestCaseStatus::success(),
            Outcome::Skipped => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(r.error.clone().unwrap_or_default());
                s
            }
            Outcome::Failed | Outcome::Interrupted => {
                let kind = if r.result == Outcome::Failed { NonSuccessKind::Failure } else { NonSuccessKind::Error };
                let mut s = TestCaseStatus::non_success(kind);
                let phase = r.failed_phase.clone().unwrap_or_default();
                s.set_message(format!("{phase}: {}", r.error.as_deref().unwrap_or_default()));
                s.set_type(phase);
                if let Some(o) = &r.output {
                    s.set_description(o.clone());
                }
                s
            }
        };
        let mut case = TestCase::new(r.name.clone(), status);
        case.set_classname(format!("clusterlab.matrix.{}", matrix.stem));
        case.set_time(Duration::from_secs_f64(r.seconds));
        if let Some(values) = r.values.as_object() {
            for (k, v) in values.iter().filter(|(k, _)| *k != "cell") {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                case.add_property(Property::new(k.as_str(), v));
            }
        }
        for p in &r.phases {
            case.add_property(Property::new(format!("phase {} seconds", p.name), format!("{:.1}", p.seconds)));
        }
        case.set_system_out(r.log.join("\n") + "\n");
        suite.add_test_case(case);
    }
    let mut report = Report::new("clusterlab matrix");
    report.set_time(elapsed);
    report.add_test_suite(suite);
    report.to_string().expect("a JUnit report serializes")
}

#[derive(Serialize)]
struct Summary<'a> {
    matrix: &'a Path,
    jobs: usize,
    seconds: f64,
    passed: usize,
    failed: usize,
    interrupted: usize,
    skipped: usize,
    cells: &'a [CellReport],
}

fn json_summary(matrix: &Matrix, reports: &[CellReport], elapsed: Duration, jobs: usize) -> String {
    let count = |o: Outcome| reports.iter().filter(|r| r.result == o).count();
    let summary = Summary {
        matrix: &matrix.path,
        jobs,
        seconds: millis(elapsed),
        passed: count(Outcome::Passed),
        failed: count(Outcome::Failed),
        interrupted: count(Outcome::Interrupted),
        skipped: count(Outcome::Skipped),
        cells: reports,
    };
    serde_json::to_string_pretty(&summary).expect("the summary serializes") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axes(yaml: &str) -> Axes {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn combos(yaml: &str) -> Vec<Combo> {
        serde_yaml::from_str(yaml).unwrap()
    }

    /// The combinations as `key=value` strings, for compact assertions.
    fn show(cs: &[Combo]) -> Vec<String> {
        cs.iter()
            .map(|c| Axis::ALL.iter().filter_map(|&a| c.get(a).map(|v| format!("{}={v}", a.key()))).collect::<Vec<_>>().join(" "))
            .collect()
    }

    #[test]
    fn product_size_and_order() {
        let a = axes("{version: [13, 15, 9.4], followers: [1, 2], slots: [true, false]}");
        let cs = expand(&a, &[], &[]);
        assert_eq!(cs.len(), 12);
        assert_eq!(show(&cs[..3]), ["version=13 followers=1 slots=true", "version=13 followers=1 slots=false", "version=13 followers=2 slots=true"]);
        assert_eq!(show(&cs[11..]), ["version=9.4 followers=2 slots=false"]);
    }

    #[test]
    fn exclude_removes_every_match() {
        let a = axes("{version: [13, 15], followers: [1, 2], mode: [async, sync]}");
        let cs = expand(&a, &combos("[{version: 13, mode: sync}, {followers: 1, mode: async, version: 15}]"), &[]);
        assert_eq!(
            show(&cs),
            ["version=13 followers=1 mode=async", "version=13 followers=2 mode=async", "version=15 followers=1 mode=sync", "version=15 followers=2 mode=async", "version=15 followers=2 mode=sync"]
        );
    }

    /// The example of GitHub's documentation, with our keys:
    /// fruit -> version, animal -> followers, color -> mode, shape -> box.
    #[test]
    fn include_extends_or_adds_like_github() {
        let a = axes("{version: [13, 15], followers: [1, 2]}");
        let inc = combos(
            "[{mode: async}, {mode: sync, followers: 1}, {version: 13, box: b/round}, {version: 17}, {version: 17, followers: 1}]",
        );
        let cs = expand(&a, &[], &inc);
        assert_eq!(
            show(&cs),
            [
                "version=13 followers=1 mode=sync box=b/round",
                "version=13 followers=2 mode=async box=b/round",
                "version=15 followers=1 mode=sync",
                "version=15 followers=2 mode=async",
                "version=17",
                "version=17 followers=1",
            ]
        );
    }

    #[test]
    fn include_steps_go_to_the_matching_cells() {
        let a = axes("{version: [13, 15]}");
        let inc = combos("[{version: 15, steps: [{name: drill, run: 'true'}]}]");
        let cs = expand(&a, &[], &inc);
        assert_eq!(cs.len(), 2);
        assert!(cs[0].steps.is_empty());
        assert_eq!(cs[1].steps[0].name, "drill");
        assert_eq!(cs[1].steps[0].timeout, 300);
    }

    #[test]
    fn no_axes_is_the_base_or_the_includes() {
        assert_eq!(expand(&Axes::default(), &[], &[]), vec![Combo::default()]);
        let cs = expand(&Axes::default(), &[], &combos("[{version: 13}, {version: 15}]"));
        assert_eq!(show(&cs), ["version=13", "version=15"]);
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
    fn filters_are_substrings_or_globs() {
        assert!(name_matches("pg15-f2-slots", "f2"));
        assert!(!name_matches("pg15-f2-slots", "f1"));
        assert!(name_matches("pg15-f2-slots", "pg1*-slots"));
        assert!(name_matches("pg15-f2-slots", "*slots"));
        assert!(!name_matches("pg15-f2-noslots-sync", "*slots"));
        assert!(name_matches("pg15-f2-noslots-sync", "pg*-*-*"));
        assert!(!name_matches("pg15-f2-slots", "pg13*"));
        assert!(name_matches("abab", "*ab"));
    }

    #[test]
    fn stems_and_slugs() {
        assert_eq!(matrix_stem(Path::new("clusters/ci.matrix.yaml")), "ci");
        assert_eq!(matrix_stem(Path::new("nightly.yml")), "nightly");
        assert_eq!(slug("9.4"), "94");
        assert_eq!(slug("Bookworm_PG15"), "bookworm-pg15");
    }

    #[test]
    fn default_jobs_fit_memory_and_cells() {
        // Three nodes of 768 MiB plus 256 for vagrant: 2560 MiB a cell.
        assert_eq!(fit_jobs(Some(8000), 2560, 5), 3);
        assert_eq!(fit_jobs(Some(8000), 2560, 2), 2);
        assert_eq!(fit_jobs(Some(1000), 2560, 5), 1);
        assert_eq!(fit_jobs(None, 2560, 5), 1);
        assert!(mem_available_mib().is_some_and(|m| m > 0));
    }
}
