//! The matrix file: its format (`base`, `axes`, `include`, `exclude`,
//! `boxes`, `network`, `steps`), the checks serde cannot make, and errors
//! placed at their line and column.

use crate::error::{Error, Result, SpecError};
use crate::spec::{Mode, Provider, Scalar, Source};
use ipnet::Ipv4Net;
use miette::NamedSource;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Network the cells' /24s are carved from when the matrix names none.
const DEFAULT_NETWORK: &str = "10.50.0.0/16";
/// Seconds a step may run when it gives no `timeout`.
const DEFAULT_STEP_TIMEOUT: u64 = 300;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MatrixFile {
    /// The spec every cell starts from, relative to the matrix file.
    pub(super) base: PathBuf,
    #[serde(default)]
    pub(super) axes: Axes,
    #[serde(default)]
    pub(super) include: Vec<Combo>,
    #[serde(default)]
    pub(super) exclude: Vec<Combo>,
    /// Version -> box, for cells whose version comes from the matrix.
    #[serde(default)]
    pub(super) boxes: BTreeMap<String, String>,
    /// Each cell gets the next /24 of this network.
    #[serde(default)]
    network: Option<String>,
    /// Steps every cell runs after verify.
    #[serde(default)]
    pub(super) steps: Vec<Step>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Axes {
    #[serde(default)]
    pub(super) version: Vec<Scalar>,
    #[serde(default)]
    pub(super) followers: Vec<u32>,
    #[serde(default)]
    pub(super) slots: Vec<bool>,
    #[serde(default)]
    pub(super) mode: Vec<Mode>,
    #[serde(default, rename = "box")]
    pub(super) box_name: Vec<String>,
    #[serde(default)]
    pub(super) provider: Vec<Provider>,
}

/// One combination of axis values (unset: the base spec's value); also the
/// shape of an `include` or `exclude` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Combo {
    pub(super) version: Option<Scalar>,
    pub(super) followers: Option<u32>,
    pub(super) slots: Option<bool>,
    pub(super) mode: Option<Mode>,
    #[serde(rename = "box")]
    pub(super) box_name: Option<String>,
    pub(super) provider: Option<Provider>,
    /// Steps an include entry adds to the cells it matches or creates.
    #[serde(default)]
    pub(super) steps: Vec<Step>,
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
    /// A drill, as on the command line without the spec: `promote pg2`,
    /// `switchover pg1`, `rejoin pg1`, `fault pg1 kill|stop|pause|partition|heal`.
    #[serde(default)]
    pub drill: Option<String>,
    /// The live topology a drill should have left: `{leader: pg2, followers: [pg3]}`;
    /// checked against state.json and then on the running servers (verify).
    #[serde(default)]
    pub expect: Option<Expect>,
    /// Tables whose rows must be the same on every node of the live topology,
    /// and the same as at the cell's previous `same_rows` step (an upgrade, a
    /// failover must not change them): an md5 of each table's rows in order.
    #[serde(default)]
    pub same_rows: Option<Vec<String>>,
    /// SQL file relative to the matrix file; read at load time into `sql`.
    #[serde(default, skip_serializing)]
    pub sql_file: Option<PathBuf>,
    /// Seconds (default 300).
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

/// Who leads and who streams (from anyone) after a drill.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub leader: String,
    #[serde(default)]
    pub followers: Vec<String>,
}

fn default_timeout() -> u64 {
    DEFAULT_STEP_TIMEOUT
}

impl MatrixFile {
    /// Reads and parses a matrix file; its `Source` places later errors.
    pub(super) fn read(path: &Path) -> Result<(MatrixFile, Source)> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let src = Source::new(path, text);
        let file: MatrixFile = serde_yaml::from_str(&src.text).map_err(|e| yaml_error(&src, &e))?;
        Ok((file, src))
    }

    /// The network the cells' /24s are carved from.
    pub(super) fn net(&self, src: &Source) -> Result<Ipv4Net> {
        let net_text = self.network.as_deref().unwrap_or(DEFAULT_NETWORK);
        let net: Ipv4Net = net_text
            .parse()
            .ok()
            .filter(|n: &Ipv4Net| n.prefix_len() <= 24 && n.network() == n.addr())
            .ok_or_else(|| src.error("network", format!("`{net_text}` is not an IPv4 network of /24 or larger"), "write it like 10.50.0.0/16; each cell gets one /24 of it"))?;
        Ok(net)
    }

    /// What serde cannot check: exclude entries name only axes and have no
    /// steps; every step is well-formed (and its `sql_file` read).
    pub(super) fn check(&mut self, src: &Source, dir: &Path) -> Result<()> {
        for (i, e) in self.exclude.iter().enumerate() {
            if !e.steps.is_empty() {
                return Err(src.error(&format!("exclude[{i}].steps"), "an exclude entry has no steps", "move the steps to an include entry").into());
            }
            if let Some(a) = Axis::ALL.into_iter().find(|&a| e.get(a).is_some() && !self.axes.has(a)) {
                return Err(src
                    .error(&format!("exclude[{i}].{}", a.key()), format!("`{}` is not an axis of this matrix", a.key()), "exclude only by keys listed under `axes`")
                    .into());
            }
        }
        check_steps(&mut self.steps, "steps", src, dir)?;
        for (i, inc) in self.include.iter_mut().enumerate() {
            check_steps(&mut inc.steps, &format!("include[{i}].steps"), src, dir)?;
        }
        Ok(())
    }
}

/// Each step runs exactly one of `run`, `sql`, `sql_file`, `drill` or `expect` (a file is read here, so a
/// missing file is an error before anything starts).
fn check_steps(steps: &mut [Step], field: &str, src: &Source, dir: &Path) -> Result<(), SpecError> {
    for (i, s) in steps.iter_mut().enumerate() {
        let at = format!("{field}[{i}]");
        let actions = [s.run.is_some(), s.sql.is_some(), s.sql_file.is_some(), s.drill.is_some(), s.expect.is_some(), s.same_rows.is_some()].iter().filter(|b| **b).count();
        if actions != 1 {
            return Err(src.error(&at, format!("step `{}` needs exactly one of `run`, `sql`, `sql_file`, `drill`, `expect` and `same_rows`", s.name), "e.g. `run: \"pg_isready\"`, `sql: \"SELECT 1\"`, `drill: \"promote pg2\"`, `expect: {leader: pg2, followers: [pg3]}` or `same_rows: [accounts]`"));
        }
        if let Some(d) = &s.drill {
            if let Err(why) = crate::drills::Drill::parse(d) {
                return Err(src.error(&format!("{at}.drill"), why, "e.g. `promote pg2`, `fault pg1 kill`, `backup --name b1`, `restore b1 --node pg1 --target-name before`, `writes check`"));
            }
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

/// A serde error in a YAML file, placed at its line and column.
pub(super) fn yaml_error(src: &Source, e: &serde_yaml::Error) -> SpecError {
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
        "check the spelling: a matrix has base, axes, include, exclude, boxes, network and steps; a step has name, node, run, sql, sql_file, drill, expect, same_rows and timeout"
    } else {
        "fix the YAML at that line"
    };
    SpecError { location, field: String::new(), message, hint: Some(hint.into()), src: NamedSource::new(file, src.text.clone()), span }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Axis {
    Version,
    Followers,
    Slots,
    Mode,
    Box,
    Provider,
}

impl Axis {
    /// In product order: the first axis varies slowest, as in GitHub Actions.
    pub(super) const ALL: [Axis; 6] = [Axis::Version, Axis::Followers, Axis::Slots, Axis::Mode, Axis::Box, Axis::Provider];

    pub(super) fn key(self) -> &'static str {
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

pub(super) fn mode_str(m: Mode) -> &'static str {
    match m {
        Mode::Async => "async",
        Mode::Sync => "sync",
    }
}
