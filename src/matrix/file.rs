//! The matrix file: its format (`base`, `axes`, `include`, `exclude`,
//! `boxes`, `network`, `steps`), the checks serde cannot make, and errors
//! placed at their line and column.

use super::logwait::LogExpect;
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
    /// The live topology a drill should have left: `{leader: pg2, followers: [pg3]}`,
    /// checked against state.json and then on the running servers (verify);
    /// or a server log line: `{log: {node: pg1, matches: REGEX, within: 10s}}`.
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

/// An `expect` step as written: the topology form (`leader`, `followers`)
/// or the log form (`log`). `form` tells which, once the check has made sure
/// there is exactly one.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogExpect>,
}

/// What an `expect` step checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Expectation<'a> {
    /// Who leads and who streams (from anyone) after a drill.
    Topology { leader: &'a str, followers: &'a [String] },
    /// A line of a node's server log since the step before.
    Log(&'a LogExpect),
}

impl Expect {
    /// Its one form; Err: why it has none or two.
    pub(super) fn form(&self) -> Result<Expectation<'_>, String> {
        match (&self.leader, &self.followers, &self.log) {
            (None, None, Some(log)) => Ok(Expectation::Log(log)),
            (Some(leader), followers, None) => Ok(Expectation::Topology { leader, followers: followers.as_deref().unwrap_or_default() }),
            (_, _, Some(_)) => Err("`expect` holds either the topology (`leader`, `followers`) or `log`, not both".into()),
            (None, _, None) => Err("`expect` needs `leader` (and `followers`) or `log`".into()),
        }
    }
}

fn default_timeout() -> u64 {
    DEFAULT_STEP_TIMEOUT
}

impl Step {
    /// Its log expectation, if it is one.
    pub(super) fn log_expect(&self) -> Option<&LogExpect> {
        self.expect.as_ref()?.log.as_ref()
    }
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
fn check_steps(steps: &mut [Step], field: &str, src: &Source, dir: &Path) -> Result<(), Box<SpecError>> {
    for (i, s) in steps.iter_mut().enumerate() {
        let at = format!("{field}[{i}]");
        let actions = [s.run.is_some(), s.sql.is_some(), s.sql_file.is_some(), s.drill.is_some(), s.expect.is_some(), s.same_rows.is_some()].iter().filter(|b| **b).count();
        if actions != 1 {
            return Err(src.error(&at, format!("step `{}` needs exactly one of `run`, `sql`, `sql_file`, `drill`, `expect` and `same_rows`", s.name), "e.g. `run: \"pg_isready\"`, `sql: \"SELECT 1\"`, `drill: \"promote pg2\"`, `expect: {leader: pg2, followers: [pg3]}`, `expect: {log: {node: pg1, matches: REGEX}}` or `same_rows: [accounts]`"));
        }
        if let Some(d) = &s.drill {
            if let Err(why) = crate::drills::Drill::parse(d) {
                return Err(src.error(&format!("{at}.drill"), why, "e.g. `promote pg2`, `fault pg1 kill`, `backup --name b1`, `restore b1 --node pg1 --target-name before`, `writes check`"));
            }
        }
        if let Some(e) = &s.expect {
            check_expect(e, &s.name, &format!("{at}.expect"), src).map_err(|e| *e)?;
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

/// One form, and for a log expectation a regex that compiles and a time.
/// (Its node is checked per cell, against the cell's plan.)
fn check_expect(e: &Expect, step: &str, at: &str, src: &Source) -> Result<(), Box<SpecError>> {
    let form = e.form().map_err(|why| {
        let field = if e.log.is_some() { format!("{at}.log") } else { at.to_string() };
        src.error(&field, format!("step `{step}`: {why}"), "e.g. `expect: {leader: pg2, followers: [pg3]}`, or in a step of its own `expect: {log: {node: pg1, matches: 'database system is ready'}}`")
    })?;
    if let Expectation::Log(log) = form {
        log.regex().map_err(|why| src.error(&format!("{at}.log.matches"), why, "a regex of Rust's `regex` crate (no look-around or back-references); quote it in single quotes"))?;
        log.within().map_err(|why| src.error(&format!("{at}.log.within"), why, "e.g. `within: 10s`, `within: 1.5s`, `within: 500ms` (default 10 s)"))?;
    }
    Ok(())
}

/// A serde error in a YAML file, placed at its line and column.
pub(super) fn yaml_error(src: &Source, e: &serde_yaml::Error) -> Box<SpecError> {
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
        "check the spelling: a matrix has base, axes, include, exclude, boxes, network and steps; a step has name, node, run, sql, sql_file, drill, expect, same_rows and timeout; an expect has leader and followers, or log (node, matches, within)"
    } else {
        "fix the YAML at that line"
    };
    Box::new(SpecError { location, field: String::new(), message, hint: Some(hint.into()), src: NamedSource::new(file, src.text.clone()), span })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn form_of(yaml: &str) -> Result<String, String> {
        let e: Expect = serde_yaml::from_str(yaml).unwrap();
        e.form().map(|f| match f {
            Expectation::Topology { leader, followers } => format!("{leader} leads {followers:?}"),
            Expectation::Log(l) => format!("log of {} /{}/", l.node, l.matches),
        })
    }

    #[test]
    fn expect_has_one_form() {
        assert_eq!(form_of("{leader: pg2, followers: [pg3]}").unwrap(), "pg2 leads [\"pg3\"]");
        assert_eq!(form_of("{leader: pg2}").unwrap(), "pg2 leads []");
        assert_eq!(form_of("{log: {node: pg1, matches: 'ready'}}").unwrap(), "log of pg1 /ready/");
        for both in ["{leader: pg2, log: {node: pg1, matches: x}}", "{followers: [], log: {node: pg1, matches: x}}"] {
            assert!(form_of(both).unwrap_err().contains("not both"), "{both}");
        }
        for neither in ["{}", "{followers: [pg3]}"] {
            assert!(form_of(neither).unwrap_err().contains("needs `leader`"), "{neither}");
        }
        assert!(serde_yaml::from_str::<Expect>("{log: {node: pg1}}").is_err(), "a log expectation needs `matches`");
    }

    fn checked(steps: &str) -> Result<Vec<Step>, String> {
        let text = format!("base: b.yaml\nsteps:\n{steps}");
        let src = Source::new("/m/m.matrix.yaml", text);
        let mut file: MatrixFile = serde_yaml::from_str(&src.text).unwrap();
        file.check(&src, Path::new("/m")).map_err(|e| e.to_string())?;
        Ok(file.steps)
    }

    #[test]
    fn log_expectations_are_checked_at_load() {
        let steps = checked("  - name: clog-gone\n    expect:\n      log: {node: pg1, matches: 'could not access status of transaction', within: 10s}\n").unwrap();
        let log = steps[0].log_expect().unwrap();
        assert_eq!((log.node.as_str(), log.within()), ("pg1", Ok(std::time::Duration::from_secs(10))));
        assert_eq!(checked("  - {name: t, expect: {leader: pg1}}\n").unwrap()[0].log_expect(), None);

        let err = checked("  - name: re\n    expect:\n      log: {node: pg1, matches: 'a[b'}\n").unwrap_err();
        assert!(err.starts_with("/m/m.matrix.yaml:5:24: steps[0].expect.log.matches: `a[b` is not a regex: unclosed character class"), "{err}");
        let err = checked("  - name: w\n    expect:\n      log: {node: pg1, matches: x, within: 0}\n").unwrap_err();
        assert!(err.contains("steps[0].expect.log.within: a `within` of `0`"), "{err}");
        let err = checked("  - {name: a, run: 'true'}\n  - name: both\n    expect:\n      leader: pg1\n      log: {node: pg1, matches: x}\n").unwrap_err();
        assert!(err.starts_with("/m/m.matrix.yaml:7:7: steps[1].expect.log: step `both`: `expect` holds either"), "{err}");
    }
}
