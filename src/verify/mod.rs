//! Proves replication works, the way PostgreSQL's own TAP tests do: for every
//! edge of the topology the upstream sees the follower streaming (and its slot
//! active), every follower is in recovery, and a row written on the leader is
//! read back on every follower. All from the host, over the private network,
//! nodes in parallel, polled until a deadline. On the way it reads what a
//! DBA looks at next (lag, WAL held by slots, the archiver, timelines, disk
//! use of the WAL directory and the databases: `metrics`) and names what
//! needs care without failing (`report`).

pub mod metrics;
mod report;

pub use report::{NodeReport, Report};

use crate::error::{Error, Result};
use crate::plan::{Node, Plan, Role};
use crate::quote;
use crate::runner::parallel;
use metrics::NodeView;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub fn connect(node: &Node, password: &str, plan: &Plan, timeout: Duration) -> Result<postgres::Client> {
    connect_as(&node.address, plan.lab_user, password, plan.lab_database, "clusterlab", timeout)
        .map_err(|e| Error::Verify(format!("cannot connect to {} ({}): {e}", node.name, node.address)))
}

/// The lab's connection to a node's PostgreSQL (port 5432, no TLS), for
/// callers that have no plan at hand (the background writer). A statement
/// sent to a machine that froze or was cut off fails after 10 s instead of
/// waiting forever (TCP_USER_TIMEOUT): the writer then looks for the leader.
pub fn connect_as(host: &str, user: &str, password: &str, database: &str, app: &str, timeout: Duration) -> std::result::Result<postgres::Client, postgres::Error> {
    postgres::Config::new()
        .host(host)
        .port(5432)
        .user(user)
        .password(password)
        .dbname(database)
        .application_name(app)
        .connect_timeout(timeout)
        .tcp_user_timeout(Duration::from_secs(10))
        .connect(postgres::NoTls)
}

/// What a PostgreSQL error says: the server's message where there is one
/// (the client library's own text is only "db error").
pub fn pg_message(e: &postgres::Error) -> String {
    e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string())
}

/// Connects, retrying until the deadline: a node just restored may need a moment.
/// Early attempts are short: right after a snapshot revert the first SYN can be
/// lost, and a fresh attempt answers sooner than the kernel's SYN backoff.
fn connect_until(node: &Node, password: &str, plan: &Plan, deadline: Instant) -> Result<postgres::Client> {
    const ATTEMPTS_MS: [u64; 6] = [300, 300, 600, 1000, 2000, 3000];
    for attempt in 0.. {
        let left = deadline.saturating_duration_since(Instant::now());
        let wait = Duration::from_millis(ATTEMPTS_MS[attempt.min(ATTEMPTS_MS.len() - 1)]);
        match connect(node, password, plan, left.min(wait).max(Duration::from_millis(100))) {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    unreachable!("the loop returns")
}

/// Runs `sql` (one or more statements) in one round trip and returns each
/// statement's rows, as text. A prepared query costs two round trips, and a
/// guest under emulation takes tens of milliseconds for each: verify runs on
/// the hot path of `reset`.
fn simple(c: &mut postgres::Client, sql: &str) -> Result<Vec<metrics::Rows>> {
    let mut results = vec![Vec::new()];
    for message in c.simple_query(sql).map_err(pg)? {
        match message {
            postgres::SimpleQueryMessage::Row(row) => {
                let values = (0..row.len()).map(|i| row.get(i).map(str::to_string)).collect();
                results.last_mut().expect("never empty").push(values);
            }
            postgres::SimpleQueryMessage::CommandComplete(_) => results.push(Vec::new()),
            _ => {}
        }
    }
    results.pop();
    Ok(results)
}

/// The node's view with its disk use, in one round trip; where the disk
/// statement fails, the view again without it, and the reason as a warning
/// (`metrics::ViewSql`). A failure on a lost connection is not retried.
fn node_view(c: &mut postgres::Client, sql: &metrics::ViewSql) -> Result<NodeView> {
    match simple(c, &sql.with_disk) {
        Ok(results) => metrics::parse_view(results),
        Err(Error::Verify(why)) if !c.is_closed() => {
            let view = metrics::parse_view(simple(c, &sql.view)?)?;
            Ok(NodeView { disk_unread: Some(why), ..view })
        }
        Err(e) => Err(e),
    }
}

/// Runs `f` on its own thread and gives up on it at `deadline`: a frozen
/// node (`fault pause`) accepts TCP in its kernel but never answers, and no
/// client timeout covers a read that waits forever. The abandoned thread ends
/// with the process.
fn before<T: Send + 'static>(deadline: Instant, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok()
}

/// Held closed by whoever must act before verify writes its test row (a
/// snapshot reset setting the guest clocks); verify connects and reads the
/// topology meanwhile.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn open(&self) {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0 .1.notify_all();
    }

    fn wait(&self, deadline: Instant) {
        let mut open = self.0 .0.lock().unwrap_or_else(|e| e.into_inner());
        while !*open && Instant::now() < deadline {
            open = self.0 .1.wait_timeout(open, deadline.saturating_duration_since(Instant::now())).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

pub fn verify(plan: &Plan, password: &str, timeout: Duration) -> Report {
    verify_gated(plan, password, timeout, None)
}

/// `verify`, whose test row waits for `gate` to open.
pub fn verify_gated(plan: &Plan, password: &str, timeout: Duration, gate: Option<Gate>) -> Report {
    let start = Instant::now();
    let (p, pw) = (plan.clone(), password.to_string());
    if let Some(report) = before(start + timeout + Duration::from_secs(2), move || verify_within(&p, &pw, timeout, gate)) {
        return report;
    }
    // Something never answered: name the nodes that do not answer a query.
    let nodes = plan
        .nodes
        .iter()
        .map(|n| {
            let (node, p, pw) = (n.clone(), plan.clone(), password.to_string());
            let answered = before(Instant::now() + Duration::from_secs(2), move || {
                connect(&node, &pw, &p, Duration::from_secs(2)).and_then(|mut c| c.simple_query("SELECT 1").map_err(pg)).is_ok()
            });
            NodeReport {
                node: n.name.clone(),
                role: n.role,
                upstream: n.upstream.clone(),
                address: n.address.clone(),
                problems: if answered == Some(true) { Vec::new() } else { vec![does_not_answer(n)] },
                ..Default::default()
            }
        })
        .collect::<Vec<_>>();
    let mut nodes = nodes;
    if nodes.iter().all(|n| n.problems.is_empty()) {
        nodes[0].problems.push(format!("the check did not finish within {} s", timeout.as_secs()));
    }
    Report { cluster: plan.name.clone(), ok: false, elapsed_ms: start.elapsed().as_millis() as u64, nodes, row_written: true }
}

fn verify_within(plan: &Plan, password: &str, timeout: Duration, gate: Option<Gate>) -> Report {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut reports = blank_reports(plan);
    let per_node = settled_views(plan, password, start, deadline);
    tracing::debug!(elapsed_ms = start.elapsed().as_millis() as u64, "streaming and slots settled");
    if let Some(g) = gate {
        g.wait(deadline);
        tracing::debug!(elapsed_ms = start.elapsed().as_millis() as u64, "gate open");
    }
    let (clients, per_node): (Vec<_>, Vec<_>) = match per_node {
        Ok(v) => v.into_iter().unzip(),
        Err(e) => {
            unreachable_nodes(plan, password, &mut reports, &e);
            return finish(plan, reports, start);
        }
    };
    let per_node: Vec<Option<NodeView>> = per_node.into_iter().map(Some).collect();
    check_views(plan, &per_node, &mut reports);
    let timing = Timing { start, deadline, timeout };
    if let Err(e) = row_arrives(plan, &clients, &timing, &mut reports) {
        reports[0].problems.push(e.to_string());
    }
    finish(plan, reports, start)
}

/// When a verify started, when it gives up, and its timeout (for messages).
struct Timing {
    start: Instant,
    deadline: Instant,
    timeout: Duration,
}

/// A report per node, nothing checked yet.
fn blank_reports(plan: &Plan) -> Vec<NodeReport> {
    plan
        .nodes
        .iter()
        .map(|n| NodeReport {
            node: n.name.clone(),
            role: n.role,
            upstream: n.upstream.clone(),
            address: n.address.clone(),
            slot: n.slot.clone(),
            ..Default::default()
        })
        .collect()
}

/// Whether a node's data arrives late on purpose (a delayed standby, or below one).
fn is_delayed(plan: &Plan, n: &Node) -> bool {
    let mut cur = Some(n);
    while let Some(c) = cur {
        if c.apply_delay.is_some() {
            return true;
        }
        cur = c.upstream.as_deref().and_then(|u| plan.node(u));
    }
    false
}

/// Phase 1, all nodes at once: recovery state and the replication view of
/// each upstream, once every child streams (or the deadline passed). Each
/// node's connection is kept for phase 2.
fn settled_views(plan: &Plan, password: &str, start: Instant, deadline: Instant) -> Result<Vec<(Mutex<postgres::Client>, NodeView)>> {
    parallel(&plan.nodes, |n| -> Result<(Mutex<postgres::Client>, NodeView)> {
        let mut c = connect_until(n, password, plan, deadline)?;
        tracing::debug!(node = %n.name, elapsed_ms = start.elapsed().as_millis() as u64, "connected");
        let sql = metrics::ViewSql::new(&plan.facts);
        loop {
            let view = node_view(&mut c, &sql)?;
            let children: Vec<&Node> = plan.nodes.iter().filter(|m| m.upstream.as_deref() == Some(n.name.as_str())).collect();
            let settled = children.iter().all(|ch| {
                // A standby named synchronous a moment ago (a drill rewrote
                // synchronous_standby_names) shows as such once its walsender reloads.
                view.walsenders.iter().any(|w| w.application_name == ch.name && w.state == "streaming" && (!ch.sync || w.sync_state != "async"))
                    && ch.slot.as_ref().is_none_or(|s| view.slots.iter().any(|slot| &slot.name == s && slot.active))
            });
            if settled || Instant::now() >= deadline {
                return Ok((Mutex::new(c), view));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

/// After phase 1 failed: which nodes are unreachable, one line each; the
/// others still say what they see (a stopped follower's slot holding WAL on
/// its upstream is what `fault slot-hold` is there to show).
fn unreachable_nodes(plan: &Plan, password: &str, reports: &mut [NodeReport], e: &Error) {
    for ((r, n), view) in reports.iter_mut().zip(&plan.nodes).zip(views_now(plan, password, Duration::from_secs(2))) {
        match view {
            Ok(view) => own_view(plan, n, &view, r),
            Err(e) => r.problems.push(problem_of(&e)),
        }
    }
    if reports.iter().all(|r| r.problems.is_empty()) {
        reports[0].problems.push(e.to_string());
    }
}

/// Every node's view as it is now, all at once, each within `timeout`:
/// `before` gives up on a frozen node, which may take the connection and
/// never answer.
fn views_now(plan: &Plan, password: &str, timeout: Duration) -> Vec<Result<NodeView>> {
    let deadline = Instant::now() + timeout;
    let views = parallel(&plan.nodes, |n| {
        let (node, p, pw) = (n.clone(), plan.clone(), password.to_string());
        let view = before(deadline, move || {
            let mut c = connect(&node, &pw, &p, timeout)?;
            node_view(&mut c, &metrics::ViewSql::new(&p.facts))
        });
        Ok(view.unwrap_or_else(|| Err(Error::Verify(does_not_answer(n)))))
    });
    views.expect("each node's error is its own")
}

fn does_not_answer(n: &Node) -> String {
    format!("{} does not answer (frozen, or its network is cut)", n.name)
}

/// A node's error as a line of the table.
fn problem_of(e: &Error) -> String {
    e.to_string().trim_start_matches("verify failed: ").to_string()
}

/// What every node says now, all at once, without a test row and without
/// waiting for replication to settle: `status` shows it. A look, not a
/// check: a node that does not answer within a few seconds says so, and
/// a follower whose upstream does not answer is left unjudged.
pub fn observe(plan: &Plan, password: &str) -> Report {
    let start = Instant::now();
    let mut reports = blank_reports(plan);
    let mut per_node = Vec::new();
    for (r, view) in reports.iter_mut().zip(views_now(plan, password, OBSERVE_TIMEOUT)) {
        per_node.push(view.map_err(|e| r.problems.push(problem_of(&e))).ok());
    }
    check_views(plan, &per_node, &mut reports);
    let mut report = finish(plan, reports, start);
    report.row_written = false;
    report
}

/// How long `observe` gives each node.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Each node's role against its recovery state, each follower as its
/// upstream sees it, and what each node's own view deserves a word on.
/// A node without a view (it did not answer) already has its problem; its
/// upstream still says what it sees of it (its slot, the WAL it holds).
fn check_views(plan: &Plan, per_node: &[Option<NodeView>], reports: &mut [NodeReport]) {
    for (i, n) in plan.nodes.iter().enumerate() {
        let r = &mut reports[i];
        if let Some(view) = &per_node[i] {
            own_view(plan, n, view, r);
            match (n.role, view.in_recovery) {
                (Role::Leader, true) => r.problems.push("the leader is in recovery".into()),
                (Role::Follower, false) => r.problems.push("not in recovery: this follower was promoted or never became a standby".into()),
                _ => {}
            }
        }
        if let Some(up) = &n.upstream {
            let ui = plan.nodes.iter().position(|m| &m.name == up).unwrap();
            if let Some(upstream) = &per_node[ui] {
                check_edge(n, up, upstream, r);
            }
        }
    }
}

/// What a node's own view says of it: recovery, timeline, slots, archiver,
/// disk use, and the warnings they deserve (its followers' slots count as used).
fn own_view(plan: &Plan, n: &Node, view: &NodeView, r: &mut NodeReport) {
    let used: Vec<&str> = plan.nodes.iter().filter(|m| m.upstream.as_deref() == Some(n.name.as_str())).filter_map(|m| m.slot.as_deref()).collect();
    r.warnings = metrics::warnings(view, &used);
    r.in_recovery = Some(view.in_recovery);
    r.timeline = view.timeline;
    r.slots = view.slots.clone();
    r.archiver = view.archiver.clone();
    r.wal_dir_bytes = view.wal_dir_bytes;
    r.databases_bytes = view.databases_bytes;
}

/// A follower as its upstream's view shows it: streaming, in sync where
/// asked, its lag, its slot active.
fn check_edge(n: &Node, up: &str, upstream: &NodeView, r: &mut NodeReport) {
    match upstream.walsenders.iter().find(|w| w.application_name == n.name) {
        Some(w) => {
            r.streaming = Some(w.state.clone());
            r.sync_state = Some(w.sync_state.clone());
            r.lag_bytes = w.lag_bytes;
            r.lag_seconds = w.lag_seconds;
            if w.state != "streaming" {
                r.problems.push(format!("{up} reports it as `{}`, not streaming", w.state));
            }
            if n.sync && w.sync_state == "async" {
                r.problems.push(format!("expected a synchronous standby, {up} reports `async`"));
            }
        }
        None => r.problems.push(format!("{up}'s pg_stat_replication does not list it")),
    }
    if let Some(slot) = &n.slot {
        let found = upstream.slots.iter().find(|s| &s.name == slot);
        let active = found.map(|s| s.active);
        r.slot = Some(slot.clone());
        r.slot_active = active;
        match active {
            Some(true) => {}
            Some(false) => {
                let since = found.and_then(|s| s.inactive_since.as_deref()).map(|t| format!(" since {t}")).unwrap_or_default();
                r.problems.push(format!("slot {slot} on {up} is not active{since}"));
            }
            None => r.problems.push(format!("slot {slot} does not exist on {up}")),
        }
    }
}

/// Phase 2: a row written on the leader must arrive everywhere.
fn row_arrives(plan: &Plan, clients: &[Mutex<postgres::Client>], t: &Timing, reports: &mut [NodeReport]) -> Result<()> {
    let facts = &plan.facts;
    let token = format!("verify-{}", SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos());
    let client = |n: &Node| clients[plan.nodes.iter().position(|m| m.name == n.name).expect("a node of the plan")].lock().unwrap_or_else(|e| e.into_inner());
    let lsn = (|| -> Result<String> {
        // Committed before the LSN is read: a delayed standby is checked against it.
        let sql = format!(
            "BEGIN; DELETE FROM clusterlab_verify WHERE written_at < now() - interval '1 hour'; \
             INSERT INTO clusterlab_verify (token) VALUES ({}); COMMIT; SELECT {}()::text",
            quote::sql(&token),
            facts.current_lsn_fn
        );
        let results = simple(&mut client(plan.leader()), &sql)?;
        results.last().and_then(|rows| rows.first()).and_then(|row| row.first()).cloned().flatten().ok_or_else(|| Error::Verify("the leader returned no LSN".into()))
    })();
    let lsn = match lsn {
        Ok(l) => l,
        Err(e) => {
            reports[0].problems.push(format!("cannot write the test row: {e}"));
            return Ok(());
        }
    };
    let written = Instant::now();
    let followers: Vec<&Node> = plan.nodes.iter().filter(|n| n.role == Role::Follower).collect();
    let arrivals = parallel(&followers, |n| -> Result<(Option<u64>, Option<String>)> {
        let mut c = client(n);
        let delayed = is_delayed(plan, n);
        let probe = if delayed {
            // The row waits for the delay; the WAL that carries it must still arrive.
            format!("SELECT 1 WHERE {}({}(), {}::text::pg_lsn) >= 0", facts.lsn_diff_fn, facts.receive_lsn_fn, quote::sql(&lsn))
        } else {
            format!("SELECT 1 FROM clusterlab_verify WHERE token = {}", quote::sql(&token))
        };
        // The first poll comes right after the commit, on a connection already
        // open: short naps first (a poll is one round trip), then 20 ms ones.
        let mut nap = Duration::from_millis(1);
        loop {
            let arrived = simple(&mut c, &probe)?.first().is_some_and(|rows| !rows.is_empty());
            if arrived {
                tracing::debug!(node = %n.name, elapsed_ms = t.start.elapsed().as_millis() as u64, "test row arrived");
                return Ok((Some(written.elapsed().as_millis() as u64), None));
            }
            if Instant::now() >= t.deadline {
                let what = if delayed { "the WAL with the test row" } else { "the test row" };
                return Ok((None, Some(format!("{what} did not arrive within {} s", t.timeout.as_secs()))));
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(20));
        }
    });
    for (n, (ms, problem)) in followers.iter().zip(arrivals?) {
        let r = reports.iter_mut().find(|r| r.node == n.name).unwrap();
        r.row_ms = ms;
        r.problems.extend(problem);
    }
    Ok(())
}

fn pg(e: postgres::Error) -> Error {
    Error::Verify(pg_message(&e))
}

fn finish(plan: &Plan, nodes: Vec<NodeReport>, start: Instant) -> Report {
    Report {
        cluster: plan.name.clone(),
        ok: nodes.iter().all(|n| n.problems.is_empty()),
        elapsed_ms: start.elapsed().as_millis() as u64,
        nodes,
        row_written: true,
    }
}

#[cfg(test)]
mod tests {
    use super::metrics::{Slot, Walsender};
    use super::*;
    use crate::spec::{self, Source};

    fn plan(text: &str) -> Plan {
        let src = Source::new("c.yaml", text);
        crate::plan::build(&spec::parse(&src).unwrap(), &src).unwrap()
    }

    /// What `status` shows after `fault pg3 slot-hold`: pg3 does not answer,
    /// yet its leader's view says its slot is inactive, since when, and how
    /// much WAL it holds; pg2 streams.
    #[test]
    fn a_follower_that_does_not_answer_is_judged_by_its_upstream() {
        let p = plan("name: c\nversion: 17\nprovider: docker\nnetwork: 10.9.0.0/24\ntopology: {followers: 2}\n");
        let streaming = |name: &str| Walsender { application_name: name.into(), state: "streaming".into(), sync_state: "async".into(), lag_bytes: Some(0), lag_seconds: None };
        let slot = |name: &str, active: bool, held: u64, since: Option<&str>| Slot { name: name.into(), active, wal_held_bytes: Some(held), wal_status: Some("reserved".into()), inactive_since: since.map(String::from) };
        let leader = NodeView {
            walsenders: vec![streaming("pg2")],
            slots: vec![slot("pg2", true, 0, None), slot("pg3", false, 48 << 20, Some("2026-12-01 00:20:00+00"))],
            timeline: Some(1),
            ..Default::default()
        };
        let follower = NodeView { in_recovery: true, timeline: Some(1), ..Default::default() };
        let mut reports = blank_reports(&p);
        reports[2].problems.push("pg3 does not answer".into());
        check_views(&p, &[Some(leader), Some(follower), None], &mut reports);
        assert!(reports[0].problems.is_empty() && reports[1].problems.is_empty(), "{reports:?}");
        assert_eq!(reports[2].problems, ["pg3 does not answer", "pg1's pg_stat_replication does not list it", "slot pg3 on pg1 is not active since 2026-12-01 00:20:00+00"]);
        assert_eq!(reports[2].in_recovery, None, "pg3 said nothing of itself");
        let mut report = finish(&p, reports, Instant::now());
        report.row_written = false;
        let table = report.table();
        let pg3 = table.lines().find(|l| l.starts_with("pg3")).unwrap();
        assert!(pg3.contains("inactive  48 MB"), "{table}");
        let pg1 = table.lines().find(|l| l.starts_with("pg1")).unwrap();
        assert!(!pg1.contains("written"), "status writes no row: {table}");
    }
}
