//! The writer itself (`clusterlab writes-worker DIR`): one INSERT per
//! transaction on whatever leads now, each acknowledged id appended to
//! `writes.acked` with the time its COMMIT returned. On an error (the
//! connection lost, the node read-only because it is in recovery or was
//! demoted, fenced) it backs off, reads who leads from the cluster's
//! `state.json` and reconnects, logging the reconnect in `writes.log`.
//!
//! It has no spec (a matrix cell's lives in memory): `writes start` writes
//! what it needs into `writes.json`, and the live topology is in the same
//! working directory for a matrix cell as for the command line.

use super::downtime::{acked_line, RECONNECTED};
use crate::error::{exit, Error, Result};
use crate::writer::{files, Files};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub(super) const TABLE: &str = "clusterlab_writes";

/// What the worker needs to find the leader and write to it.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Target {
    /// Every node of the spec, detached or not: any of them may lead later.
    pub nodes: Vec<Member>,
    /// Who leads when state.json has no live topology.
    pub spec_leader: String,
    pub user: String,
    pub password: String,
    pub database: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Member {
    pub name: String,
    pub address: String,
}

/// Who leads now, from state.json's text: its `live.leader`, else the spec's leader.
pub(super) fn leader_of(state_json: Option<&str>, spec_leader: &str) -> String {
    let v: Option<serde_json::Value> = state_json.and_then(|t| serde_json::from_str(t).ok());
    let live = v.as_ref().and_then(|v| v.get("live")?.get("leader")?.as_str().map(str::to_string));
    live.unwrap_or_else(|| spec_leader.to_string())
}

/// What the loop does to the world; PostgreSQL in the worker, a fake in the tests.
pub(super) trait Session {
    type Conn;
    /// Finds who leads now and connects to it; a node in recovery is not the leader.
    /// Ok: the connection and the node's name.
    fn connect(&mut self) -> std::result::Result<(Self::Conn, String), String>;
    /// Row `id` in a transaction of its own; Ok once its COMMIT returned.
    fn insert(&mut self, conn: &mut Self::Conn, id: i64) -> std::result::Result<(), String>;
    fn sleep(&mut self, d: Duration);
    fn now_micros(&mut self) -> u64;
    fn keep_going(&mut self) -> bool;
}

/// 50 ms after an error, doubling to 500 ms; back to 50 once connected.
pub(super) struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_millis(500);

    pub fn new() -> Backoff {
        Backoff(Self::FIRST)
    }

    pub fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (d * 2).min(Self::MAX);
        d
    }
}

/// Writes until `keep_going` says no; returns the next id. Every id is tried
/// once: one whose COMMIT failed is not noted (it may have committed all the
/// same, so it is not used again either).
pub(super) fn write_loop<S: Session>(s: &mut S, mut conn: Option<S::Conn>, ack: &mut dyn FnMut(i64, u64) -> std::io::Result<()>, log: &mut dyn Write) -> std::io::Result<i64> {
    let mut id: i64 = 1;
    let mut backoff = Backoff::new();
    // Since when, how many attempts and the last error, while no leader answers.
    let mut down: Option<(u64, u32, String)> = None;
    while s.keep_going() {
        let Some(c) = conn.as_mut() else {
            match s.connect() {
                Ok((c, node)) => {
                    let (since, attempts, why) = down.take().unwrap_or_default();
                    let attempts = attempts + 1;
                    let secs = s.now_micros().saturating_sub(since) as f64 / 1e6;
                    writeln!(log, "{RECONNECTED}{node} after {attempts} attempts, {secs:.3} s (last error: {why})")?;
                    conn = Some(c);
                    backoff = Backoff::new();
                }
                Err(e) => {
                    let d = down.get_or_insert_with(Default::default);
                    d.1 += 1;
                    d.2 = e;
                    s.sleep(backoff.next());
                }
            }
            continue;
        };
        match s.insert(c, id) {
            Ok(()) => {
                let at = s.now_micros();
                ack(id, at)?;
            }
            Err(e) => {
                writeln!(log, "row {id} not acknowledged: {e}; looking for the leader")?;
                down = Some((s.now_micros(), 0, e));
                conn = None;
                s.sleep(backoff.next());
            }
        }
        id += 1;
    }
    Ok(id)
}

/// The worker on PostgreSQL.
struct Pg {
    files: Files,
    target: Target,
    deadline: Instant,
}

impl Pg {
    /// The leader of the moment, connected and out of recovery.
    fn open(&self) -> std::result::Result<(postgres::Client, String), String> {
        let state = std::fs::read_to_string(&self.files.state).ok();
        let node = leader_of(state.as_deref(), &self.target.spec_leader);
        let address = &self.target.nodes.iter().find(|m| m.name == node).ok_or_else(|| format!("the leader {node} is not a node of writes.json"))?.address;
        let t = &self.target;
        let failed = |e: postgres::Error| format!("{node}: {}", crate::verify::pg_message(&e));
        let mut client = crate::verify::connect_as(address, &t.user, &t.password, &t.database, "clusterlab-writer", Duration::from_secs(2)).map_err(failed)?;
        let in_recovery: bool = client.query_one("SELECT pg_is_in_recovery()", &[]).map_err(failed)?.get(0);
        if in_recovery {
            return Err(format!("{node} is in recovery, not the leader yet"));
        }
        Ok((client, node))
    }
}

impl Session for Pg {
    type Conn = (postgres::Client, postgres::Statement);

    fn connect(&mut self) -> std::result::Result<(Self::Conn, String), String> {
        let (mut client, node) = self.open()?;
        let insert = client.prepare(&format!("INSERT INTO {TABLE} (id) VALUES ($1)")).map_err(|e| format!("{node}: {}", crate::verify::pg_message(&e)))?;
        Ok(((client, insert), node))
    }

    fn insert(&mut self, (client, insert): &mut Self::Conn, id: i64) -> std::result::Result<(), String> {
        client.execute(insert, &[&id]).map(drop).map_err(|e| crate::verify::pg_message(&e))
    }

    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }

    fn now_micros(&mut self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
    }

    fn keep_going(&mut self) -> bool {
        Instant::now() < self.deadline
    }
}

/// The worker: the table created once, on the leader it finds first (an
/// error there stops it: `writes start` reports it), then the loop.
pub fn worker(dir: &Path) -> Result<i32> {
    let files = files(dir);
    let text = std::fs::read_to_string(&files.target).map_err(|e| Error::io(&files.target, e))?;
    let target: Target = serde_json::from_str(&text).map_err(|e| Error::usage(format!("{}: {e}", files.target.display()), "run `clusterlab writes SPEC start`"))?;
    // Ten minutes at most: a writer must not outlive a forgotten drill for long.
    let mut pg = Pg { files, target, deadline: Instant::now() + Duration::from_secs(600) };
    let (mut client, node) = pg.open().map_err(|e| Error::Verify(format!("writer: cannot connect: {e}")))?;
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {TABLE}; CREATE TABLE {TABLE} (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"))
        .map_err(|e| Error::Verify(format!("writer on {node}: {}", crate::verify::pg_message(&e))))?;
    let insert = client.prepare(&format!("INSERT INTO {TABLE} (id) VALUES ($1)")).map_err(|e| Error::Verify(format!("writer on {node}: {e}")))?;
    println!("writing to {node}");
    let acked = pg.files.acked.clone();
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(&acked).map_err(|e| Error::io(&acked, e))?;
    // One write a line: `check` kills the writer, and a torn line would be half an id.
    let mut ack = |id: i64, at: u64| out.write_all(format!("{}\n", acked_line(id, at)).as_bytes());
    let stdout = std::io::stdout();
    let id = write_loop(&mut pg, Some((client, insert)), &mut ack, &mut stdout.lock()).map_err(|e| Error::io(&acked, e))?;
    println!("stopped after 10 minutes at row {id}");
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_is_the_live_one_else_the_specs() {
        let live = r#"{"cluster":"c","phase":"ready","live":{"leader":"pg2","upstreams":{"pg3":"pg2"},"detached":["pg1"]},"updated_at":1}"#;
        assert_eq!(leader_of(Some(live), "pg1"), "pg2");
        assert_eq!(leader_of(Some(r#"{"cluster":"c","phase":"ready","updated_at":1}"#), "pg1"), "pg1");
        assert_eq!(leader_of(None, "pg1"), "pg1", "no state.json (yet)");
        assert_eq!(leader_of(Some("{\"live\": {"), "pg1"), "pg1", "a torn read falls back; the next attempt reads again");
    }

    #[test]
    fn the_backoff_doubles_to_half_a_second() {
        let mut b = Backoff::new();
        let ms: Vec<u128> = (0..6).map(|_| b.next().as_millis()).collect();
        assert_eq!(ms, [50, 100, 200, 400, 500, 500]);
    }

    /// Fails the connects it is told to, loses the connection at the given
    /// ids (the COMMIT may have gone through or not: the loop cannot know).
    #[derive(Default)]
    struct Fake {
        failing_connects: usize,
        lose_at: Vec<i64>,
        tried: Vec<i64>,
        slept: Vec<u128>,
        clock: u64,
        connects: usize,
        /// Stop after this many inserts tried, or this many polls.
        limit: usize,
        polls: usize,
    }

    impl Session for Fake {
        type Conn = ();
        fn connect(&mut self) -> std::result::Result<((), String), String> {
            self.connects += 1;
            if self.failing_connects > 0 {
                self.failing_connects -= 1;
                return Err("pg1: connection refused".into());
            }
            Ok(((), "pg2".into()))
        }
        fn insert(&mut self, _: &mut (), id: i64) -> std::result::Result<(), String> {
            self.tried.push(id);
            if self.lose_at.contains(&id) {
                return Err("connection closed".into());
            }
            Ok(())
        }
        fn sleep(&mut self, d: Duration) {
            self.slept.push(d.as_millis());
            self.clock += d.as_micros() as u64;
        }
        fn now_micros(&mut self) -> u64 {
            self.clock += 1000;
            self.clock
        }
        fn keep_going(&mut self) -> bool {
            self.polls = self.polls.saturating_sub(1);
            self.tried.len() < self.limit && self.polls > 0
        }
    }

    #[test]
    fn the_loop_reconnects_after_n_failures_and_notes_no_id_twice() {
        let mut fake = Fake { failing_connects: 4, lose_at: vec![5, 12], limit: 20, polls: usize::MAX, ..Fake::default() };
        let mut acked: Vec<(i64, u64)> = Vec::new();
        let mut log = Vec::new();
        let next = write_loop(&mut fake, Some(()), &mut |id, at| {
            acked.push((id, at));
            Ok(())
        }, &mut log).unwrap();
        let ids: Vec<i64> = acked.iter().map(|a| a.0).collect();
        assert_eq!(next, 21);
        assert_eq!(fake.tried, (1..=20).collect::<Vec<_>>(), "every id tried once, none again after a lost COMMIT");
        assert_eq!(ids, (1..=20).filter(|i| *i != 5 && *i != 12).collect::<Vec<_>>(), "an unknown outcome is not an acknowledgement");
        assert!(acked.windows(2).all(|w| w[0].1 < w[1].1), "commit times rise");
        // Row 5 lost: 50 ms, then four refused connects (100, 200, 400, 500), then pg2;
        // row 12 lost: back to 50 ms, and the first connect works.
        assert_eq!(fake.slept, [50, 100, 200, 400, 500, 50]);
        assert_eq!(fake.connects, 6);
        let log = String::from_utf8(log).unwrap();
        assert_eq!(super::super::downtime::reconnects(&log), 2, "{log}");
        assert!(log.contains("row 5 not acknowledged: connection closed"), "{log}");
        assert!(log.contains("reconnected to pg2 after 5 attempts"), "{log}");
        assert!(log.contains("(last error: pg1: connection refused)"), "{log}");
        assert!(log.contains("reconnected to pg2 after 1 attempts, 0.051 s (last error: connection closed)"), "{log}");
    }

    #[test]
    fn with_no_leader_the_loop_keeps_trying_until_it_is_told_to_stop() {
        let mut fake = Fake { failing_connects: usize::MAX, limit: 1, polls: 11, ..Fake::default() };
        let mut log = Vec::new();
        let next = write_loop(&mut fake, None, &mut |_, _| panic!("nothing to acknowledge"), &mut log).unwrap();
        assert_eq!(next, 1, "no id used without a leader");
        assert_eq!(fake.connects, 10);
        assert_eq!(*fake.slept.iter().max().unwrap(), 500);
        assert!(log.is_empty(), "no reconnect to log");
    }
}
