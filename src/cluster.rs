//! The verbs that act on a cluster (up, verify, reset, destroy, status), each
//! an ordered list of steps over the vagrant driver and the provider's fast
//! paths, recording its phase in state.json as it goes.

use crate::error::{Error, Result};
use crate::plan::{self, Node, Plan};
use crate::providers::{self, Env, Machines};
use crate::render::Renderer;
use crate::runner::{parallel, Runner};
use crate::spec::{self, Source, Spec};
pub use crate::state::Method;
use crate::state::{Lock, Operation, Phase, State};
use crate::topology::Topology;
use crate::vagrant::Vagrant;
use crate::verify::{self, Report};
use crate::workdir::Workdir;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What every operation needs besides the cluster itself.
pub struct Ctx<'a> {
    pub runner: &'a dyn Runner,
    pub quiet: bool,
    pub templates: Option<PathBuf>,
}

impl Ctx<'_> {
    /// A progress line on stderr with the time since `start`.
    pub fn progress(&self, start: Instant, msg: &str) {
        if !self.quiet {
            eprintln!("[{:>6.1}s] {msg}", start.elapsed().as_secs_f64());
        }
    }
}

pub struct Cluster {
    pub spec: Spec,
    pub src: Source,
    pub plan: Plan,
    pub workdir: Workdir,
}

impl Cluster {
    pub fn load(path: &Path, workdir: Option<&Path>) -> Result<Cluster> {
        let (spec, src) = spec::load(path)?;
        Cluster::from_parts(spec, src, workdir)
    }

    pub fn from_parts(spec: Spec, src: Source, workdir: Option<&Path>) -> Result<Cluster> {
        let plan = plan::build(&spec, &src)?;
        let workdir = Workdir::new(src.dir(), &plan.name, workdir);
        Ok(Cluster { spec, src, plan, workdir })
    }

    /// Renders the Vagrantfile and scripts for this host: a libvirt spec that
    /// leaves the driver to clusterlab gets KVM where it works (`accel`).
    /// What was chosen, for the caller to say.
    pub fn render(&self, templates: Option<&Path>, real: bool) -> Result<(Vec<PathBuf>, Option<String>)> {
        let mut plan = self.plan.clone();
        let note = providers::settle_for_host(&mut plan, real);
        let files = Renderer::new(templates)?.render_plan(&plan)?;
        Ok((self.workdir.write(&files, &plan)?, note))
    }

    pub(crate) fn vagrant<'a>(&self, ctx: &'a Ctx) -> Vagrant<'a> {
        Vagrant { runner: ctx.runner, dir: self.workdir.root.clone(), logs: self.workdir.logs(), quiet: ctx.quiet }
    }

    fn state(&self, ctx: &Ctx) -> State {
        let mut st = State::load(&self.workdir).unwrap_or_else(|| State {
            cluster: self.plan.name.clone(),
            provider: self.plan.provider,
            phase: Phase::Rendered,
            ..Default::default()
        });
        st.dry_run = !ctx.runner.is_real();
        st
    }

    /// Runs `body`; on failure records it (phase failed or interrupted) before returning the error.
    fn recorded<T>(&self, st: &mut State, body: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let r = body(st);
        if let Err(e) = &r {
            self.record_failure(st, e);
        }
        r
    }

    pub(crate) fn record_failure(&self, st: &mut State, e: &Error) {
        st.phase = if matches!(e, Error::Interrupted(_)) || crate::signals::requested() { Phase::Interrupted } else { Phase::Failed };
        st.error = Some(e.to_string());
        let _ = st.save(&self.workdir);
    }

    /// The topology replication has now, as `st` records it: the one the
    /// last drill left, or the spec's.
    pub fn live_of(&self, st: &State) -> Topology {
        st.live.clone().unwrap_or_else(|| Topology::of(&self.plan))
    }

    /// The live topology as state.json has it.
    pub fn live(&self) -> Topology {
        State::load(&self.workdir).map(|st| self.live_of(&st)).unwrap_or_else(|| Topology::of(&self.plan))
    }

    /// Records the topology a drill left (saved with the state's next phase).
    pub(crate) fn record_live(&self, st: &mut State, next: &Topology) {
        st.live = Some(next.clone());
    }

    /// The plan of the live topology: what `verify`, `status` and `sql` check.
    pub fn current_plan(&self) -> Result<Plan> {
        self.live_plan(&self.live())
    }

    /// The spec's plan on another major (after an upgrade); `None`: the spec's own.
    pub fn plan_for(&self, major: Option<&str>) -> Result<Plan> {
        match major {
            Some(m) if m != self.plan.version => {
                let major = crate::facts::Major::parse(m).ok_or_else(|| Error::usage(format!("`{m}` is not a PostgreSQL major"), "use e.g. 18"))?;
                Ok(plan::build_for_major(&self.spec, &self.src, Some(major))?)
            }
            _ => Ok(self.plan.clone()),
        }
    }

    /// The plan a topology implies, on the major it runs.
    pub fn live_plan(&self, t: &Topology) -> Result<Plan> {
        t.plan(&self.plan_for(t.major.as_deref())?)
    }

    /// A node of the spec, or the error that names the nodes there are.
    pub fn node_named(&self, node: &str) -> Result<&Node> {
        self.plan.node(node).ok_or_else(|| {
            let names: Vec<&str> = self.plan.nodes.iter().map(|n| n.name.as_str()).collect();
            Error::usage(format!("no node `{node}` in cluster {}", self.plan.name), format!("name one of: {}", names.join(", ")))
        })
    }

    pub fn up(&self, ctx: &Ctx, verify: bool, baseline: Option<Method>) -> Result<()> {
        let start = Instant::now();
        let _lock = Lock::acquire(&self.workdir, &self.plan.name, Operation::Up)?;
        let (_, accel) = self.render(ctx.templates.as_deref(), ctx.runner.is_real())?;
        let mut st = self.state(ctx);
        let vagrant = self.vagrant(ctx);
        let provider = self.provider(ctx, &vagrant);
        self.recorded(&mut st, |st| {
            st.enter(&self.workdir, Operation::Up, Phase::Starting, None)?;
            if let Some(a) = &accel {
                ctx.progress(start, a);
            }
            ctx.progress(start, &format!("starting {} {} machines", self.plan.nodes.len(), self.plan.provider));
            vagrant.up_no_provision(self.plan.provider)?;
            for wave in self.plan.waves() {
                interrupted("up")?;
                let names: Vec<&str> = wave.iter().map(|n| n.name.as_str()).collect();
                st.enter(&self.workdir, Operation::Up, Phase::Provisioning, Some(&names.join(", ")))?;
                ctx.progress(start, &format!("provisioning {}", names.join(", ")));
                parallel(&wave, |n| provider.provision(n))?;
            }
            if ctx.runner.is_real() {
                // Read once here and shown by `status`, which stays off the machines.
                st.box_majors = box_majors(provider.as_ref(), self.plan.leader());
            }
            if verify && ctx.runner.is_real() {
                interrupted("up")?;
                st.enter(&self.workdir, Operation::Up, Phase::Verifying, None)?;
                self.verify_and_print(ctx, Duration::from_secs(60), false)?;
            }
            let method = baseline.unwrap_or(if provider.has_snapshots() { Method::Snapshot } else { Method::Data });
            if ctx.runner.is_real() && method != Method::Skip {
                interrupted("up")?;
                st.enter(&self.workdir, Operation::Up, Phase::Baseline, None)?;
                ctx.progress(start, &format!("saving the known state ({})", method.as_str()));
                self.save_baseline(provider.as_ref(), method)?;
                st.baseline = Some(method);
            }
            st.enter(&self.workdir, Operation::Up, Phase::Ready, None)?;
            ctx.progress(start, &format!("cluster {} is up", self.plan.name));
            Ok(())
        })
    }

    pub(crate) fn provider<'a>(&'a self, ctx: &'a Ctx, vagrant: &'a Vagrant<'a>) -> Box<dyn Machines + 'a> {
        providers::for_plan(Env { runner: ctx.runner, plan: &self.plan, workdir: &self.workdir, vagrant })
    }

    fn save_baseline(&self, p: &dyn Machines, method: Method) -> Result<()> {
        if matches!(method, Method::Snapshot | Method::Both) && !p.has_snapshots() {
            return Err(Error::usage(format!("the {} provider has no snapshots", p.name()), "use `--baseline data`"));
        }
        if matches!(method, Method::Data | Method::Both) {
            // Leader first: a fast shutdown sends its final checkpoint to the
            // connected followers, so the saved copies agree with each other.
            for wave in self.plan.waves() {
                parallel(&wave, |n| node_ctl(p, n, "stop"))?;
            }
            parallel(&self.plan.nodes, |n| node_ctl(p, n, "save"))?;
            self.start_in_order(p)?;
        }
        if matches!(method, Method::Snapshot | Method::Both) {
            p.save_snapshots()?;
        }
        Ok(())
    }

    fn start_in_order(&self, p: &dyn Machines) -> Result<()> {
        for wave in self.plan.waves() {
            parallel(&wave, |n| node_ctl(p, n, "start"))?;
        }
        Ok(())
    }

    pub fn verify_and_print(&self, ctx: &Ctx, timeout: Duration, json: bool) -> Result<Report> {
        self.verify_plan_and_print(ctx, &self.current_plan()?, timeout, json)
    }

    pub(crate) fn verify_plan_and_print(&self, ctx: &Ctx, plan: &Plan, timeout: Duration, json: bool) -> Result<Report> {
        let password = self.workdir.lab_password()?;
        self.print_report(ctx, verify::verify(plan, &password, timeout), json)
    }

    fn print_report(&self, ctx: &Ctx, report: Report, json: bool) -> Result<Report> {
        if json {
            println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
        } else if !ctx.quiet || !report.ok {
            print!("{}", report.table());
            println!("{} in {} ms", if report.ok { "replication OK" } else { "replication BROKEN" }, report.elapsed_ms);
        }
        report.into_result()
    }

    pub fn reset(&self, ctx: &Ctx, method: Option<Method>, verify: bool) -> Result<()> {
        let start = Instant::now();
        let _lock = Lock::acquire(&self.workdir, &self.plan.name, Operation::Reset)?;
        let mut st = self.state(ctx);
        let Some(baseline) = st.baseline else {
            return Err(Error::usage(
                format!("cluster {} has no known state to go back to (phase: {})", self.plan.name, st.phase),
                "`clusterlab up SPEC` brings the cluster up and saves its known state",
            ));
        };
        let vagrant = self.vagrant(ctx);
        let provider = self.provider(ctx, &vagrant);
        let method = match method {
            Some(Method::Both | Method::Skip) => return Err(Error::usage("reset uses one method", "use `--method snapshot` or `--method data`")),
            Some(m) => m,
            None if baseline == Method::Data => Method::Data,
            None => Method::Snapshot,
        };
        if method == Method::Snapshot && baseline == Method::Data {
            return Err(Error::usage(
                "the known state was saved as data-directory copies, not snapshots",
                "use `clusterlab reset --method data`, or `clusterlab up --baseline both` to have both",
            ));
        }
        if method == Method::Data && baseline == Method::Snapshot {
            return Err(Error::usage(
                "no data-directory copies were saved at `up`",
                "use `--method snapshot`, or `clusterlab up --baseline both` to have both",
            ));
        }
        self.recorded(&mut st, |st| {
            st.enter(&self.workdir, Operation::Reset, Phase::Resetting, Some(method.as_str()))?;
            self.stop_writer(ctx);
            self.thaw_all(provider.as_ref(), st)?;
            match method {
                Method::Snapshot => provider.restore_snapshots()?,
                _ => {
                    // After an upgrade, finished or not: the spec's major's cluster is each node's again.
                    if st.upgrading_to.is_some() || self.live_of(st).major.as_deref().is_some_and(|m| m != self.plan.version) {
                        let ctl = format!("clusterlab-pg-{}", self.plan.version);
                        parallel(&self.plan.nodes, |n| provider.exec(n, &[ctl.as_str(), "take-over"]).map(drop))?;
                    }
                    // One call a node, all at once; a follower's waits for its
                    // upstream (the known state has the spec's topology).
                    parallel(&self.plan.nodes, |n| {
                        let upstream = n.upstream.as_deref().and_then(|u| self.plan.node(u)).map(|u| u.address.as_str());
                        provider.exec(n, &["clusterlab-pg", "reset", upstream.unwrap_or("")]).map(drop)
                    })?;
                }
            }
            // The known state has the spec's topology: whatever a drill changed is undone.
            st.live = None;
            st.upgrading_to = None;
            // Tables a matrix compared (`same_rows`) start again from the known state.
            let _ = std::fs::remove_file(self.workdir.path("same-rows.json"));
            st.save(&self.workdir)?;
            ctx.progress(start, &format!("restored the known state ({})", method.as_str()));
            if method == Method::Snapshot && provider.restore_needs_settling() {
                // The guests' clocks are set while verify connects; its row,
                // written after, reaches every follower; then what the
                // snapshot held for the restore's sake is put back.
                // With `--no-verify` the row is still needed, unprinted.
                st.enter(&self.workdir, Operation::Reset, Phase::Verifying, None)?;
                let password = self.workdir.lab_password()?;
                let plan = &self.plan;
                let gate = verify::Gate::default();
                let (clocks, report) = std::thread::scope(|s| {
                    let clocks = s.spawn(|| {
                        let r = provider.sync_clocks();
                        gate.open();
                        r
                    });
                    let report = verify::verify_gated(plan, &password, Duration::from_secs(60), Some(gate.clone()));
                    (clocks.join().unwrap_or_else(|_| Err(Error::Verify("setting the guest clocks panicked".into()))), report)
                });
                clocks?;
                provider.settle_restore()?;
                if verify {
                    self.print_report(ctx, report, false)?;
                } else if !report.ok {
                    tracing::warn!("after the restore, replication did not check out (`clusterlab verify SPEC` says why)");
                }
            } else if verify {
                st.enter(&self.workdir, Operation::Reset, Phase::Verifying, None)?;
                self.verify_plan_and_print(ctx, &self.plan, Duration::from_secs(60), false)?;
            }
            st.enter(&self.workdir, Operation::Reset, Phase::Ready, None)?;
            ctx.progress(start, "reset done");
            Ok(())
        })
    }

    /// A writer a drill left running would write on into the restored
    /// cluster (and a `writes check` after it count the reset as loss), or
    /// look for a leader among machines that are gone: it stops first.
    fn stop_writer(&self, ctx: &Ctx) {
        if ctx.runner.is_real() {
            crate::writer::stop_and_forget(&self.workdir.root);
        }
    }

    pub fn destroy(&self, ctx: &Ctx) -> Result<()> {
        let start = Instant::now();
        let lock = Lock::acquire(&self.workdir, &self.plan.name, Operation::Destroy)?;
        let mut st = self.state(ctx);
        let vagrant = self.vagrant(ctx);
        let provider = self.provider(ctx, &vagrant);
        self.recorded(&mut st, |st| {
            st.enter(&self.workdir, Operation::Destroy, Phase::Destroying, None)?;
            self.stop_writer(ctx);
            if self.workdir.path("Vagrantfile").is_file() {
                ctx.progress(start, &format!("removing the {} machines", self.plan.provider));
                provider.destroy_machines()?;
            }
            for what in provider.remove_leftovers()? {
                ctx.progress(start, &format!("removed leftover {what}"));
            }
            Ok(())
        })?;
        drop(lock);
        if ctx.runner.is_real() {
            std::fs::remove_dir_all(&self.workdir.root).map_err(|e| Error::io(&self.workdir.root, e))?;
        }
        ctx.progress(start, &format!("cluster {} destroyed", self.plan.name));
        Ok(())
    }

    pub fn status(&self, ctx: &Ctx) -> StatusReport {
        let st = State::load(&self.workdir);
        let machines = if st.is_some() {
            let vagrant = self.vagrant(ctx);
            let provider = self.provider(ctx, &vagrant);
            provider.machine_states()
        } else {
            Vec::new()
        };
        // Roles as they are now: after a drill, the live topology's.
        let live = self.current_plan().unwrap_or_else(|_| self.plan.clone());
        let nodes = self
            .plan
            .nodes
            .iter()
            .map(|n| NodeStatus {
                node: n.name.clone(),
                role: live.node(&n.name).map_or("outside", |l| l.role.as_str()).into(),
                address: n.address.clone(),
                upstream: live.node(&n.name).and_then(|l| l.upstream.clone()),
                machine: n.machine.clone(),
                state: machines.iter().find(|(m, _)| m == &n.name).map(|(_, s)| s.clone()).unwrap_or_else(|| "not created".into()),
            })
            .collect();
        let next = match &st {
            Some(s) => s.next_step().to_string(),
            None => "nothing exists yet: `clusterlab up SPEC` creates the cluster".into(),
        };
        let topology = st.as_ref().and_then(|s| s.live.as_ref()).map(|l| l.tree(&Topology::of(&self.plan)));
        let observed = self.observe(ctx, st.as_ref(), &machines, &live);
        StatusReport { cluster: self.plan.name.clone(), workdir: self.workdir.root.clone(), postgres: live.version.clone(), state: st, nodes, next, topology, observed }
    }

    /// What the nodes' PostgreSQL says now (lag, slots and the WAL they
    /// hold, the archiver, timelines, disk use), once the machines exist and
    /// some run: straight to PostgreSQL, a few seconds at most, no row written.
    fn observe(&self, ctx: &Ctx, st: Option<&State>, machines: &[(String, String)], live: &Plan) -> Option<crate::verify::Report> {
        let settled = st.is_some_and(|s| !matches!(s.phase, Phase::Rendered | Phase::Starting | Phase::Provisioning | Phase::Destroying));
        if !ctx.runner.is_real() || !settled || !machines.iter().any(|(_, state)| state == "running") {
            return None;
        }
        let password = self.workdir.lab_password().ok()?;
        Some(crate::verify::observe(live, &password))
    }
}

impl Cluster {
    /// Runs a command as root on a node through the provider's fastest path
    /// (docker exec, or ssh); the output is returned whatever the exit code.
    pub fn exec_on(&self, ctx: &Ctx, node: &str, args: &[&str]) -> Result<crate::runner::Output> {
        let n = self.node_named(node)?;
        let vagrant = self.vagrant(ctx);
        let p = self.provider(ctx, &vagrant);
        ctx.runner.run(&p.exec_cmd(n, args)?, &crate::runner::Mode::Capture)
    }
}

/// Faults that outlive the command that made them: lifted by `fault heal` and `reset`.
impl Cluster {
    /// Blackhole routes on the node to every other node, and on every other
    /// node to it: cut both ways, whichever side opens a connection.
    pub(crate) fn cut(&self, p: &dyn Machines, n: &Node, cut: bool) -> Result<()> {
        let others: Vec<&Node> = self.plan.nodes.iter().filter(|m| m.name != n.name).collect();
        let addresses: Vec<&str> = others.iter().map(|m| m.address.as_str()).collect();
        p.partition(n, &addresses, cut)?;
        for m in others {
            p.partition(m, &[n.address.as_str()], cut)?;
        }
        Ok(())
    }

    /// Before a reset: undo what `fault pause` and `fault partition` did (a
    /// frozen container cannot even be asked to stop).
    fn thaw_all(&self, p: &dyn Machines, st: &mut State) -> Result<()> {
        // The known state's postgresql.auto.conf has the configured archive_command.
        st.archive_failing.clear();
        // The reset puts back the whole data directory and archive.
        st.aside.clear();
        // Each node's reset deletes the file that filled its disk.
        st.filled.clear();
        for name in std::mem::take(&mut st.slowed) {
            if let Some(n) = self.plan.node(&name) {
                p.netem(n, None)?;
            }
        }
        for name in std::mem::take(&mut st.frozen) {
            if let Some(n) = self.plan.node(&name) {
                p.freeze(n, false)?;
            }
        }
        for name in std::mem::take(&mut st.partitioned) {
            if let Some(n) = self.plan.node(&name) {
                self.cut(p, n, false)?;
            }
        }
        Ok(())
    }
}

/// The majors a node's box carries (what `upgrade --to` can reach), oldest first.
fn box_majors(p: &dyn Machines, n: &Node) -> Vec<String> {
    let Ok(out) = p.exec(n, &["ls", "/usr/lib/postgresql"]) else { return Vec::new() };
    let mut majors: Vec<String> = out.stdout.split_whitespace().filter(|v| crate::facts::Major::parse(v).is_some()).map(str::to_string).collect();
    majors.sort_by_key(|v| crate::facts::Major::parse(v));
    majors
}

/// Runs the node control script (`clusterlab-pg start|stop|save|restore`) on a node.
pub(crate) fn node_ctl(p: &dyn Machines, n: &Node, action: &str) -> Result<()> {
    p.exec(n, &["clusterlab-pg", action]).map(drop)
}

fn interrupted(op: &str) -> Result<()> {
    if crate::signals::requested() {
        return Err(Error::Interrupted(op.into()));
    }
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct NodeStatus {
    pub node: String,
    pub role: String,
    pub address: String,
    pub upstream: Option<String>,
    pub machine: String,
    pub state: String,
}

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub cluster: String,
    pub workdir: PathBuf,
    /// The major the nodes run now (the spec's, until `upgrade`).
    pub postgres: String,
    pub state: Option<State>,
    pub nodes: Vec<NodeStatus>,
    pub next: String,
    /// The live topology as a tree with its differences from the spec (after a drill).
    #[serde(skip)]
    pub topology: Option<String>,
    /// What each node's PostgreSQL says, as verify's table has it (no test row).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<crate::verify::Report>,
}

impl StatusReport {
    pub fn text(&self) -> String {
        let mut out = format!("cluster {} ({})\n", self.cluster, self.workdir.display());
        match &self.state {
            Some(s) => {
                out += &format!(
                    "phase: {}{}{}\n",
                    s.phase,
                    s.operation.as_ref().map(|o| format!(" (last operation: {o})")).unwrap_or_default(),
                    s.detail.as_ref().map(|d| format!(", at {d}")).unwrap_or_default()
                );
                if let Some(e) = &s.error {
                    out += &format!("error: {}\n", e.lines().next().unwrap_or_default());
                }
                out += &format!("known state: {}\n", s.baseline.map_or("none", Method::as_str));
                out += &format!("PostgreSQL {}", self.postgres);
                if let Some(to) = &s.upgrading_to {
                    out += &format!(", an upgrade to {to} did not finish (nodes may run either)");
                }
                if !s.box_majors.is_empty() {
                    out += &format!(" (the box carries {})", s.box_majors.join(", "));
                }
                out += "\n";
                if let Some(tree) = &self.topology {
                    out += tree;
                }
                if !s.partitioned.is_empty() {
                    out += &format!("cut off from the other nodes: {} (`clusterlab fault SPEC NODE heal`)\n", s.partitioned.join(", "));
                }
                if !s.archive_failing.is_empty() {
                    out += &format!("archive_command failing: {} (`clusterlab fault SPEC NODE heal`)\n", s.archive_failing.join(", "));
                }
                for a in &s.aside {
                    out += &format!("{} lost {} (`clusterlab fault SPEC {} heal` puts it back)\n", a.node, a.what, a.node);
                }
                if !s.filled.is_empty() {
                    out += &format!("disk full (fault disk-full): {} (`clusterlab fault SPEC NODE heal` frees it)\n", s.filled.join(", "));
                }
                if !s.slowed.is_empty() {
                    out += &format!("link slowed (netem): {} (`clusterlab fault SPEC NODE heal`)\n", s.slowed.join(", "));
                }
                if !s.frozen.is_empty() {
                    out += &format!("frozen: {} (`clusterlab fault SPEC NODE heal`)\n", s.frozen.join(", "));
                }
            }
            None => out += "phase: not created\n",
        }
        for n in &self.nodes {
            out += &format!(
                "  {:<12} {:<9} {:<15} {:<10} {}\n",
                n.node,
                n.role,
                n.address,
                n.upstream.as_deref().map(|u| format!("<- {u}")).unwrap_or_default(),
                n.state
            );
        }
        if let Some(r) = &self.observed {
            out += &format!("what PostgreSQL says (read in {} ms; `clusterlab verify SPEC` also proves a row arrives):\n", r.elapsed_ms);
            out += &r.table();
        }
        out += &format!("next: {}\n", self.next);
        out
    }
}
