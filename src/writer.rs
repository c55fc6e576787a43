//! The background writer of `clusterlab writes` as a process and files in a
//! cluster's working directory. The drills start it and read back its rows
//! (`drills/writes.rs`); `Cluster::reset` and `destroy` stop it and forget
//! its rows, because a writer left running would write on into the restored
//! cluster and a later `writes check` would count the reset as loss. It sits
//! below both so that neither has to use the other.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Mutex;
use std::time::Duration;

/// The writer's files in a cluster's working directory.
pub struct Files {
    /// Where to write: the nodes, the credentials (`writes.json`).
    pub target: PathBuf,
    /// Every acknowledged row, with the time its COMMIT returned.
    pub acked: PathBuf,
    pub pid: PathBuf,
    pub log: PathBuf,
    /// The cluster's state.json, where the writer reads who leads now.
    pub state: PathBuf,
}

pub fn files(dir: &Path) -> Files {
    Files { target: dir.join("writes.json"), acked: dir.join("writes.acked"), pid: dir.join("writes.pid"), log: dir.join("writes.log"), state: dir.join("state.json") }
}

/// Writers this process started, to reap after they are stopped.
static CHILDREN: Mutex<Vec<Child>> = Mutex::new(Vec::new());

/// Keeps a writer this process started, so that `stop` can reap it.
pub fn adopt(child: Child) {
    CHILDREN.lock().expect("writers lock").push(child);
}

/// Stops the writer whose pid is in `pid_file`, if this tool started it.
pub fn stop(pid_file: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file).ok().and_then(|p| p.trim().parse::<u32>().ok()) else { return };
    let mut children = CHILDREN.lock().expect("writers lock");
    if let Some(i) = children.iter().position(|c| c.id() == pid) {
        let mut child = children.remove(i);
        let _ = child.kill();
        let _ = child.wait();
    } else if std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("writes-worker")) {
        // Started by an earlier `clusterlab writes start`; still ours by its
        // command line. SIGKILL: it would finish its statement on SIGTERM.
        let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        for _ in 0..50 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_file(pid_file);
}

/// Stops the cluster's writer, if one runs, and forgets its rows (its log
/// stays, for whoever wants to know what it saw).
pub fn stop_and_forget(dir: &Path) {
    let f = files(dir);
    stop(&f.pid);
    for p in [&f.target, &f.acked] {
        let _ = std::fs::remove_file(p);
    }
}
