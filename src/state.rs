//! What exists for a cluster and what happened last (`state.json`, written
//! atomically), and the lock that keeps two clusterlab commands off one cluster.

use crate::error::{Error, Result};
use crate::providers::kind::Provider;
use crate::workdir::{write_atomic, Workdir};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    pub cluster: String,
    pub provider: Provider,
    pub phase: Phase,
    /// The node or step the phase was at.
    #[serde(default)]
    pub detail: Option<String>,
    /// The operation that set the phase.
    #[serde(default)]
    pub operation: Option<Operation>,
    #[serde(default)]
    pub error: Option<String>,
    /// How the known state was saved (snapshot, data or both); None before the first successful up.
    #[serde(default)]
    pub baseline: Option<Method>,
    /// The topology a drill left (promote, rejoin); None: the spec's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<crate::topology::Topology>,
    /// Nodes that `fault partition` cut off from the others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitioned: Vec<String>,
    /// Nodes that `fault pause` froze.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frozen: Vec<String>,
    /// The PostgreSQL majors the box carries, as `up` found them on the leader's machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub box_majors: Vec<String>,
    /// Nodes whose archive_command `fault archive-fail` made fail.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub archive_failing: Vec<String>,
    /// An upgrade to this major began and has not finished: some nodes may
    /// run it already (reset brings back the spec's major on every node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrading_to: Option<String>,
    /// Nodes whose link `fault lag` or `fault loss` slowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slowed: Vec<String>,
    /// Files `fault clog-loss` and `fault wal-loss` set aside, for `heal` to put back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aside: Vec<Aside>,
    /// Nodes whose own filesystem `fault disk-full` filled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filled: Vec<String>,
    pub updated_at: u64,
    /// Set for --dry-run: nothing really happened, so nothing is recorded.
    #[serde(skip)]
    pub dry_run: bool,
}

/// Files a fault took from a machine: the node the fault named, and the
/// node whose machine keeps them (a follower's lost WAL is its upstream's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aside {
    pub node: String,
    pub on: String,
    /// What went, as the fault printed it ("pg_xact/0000").
    pub what: String,
}

/// How the known state is kept and brought back (`up --baseline`, `reset --method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Whole-machine snapshots (libvirt, virtualbox).
    Snapshot,
    /// A copy of each stopped data directory, restored in place (any provider).
    Data,
    /// Both, so either reset method works later.
    Both,
    /// None: a cluster that will not be reset (a matrix cell) comes up faster.
    #[serde(rename = "none")]
    Skip,
}

impl Method {
    /// As state.json and messages name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Snapshot => "snapshot",
            Method::Data => "data",
            Method::Both => "both",
            Method::Skip => "none",
        }
    }
}

/// What a clusterlab command does to a cluster: recorded with the phase, and named in the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Up,
    Reset,
    Destroy,
    Promote,
    Switchover,
    Rejoin,
    Fault,
    Backup,
    Restore,
    Writes,
    Upgrade,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_name(self))
    }
}

/// Where an operation is, as state.json records it (the lowercase name).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Files written, nothing started.
    #[default]
    Rendered,
    Starting,
    Provisioning,
    Verifying,
    /// Saving the known state.
    Baseline,
    Ready,
    Resetting,
    Failed,
    Interrupted,
    Destroying,
    Promoting,
    Rejoining,
    Restoring,
    Upgrading,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_name(self))
    }
}

/// A unit variant's serialized name: messages and state.json say the same.
fn serde_name(v: &impl Serialize) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

impl State {
    pub fn load(w: &Workdir) -> Option<State> {
        let text = std::fs::read_to_string(w.path("state.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn save(&mut self, w: &Workdir) -> Result<()> {
        if self.dry_run {
            return Ok(());
        }
        self.updated_at = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        std::fs::create_dir_all(&w.root).map_err(|e| Error::io(&w.root, e))?;
        let json = serde_json::to_string_pretty(self).expect("state serializes") + "\n";
        write_atomic(&w.path("state.json"), json.as_bytes())
    }

    /// Sets the phase and writes the file at once: a crash right after still leaves the truth.
    pub fn enter(&mut self, w: &Workdir, operation: Operation, phase: Phase, detail: Option<&str>) -> Result<()> {
        self.operation = Some(operation);
        self.phase = phase;
        self.detail = detail.map(str::to_string);
        self.error = None;
        self.save(w)
    }

    /// What the user should run next, given this state.
    pub fn next_step(&self) -> &'static str {
        match self.phase {
            Phase::Ready => "the cluster is up: `clusterlab verify SPEC`, `clusterlab reset SPEC`, `clusterlab destroy SPEC`",
            Phase::Rendered => "`clusterlab up SPEC` starts it",
            Phase::Failed | Phase::Interrupted if self.upgrading_to.is_some() => {
                "an upgrade did not finish, so nodes may run either major: `clusterlab reset SPEC` brings back the spec's major and the known state"
            }
            Phase::Failed | Phase::Interrupted => {
                "look at the error and logs/, fix the cause, then `clusterlab destroy SPEC` and `clusterlab up SPEC` (or `up` again to retry)"
            }
            _ => "an operation did not finish: `clusterlab destroy SPEC` removes what exists",
        }
    }
}

/// Held for the length of one command; removed on drop.
pub struct Lock {
    path: PathBuf,
}

impl Lock {
    pub fn acquire(w: &Workdir, cluster: &str, what: Operation) -> Result<Lock> {
        std::fs::create_dir_all(&w.root).map_err(|e| Error::io(&w.root, e))?;
        let path = w.path("lock");
        for _ in 0..2 {
            let me = format!("{} {}\n", std::process::id(), what);
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(me.as_bytes()).map_err(|e| Error::io(&path, e))?;
                    return Ok(Lock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let pid = holder.split_whitespace().next().and_then(|p| p.parse::<u32>().ok());
                    match pid {
                        Some(pid) if PathBuf::from(format!("/proc/{pid}")).exists() => {
                            return Err(Error::Locked {
                                cluster: cluster.into(),
                                holder: format!("`clusterlab {}` is running as PID {pid}", holder.split_whitespace().nth(1).unwrap_or("?")),
                                path,
                            });
                        }
                        _ => {
                            tracing::warn!("taking over a stale lock left by {}", holder.trim());
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::Locked { cluster: cluster.into(), holder: "another clusterlab process".into(), path })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_upgrade_points_at_reset_not_at_destroy() {
        let mut st = State { phase: Phase::Interrupted, upgrading_to: Some("18".into()), ..Default::default() };
        assert!(st.next_step().contains("`clusterlab reset SPEC` brings back the spec's major"), "{}", st.next_step());
        st.upgrading_to = None;
        assert!(st.next_step().contains("`clusterlab destroy SPEC`"), "{}", st.next_step());
    }

    #[test]
    fn a_state_json_written_before_the_enums_still_loads_and_writes_the_same() {
        let old = r#"{
  "cluster": "c",
  "provider": "docker",
  "phase": "promoting",
  "detail": "pg2",
  "operation": "promote",
  "error": null,
  "baseline": "data",
  "live": {
    "leader": "pg2",
    "upstreams": {
      "pg3": "pg2"
    },
    "detached": [
      "pg1"
    ]
  },
  "updated_at": 1
}"#;
        let st: State = serde_json::from_str(old).unwrap();
        assert_eq!(st.phase, Phase::Promoting);
        assert_eq!(st.provider, Provider::Docker);
        assert_eq!(st.live.as_ref().unwrap().detached, ["pg1"]);
        assert_eq!(serde_json::to_string_pretty(&st).unwrap(), old);
        assert_eq!(Phase::Ready.to_string(), "ready");
        assert_eq!(st.operation.map(|o| o.to_string()).as_deref(), Some("promote"));
    }
}
