//! One step on one node: a shell command under timeout(1), or SQL sent as
//! the lab user under a statement_timeout; a drill, an expectation (the
//! live topology, or a server log line: `logwait`) or `same_rows`.

use super::file::{Expectation, Step};
use super::logwait::{await_log, Marks};
use super::report::Failure;
use crate::cluster::{Cluster, Ctx};
use crate::error::Result;
use std::time::Duration;

/// stdout and stderr of a step, labelled when both have something.
fn step_output(out: &crate::runner::Output) -> String {
    match (out.stdout.trim_end(), out.stderr.trim_end()) {
        ("", e) => e.to_string(),
        (o, "") => o.to_string(),
        (o, e) => format!("stdout:\n{o}\nstderr:\n{e}"),
    }
}

/// Runs one step; its output on success, the failure with the output otherwise.
/// `marks`: where the server logs ended before the last step that was not a
/// log expectation, for a log expectation to read from.
pub(super) fn run_step(ctx: &Ctx, cluster: &Cluster, step: &Step, phase: &str, marks: &Marks) -> Result<String, Failure> {
    if let Some(d) = &step.drill {
        let drill = crate::drills::Drill::parse(d).expect("drill steps were checked at load");
        return drill.run(ctx, cluster).map_err(|e| Failure::from_error(phase, &e));
    }
    if let Some(want) = &step.expect {
        return match want.form().expect("expect steps were checked at load") {
            Expectation::Topology { leader, followers } => expect(cluster, leader, followers).map_err(|why| Failure::new(phase, why, None)),
            Expectation::Log(log) => await_log(ctx, cluster, log, marks).map_err(|m| Failure::new(phase, m.message, m.output)),
        };
    }
    if let Some(tables) = &step.same_rows {
        if !ctx.runner.is_real() {
            return Ok(String::new());
        }
        return super::rows::same_rows(cluster, tables).map_err(|why| Failure::new(phase, why, None));
    }
    // After a drill step the leader is the live one.
    let leader = cluster.current_plan().map(|p| p.leader().name.clone()).unwrap_or_else(|_| cluster.plan.leader().name.clone());
    let node = step.node.clone().unwrap_or(leader);
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
        let why = crate::verify::pg_message(&e);
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

/// The live topology against an `expect` step: first what clusterlab
/// recorded, then what the servers say (verify of the live plan).
fn expect(cluster: &Cluster, want_leader: &str, want_followers: &[String]) -> std::result::Result<String, String> {
    let plan = cluster.current_plan().map_err(|e| e.to_string())?;
    let mut followers: Vec<&str> = plan.nodes.iter().filter(|n| n.upstream.is_some()).map(|n| n.name.as_str()).collect();
    followers.sort_unstable();
    let mut wanted: Vec<&str> = want_followers.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    let leader = &plan.leader().name;
    if leader != want_leader || followers != wanted {
        return Err(format!("expected {want_leader} leading {wanted:?}, the live topology is {leader} leading {followers:?}"));
    }
    let password = cluster.workdir.lab_password().map_err(|e| e.to_string())?;
    let report = crate::verify::verify(&plan, &password, Duration::from_secs(30));
    if !report.ok {
        return Err(format!("{leader} leads {followers:?} on paper, but verify failed:\n{}", report.table()));
    }
    Ok(format!("{leader} leads {followers:?}, verified"))
}
