//! A node's server log read from a mark, as PostgreSQL's TAP tests wait for
//! a message with `wait_for_log` and a log offset taken before the action:
//! `clusterlab-pg log-offset` gives the mark (`PATH=BYTES` per server log),
//! `clusterlab-pg log-since MARK...` what each log gained after it. A fault
//! that prints PostgreSQL's message and a matrix step that awaits one both
//! read the log this way; how a command reaches the node is theirs (`run`).

use crate::error::Result;
use crate::runner::Output;
use std::time::{Duration, Instant};

/// How often the log is read again while waiting (each read is a
/// `docker exec` or an ssh round trip; `wait_for_log` sleeps 0.1 s).
const POLL: Duration = Duration::from_millis(500);

/// Where the node's server logs end now; None if it could not be asked.
pub fn mark(run: impl Fn(&[&str]) -> Result<Output>) -> Option<Vec<String>> {
    let out = run(&["clusterlab-pg", "log-offset"]).ok().filter(Output::ok)?;
    Some(out.stdout.split_whitespace().filter(|w| w.contains('=')).map(String::from).collect())
}

/// What reading the log since a mark came to.
pub struct Read<T> {
    /// What `found` made of the text, once it found something.
    pub found: Option<T>,
    /// The text of the last read that worked (empty if none did).
    pub text: String,
    /// Why the last read failed, if it did.
    pub trouble: Option<String>,
}

/// Reads `node`'s log since `mark` (all of it for an empty mark) until `found`
/// finds what it looks for in the text, `within` passes, or the user
/// interrupts. A read that fails (the node restarting) keeps what the last
/// one got.
pub fn wait<T>(node: &str, run: impl Fn(&[&str]) -> Result<Output>, mark: &[String], within: Duration, found: impl Fn(&str) -> Option<T>) -> Read<T> {
    let mut args = vec!["clusterlab-pg", "log-since"];
    args.extend(mark.iter().map(String::as_str));
    let deadline = Instant::now() + within;
    let mut text = String::new();
    loop {
        let trouble = match run(&args) {
            Ok(out) if out.ok() => {
                text = out.stdout;
                None
            }
            Ok(out) => Some(format!("clusterlab-pg log-since failed on {node}: {}", out.tail(5))),
            Err(e) => Some(e.to_string()),
        };
        if let Some(f) = found(&text) {
            return Read { found: Some(f), text, trouble: None };
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || crate::signals::requested() {
            return Read { found: None, text, trouble };
        }
        std::thread::sleep(left.min(POLL));
    }
}
