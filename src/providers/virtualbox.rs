//! VirtualBox through vagrant: no fast path of its own here (no VirtualBox on
//! the project's machines), so snapshots go through `vagrant snapshot`.

use super::common::{close_ssh, ssh_cmd, Env, Machines, SNAPSHOT};
use crate::error::Result;
use crate::plan::Node;
use crate::runner::Cmd;

pub struct Virtualbox<'a>(pub Env<'a>);

impl Machines for Virtualbox<'_> {
    fn env(&self) -> &Env<'_> {
        &self.0
    }

    fn exec_cmd(&self, node: &Node, args: &[&str]) -> Result<Cmd> {
        ssh_cmd(&self.0, node, args)
    }

    fn save_snapshots(&self) -> Result<()> {
        self.0.vagrant.snapshot_save(SNAPSHOT)
    }

    fn restore_snapshots(&self) -> Result<()> {
        close_ssh(&self.0);
        self.0.vagrant.snapshot_restore(SNAPSHOT)
    }

    fn machine_state(&self, _node: &Node) -> Result<String> {
        Ok("unknown (see `vagrant status`)".into())
    }

    fn remove_leftovers(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}
