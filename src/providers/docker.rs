//! Vagrant's docker provider: containers, reached with `docker exec`.

use super::common::{state_of, Env, Machines};
use crate::error::{Error, Result};
use crate::plan::Node;
use crate::runner::{check, Cmd, Mode, Output};

pub struct Docker<'a>(pub Env<'a>);

impl Docker<'_> {
    fn docker(&self, args: &[&str]) -> Cmd {
        Cmd::new("docker", args.iter().copied()).if_missing("install Docker: `apt-get install docker.io`, and start dockerd")
    }
}

impl Machines for Docker<'_> {
    fn env(&self) -> &Env<'_> {
        &self.0
    }

    fn exec_cmd(&self, node: &Node, args: &[&str]) -> Result<Cmd> {
        let mut a = vec!["exec", node.machine.as_str()];
        a.extend(args);
        Ok(self.docker(&a))
    }

    fn exec_with_input_cmd(&self, node: &Node, args: &[&str]) -> Result<Cmd> {
        let mut a = vec!["exec", "-i", node.machine.as_str()];
        a.extend(args);
        Ok(self.docker(&a))
    }

    /// What `vagrant destroy` does here, in two docker calls instead of a
    /// vagrant run (about 3 s): the containers with their volumes, then the
    /// network vagrant made for the cluster's subnet, unless another
    /// cluster's containers still use it (docker refuses then).
    fn destroy_machines(&self) -> Result<()> {
        let env = &self.0;
        let _turn = crate::vagrant::networks_turn();
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(env.plan.nodes.iter().map(|n| n.machine.as_str()));
        // Missing containers are fine (remove_leftovers checks each afterwards).
        env.runner.run(&self.docker(&args), &Mode::Capture)?;
        let network = format!("vagrant_network_{}", env.plan.network);
        env.runner.run(&self.docker(&["network", "rm", &network]), &Mode::Capture)?;
        Ok(())
    }

    fn save_snapshots(&self) -> Result<()> {
        Err(Error::usage("docker containers have no snapshots", "use the data-directory method"))
    }

    fn restore_snapshots(&self) -> Result<()> {
        Err(Error::usage("docker containers have no snapshots", "use `--method data`"))
    }

    fn machine_state(&self, node: &Node) -> Result<String> {
        Ok(state_of(self.0.runner.run(&self.docker(&["inspect", "-f", "{{.State.Status}}", &node.machine]), &Mode::Capture)?))
    }

    fn freeze(&self, node: &Node, frozen: bool) -> Result<()> {
        let verb = if frozen { "pause" } else { "unpause" };
        check(self.0.runner, &self.docker(&[verb, &node.machine]), &Mode::Capture, &format!("docker could not {verb} the container")).map(drop)
    }

    /// A container may not change its own routes (no CAP_NET_ADMIN), so the
    /// routes are set from the host, inside the container's network namespace.
    /// From the host inside the container's network namespace: a container
    /// may not change its own routes or queues.
    fn net_run(&self, node: &Node, args: &[&str]) -> Result<Output> {
        let pid = check(self.0.runner, &self.docker(&["inspect", "-f", "{{.State.Pid}}", &node.machine]), &Mode::Capture, "is the container running?")?;
        let pid = pid.stdout.trim().to_string();
        let cmd = Cmd::new("nsenter", ["-t", pid.as_str(), "-n"].into_iter().chain(args.iter().copied()));
        self.0.runner.run(&cmd, &Mode::Capture)
    }

    fn remove_leftovers(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for n in &self.0.plan.nodes {
            if self.0.runner.run(&self.docker(&["inspect", &n.machine]), &Mode::Capture)?.ok() {
                check(self.0.runner, &self.docker(&["rm", "-f", "-v", &n.machine]), &Mode::Capture, "docker could not remove the container")?;
                removed.push(format!("container {}", n.machine));
            }
        }
        Ok(removed)
    }
}
