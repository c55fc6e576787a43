//! Ctrl-C and SIGTERM: remember that they came, so long operations stop
//! starting new work and record where they were, and pass SIGTERM on to the
//! running vagrant (Ctrl-C reaches it directly through the terminal).

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub fn install() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let last = Arc::new(AtomicI32::new(0));
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        for sig in signals.forever() {
            last.store(sig, Ordering::SeqCst);
            REQUESTED.store(true, Ordering::SeqCst);
            if sig == SIGTERM {
                // vagrant cleans up on SIGINT (its Ctrl-C path), so ask it that
                // way; it then waits for the running step, which can take long
                // (a provisioning script), so insist: a second SIGINT makes it
                // stop at once, and a process still there is killed.
                signal_children("-INT");
                std::thread::spawn(|| {
                    std::thread::sleep(std::time::Duration::from_secs(10));
                    signal_children("-INT");
                    std::thread::sleep(std::time::Duration::from_secs(10));
                    signal_children("-KILL");
                });
            }
            tracing::warn!("interrupted: finishing the running step, then stopping");
        }
    });
}

fn signal_children(sig: &str) {
    let pids = CHILDREN.lock().unwrap().clone();
    for pid in pids {
        let _ = std::process::Command::new("kill").args([sig, &pid.to_string()]).status();
    }
}

/// True once Ctrl-C or SIGTERM arrived.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Registers running children for forwarding; they are forgotten when the guard drops.
pub fn forward_to(pids: Vec<u32>) -> ChildGuard {
    CHILDREN.lock().unwrap().extend(&pids);
    ChildGuard(pids)
}

pub struct ChildGuard(Vec<u32>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        CHILDREN.lock().unwrap().retain(|p| !self.0.contains(p));
    }
}
