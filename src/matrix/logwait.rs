//! A log expectation, `expect: {log: {node, matches, within}}`: a line of a
//! node's server log, written since the step before it began, must match a
//! regex within some time. PostgreSQL's TAP tests do the same with
//! `wait_for_log` and a log offset taken before the action whose message
//! they await: a line from an earlier step, or from the server's start,
//! must not pass for the one the action should have caused.
//!
//! The offsets and the reading are `crate::server_log`'s.

use crate::cluster::{Cluster, Ctx};
use crate::spec::Scalar;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How long a log expectation waits when it gives no `within`.
const DEFAULT_WITHIN: Duration = Duration::from_secs(10);
/// Lines of what was read kept as a failure's output.
const FAILURE_LINES: usize = 20;

/// `log: {node: pg1, matches: 'could not access status', within: 10s}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogExpect {
    /// Whose server log is read.
    pub node: String,
    /// A regex (Rust's `regex` syntax) one line must match.
    pub matches: String,
    /// `10s`, `1.5s`, `500ms` or bare seconds (default 10 s).
    #[serde(default)]
    pub within: Option<Scalar>,
}

impl LogExpect {
    pub(super) fn regex(&self) -> Result<Regex, String> {
        Regex::new(&self.matches).map_err(|e| format!("`{}` is not a regex: {}", self.matches, regex_why(&e)))
    }

    pub(super) fn within(&self) -> Result<Duration, String> {
        self.within.as_ref().map_or(Ok(DEFAULT_WITHIN), |w| parse_within(&w.0))
    }
}

/// The regex crate's error draws a caret under the pattern over several
/// lines, then says `error: WHY`: a load error wants the why alone.
fn regex_why(e: &regex::Error) -> String {
    let text = e.to_string();
    let why = text.lines().rev().find_map(|l| l.trim().strip_prefix("error: "));
    why.map_or_else(|| text.lines().next().unwrap_or_default().to_string(), String::from)
}

/// `10s`, `10`, `1.5s`, `500ms`: more than zero.
pub(super) fn parse_within(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = match t.strip_suffix("ms") {
        Some(n) => (n, 0.001),
        None => (t.strip_suffix('s').unwrap_or(t), 1.0),
    };
    let bad = || format!("`{text}` is not a time: give seconds (`10`, `1.5s`) or milliseconds (`500ms`)");
    // f64 parses `inf`, `NaN` and `1e3`: only digits and one point are a time here.
    if number.trim().is_empty() || !number.trim().chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let secs = number.trim().parse::<f64>().map_err(|_| bad())? * scale;
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(format!("a `within` of `{text}` gives the line no time to appear")),
        Err(_) => Err(bad()),
    }
}

/// The first line of `text` that `re` matches, trimmed.
pub(super) fn first_match<'t>(text: &'t str, re: &Regex) -> Option<&'t str> {
    text.lines().find(|l| re.is_match(l)).map(str::trim)
}

/// Where the server logs ended when the step before a log expectation began.
#[derive(Debug, Default)]
pub(super) struct Marks {
    /// That step; None before any step was marked.
    step: Option<String>,
    /// Node -> its `PATH=BYTES` words. A node missing here could not be
    /// marked (paused, stopped, gone): log-since then prints its whole logs.
    offsets: BTreeMap<String, Vec<String>>,
}

impl Marks {
    /// The offsets of `nodes`' logs (named once or more), read on all of them at once, before `step` runs.
    pub(super) fn take(ctx: &Ctx, cluster: &Cluster, step: &str, nodes: &[&str]) -> Marks {
        // A machine `fault pause` froze would hold the ssh call until it
        // thaws: it gets no mark instead.
        let frozen = crate::state::State::load(&cluster.workdir).map(|s| s.frozen).unwrap_or_default();
        let nodes: Vec<&str> = nodes.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
        let marked = crate::runner::parallel(&nodes, |node| {
            if frozen.iter().any(|f| f == node) {
                return Ok(None);
            }
            let words = crate::server_log::mark(|args| cluster.exec_on(ctx, node, args));
            Ok(words.map(|w: Vec<String>| (node.to_string(), w)))
        })
        .unwrap_or_default();
        Marks { step: Some(step.to_string()), offsets: marked.into_iter().flatten().collect() }
    }

    /// "since step `X`", as the failure says where it read from.
    fn since(&self, node: &str) -> String {
        match (&self.step, self.offsets.contains_key(node)) {
            (Some(s), true) => format!(" since step `{s}`"),
            (Some(s), false) => format!(" (all of it: {node} could not be marked before step `{s}`)"),
            (None, _) => " (all of it: no step before this one)".into(),
        }
    }
}

/// Why a log expectation failed, and the end of what it read.
#[derive(Debug)]
pub(super) struct Missed {
    pub(super) message: String,
    pub(super) output: Option<String>,
}

/// Polls `want.node`'s log since its mark until a line matches or `within`
/// passes; the line on success.
pub(super) fn await_log(ctx: &Ctx, cluster: &Cluster, want: &LogExpect, marks: &Marks) -> Result<String, Missed> {
    if !ctx.runner.is_real() {
        return Ok(String::new());
    }
    let re = want.regex().expect("log expectations were checked at load");
    let within = want.within().expect("log expectations were checked at load");
    let node = want.node.as_str();
    let frozen = crate::state::State::load(&cluster.workdir).is_some_and(|s| s.frozen.iter().any(|f| f == node));
    if frozen {
        return Err(Missed { message: format!("{node} is paused (`fault {node} pause`): its server log cannot be read"), output: None });
    }
    let mark = marks.offsets.get(node).map(Vec::as_slice).unwrap_or_default();
    let run = |args: &[&str]| cluster.exec_on(ctx, node, args);
    let read = crate::server_log::wait(node, run, mark, within, |text| first_match(text, &re).map(str::to_string));
    if let Some(line) = read.found {
        return Ok(line);
    }
    let (text, trouble) = (read.text, read.trouble);
    let message = format!("no line of {node}'s server log{} matches /{}/ within {} s", marks.since(node), want.matches, within.as_secs_f64());
    let lines: Vec<&str> = text.lines().collect();
    let mut output = match lines.len() {
        0 => format!("({node}'s server log gained nothing)"),
        n => lines[n.saturating_sub(FAILURE_LINES)..].join("\n"),
    };
    if let Some(t) = trouble {
        output += &format!("\n(the last read failed: {t})");
    }
    Err(Missed { message, output: Some(output) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(yaml: &str) -> LogExpect {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn within_takes_seconds_and_milliseconds() {
        assert_eq!(parse_within("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_within("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_within("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_within("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_within("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "s", "ten", "10 min", "10m", "-1", "1e3", "inf", "NaN", "1.2.3s", "99999999999999999999999"] {
            assert!(parse_within(bad).is_err(), "{bad:?} passed");
        }
        assert!(parse_within("0").unwrap_err().contains("no time"));
        assert!(parse_within("0ms").is_err());
    }

    #[test]
    fn within_as_yaml_writes_it() {
        assert_eq!(log("{node: pg1, matches: x}").within(), Ok(DEFAULT_WITHIN));
        assert_eq!(log("{node: pg1, matches: x, within: 3}").within(), Ok(Duration::from_secs(3)));
        assert_eq!(log("{node: pg1, matches: x, within: 2.5}").within(), Ok(Duration::from_millis(2500)));
        assert_eq!(log("{node: pg1, matches: x, within: 250ms}").within(), Ok(Duration::from_millis(250)));
        assert!(log("{node: pg1, matches: x, within: soon}").within().unwrap_err().contains("`soon` is not a time"));
    }

    #[test]
    fn a_bad_regex_says_why_on_one_line() {
        let why = log("{node: pg1, matches: 'status of (transaction'}").regex().unwrap_err();
        assert!(why.starts_with("`status of (transaction` is not a regex: "), "{why}");
        assert!(!why.contains('\n') && why.contains("unclosed group"), "{why}");
        assert!(log("{node: pg1, matches: 'could not access status of transaction \\d+'}").regex().is_ok());
    }

    #[test]
    fn first_match_is_the_first_matching_line_trimmed() {
        let text = "2026-01-01 LOG:  checkpoint starting\n\
                    2026-01-01 ERROR:  could not access status of transaction 1234  \n\
                    2026-01-01 DETAIL:  Could not open file \"pg_xact/0000\"\n\
                    2026-01-01 ERROR:  could not access status of transaction 99\n";
        let re = Regex::new(r"could not access status of transaction \d+").unwrap();
        assert_eq!(first_match(text, &re), Some("2026-01-01 ERROR:  could not access status of transaction 1234"));
        // A line, not the text: a pattern across two lines matches nothing.
        assert_eq!(first_match(text, &Regex::new("starting.ERROR").unwrap()), None);
        assert_eq!(first_match(text, &Regex::new("(?s)starting.*ERROR").unwrap()), None);
        assert_eq!(first_match("", &re), None);
        // Anchors hold per line.
        assert_eq!(first_match(text, &Regex::new("^2026-01-01 DETAIL").unwrap()).map(|l| &l[..17]), Some("2026-01-01 DETAIL"));
    }

    #[test]
    fn the_failure_says_where_it_read_from() {
        let mut marks = Marks { step: Some("kill-it".into()), offsets: BTreeMap::new() };
        marks.offsets.insert("pg1".into(), vec!["/var/lib/postgresql/log=123".into()]);
        assert_eq!(marks.since("pg1"), " since step `kill-it`");
        assert_eq!(marks.since("pg2"), " (all of it: pg2 could not be marked before step `kill-it`)");
        assert_eq!(Marks::default().since("pg1"), " (all of it: no step before this one)");
    }
}
