//! Command-line interface: argument parsing and dispatch to the stages.

use crate::boxbuild::{self, BoxArgs};
use crate::cluster::{Cluster, Ctx, Method};
use crate::drills::{BackupArgs, Drill, FaultArgs, NodeArg, PromoteArgs, RestoreArgs, UpgradeArgs, WritesArgs};
use crate::error::{exit, Error, Result};
use crate::providers::kind::Provider;
use crate::runner::{DryRun, Duct, Runner};
use clap::{CommandFactory, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "clusterlab", version, about = "PostgreSQL test clusters on Vagrant: up in minutes, reset in seconds, a CI matrix in one command", after_help = crate::error::exit_codes_help())]
pub struct Cli {
    /// More logging (-v, -vv); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors and results.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Directory whose files override the built-in templates, by name.
    #[arg(long, global = true, env = "CLUSTERLAB_TEMPLATES")]
    pub templates: Option<PathBuf>,
    /// The cluster's working directory (default: .clusterlab/NAME beside the spec).
    #[arg(long, global = true)]
    pub workdir: Option<PathBuf>,
    /// Print the external commands instead of running them.
    #[arg(long, global = true)]
    pub dry_run: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a new, commented cluster spec.
    New(NewArgs),
    /// Validate specs and show their plans.
    Check {
        #[arg(required = true)]
        specs: Vec<PathBuf>,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Render the Vagrantfile and provisioning scripts into the working directory.
    Render {
        spec: PathBuf,
        /// Output directory (same as --workdir).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Bring the cluster up, provision it, verify it and save its known state.
    Up {
        spec: PathBuf,
        /// Skip the replication check at the end.
        #[arg(long)]
        no_verify: bool,
        /// How to keep the known state (default: snapshot where the provider has them, else data).
        #[arg(long, value_enum)]
        baseline: Option<Method>,
    },
    /// Show what exists for the cluster and what to do next.
    Status {
        spec: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Prove replication works: streaming, slots, recovery, and a row reaching every follower.
    Verify {
        spec: PathBuf,
        /// Seconds to wait for replication to settle.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        #[arg(long)]
        json: bool,
    },
    /// Return every node to the known state saved by `up`, then verify.
    Reset {
        spec: PathBuf,
        #[arg(long, value_enum)]
        method: Option<Method>,
        #[arg(long)]
        no_verify: bool,
    },
    /// Failover: promote a follower; the old leader's followers follow it, the old leader is fenced.
    Promote {
        spec: PathBuf,
        #[command(flatten)]
        args: PromoteArgs,
    },
    /// Planned switchover: the leader stops cleanly, NODE catches up and leads, the old leader follows it.
    Switchover {
        spec: PathBuf,
        #[command(flatten)]
        args: NodeArg,
    },
    /// Bring a former leader back as a follower of the current leader (pg_rewind, or a fresh base backup).
    Rejoin {
        spec: PathBuf,
        #[command(flatten)]
        args: NodeArg,
    },
    /// Break a node: kill -9 its postmaster, stop it, freeze its machine, cut it off, or heal it. `reset` undoes all.
    Fault {
        spec: PathBuf,
        #[command(flatten)]
        args: FaultArgs,
    },
    /// Take a base backup of a node (tar, WAL included) into the cluster's working directory.
    Backup {
        spec: PathBuf,
        #[command(flatten)]
        args: BackupArgs,
    },
    /// List the cluster's backups.
    Backups {
        spec: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Point-in-time recovery of a node from a backup and the WAL archive.
    Restore {
        spec: PathBuf,
        #[command(flatten)]
        args: RestoreArgs,
    },
    /// Commit numbered rows to the leader in the background (`start`), then prove every acknowledged one survived (`check`).
    Writes {
        spec: PathBuf,
        #[command(flatten)]
        args: WritesArgs,
    },
    /// Upgrade every node to a newer major (pg_upgrade --link or --copy, or dump and restore); `--check` changes nothing. `reset` goes back.
    Upgrade {
        spec: PathBuf,
        #[command(flatten)]
        args: UpgradeArgs,
    },
    /// The background writer of `writes start` (internal).
    #[command(hide = true)]
    WritesWorker { dir: PathBuf },
    /// Remove the machines, snapshots, state and working directory.
    Destroy { spec: PathBuf },
    /// Open a shell on a node, or run one command there.
    Ssh {
        spec: PathBuf,
        node: String,
        #[arg(short, long)]
        command: Option<String>,
    },
    /// Run SQL on a node (default: the leader) as the lab user, from the host.
    Sql {
        spec: PathBuf,
        sql: String,
        #[arg(long)]
        node: Option<String>,
    },
    /// Run a matrix of clusters (versions x topologies), for CI.
    Matrix(crate::matrix::MatrixArgs),
    /// Build offline boxes and images.
    #[command(subcommand)]
    Box(BoxCommand),
    /// Work with the templates.
    #[command(subcommand)]
    Templates(TemplatesCommand),
    /// Print the JSON Schema of cluster specs.
    Schema,
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
pub enum BoxCommand {
    /// Build a box (libvirt) or image (docker) from Debian packages, offline inside.
    Build(BoxArgs),
}

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Copy the built-in templates into DIR for editing (use with --templates DIR).
    Export { dir: PathBuf },
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    pub name: String,
    #[arg(long, default_value = "15")]
    pub version: String,
    #[arg(long, default_value_t = 2)]
    pub followers: u32,
    /// Replication slots (default on).
    #[arg(long, overrides_with = "no_slots")]
    pub slots: bool,
    #[arg(long)]
    pub no_slots: bool,
    /// Synchronous replication.
    #[arg(long)]
    pub sync: bool,
    #[arg(long, value_enum, default_value_t = Provider::Docker)]
    pub provider: Provider,
    /// Box or image (default: the one `clusterlab box build --postgres VERSION` makes,
    /// e.g. clusterlab/trixie-pg11, clusterlab/bookworm-pg9.4).
    #[arg(long = "box")]
    pub box_name: Option<String>,
    #[arg(long, default_value = "10.42.0.0/24")]
    pub network: String,
    /// Where to write it (default: clusters/NAME.yaml if clusters/ exists, else NAME.yaml).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(long)]
    pub force: bool,
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    init_tracing(cli.verbose, cli.quiet);
    crate::signals::install();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let code = e.exit_code();
            eprintln!("{:?}", miette::Report::new(e));
            code
        }
    }
}

fn init_tracing(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("clusterlab={default},warn")));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).try_init();
}

fn load(spec: &Path, cli_workdir: Option<&Path>) -> Result<Cluster> {
    Cluster::load(spec, cli_workdir)
}

pub fn run(cli: Cli) -> Result<i32> {
    let runner: Box<dyn Runner> = if cli.dry_run { Box::new(DryRun) } else { Box::new(Duct) };
    let ctx = Ctx { runner: runner.as_ref(), quiet: cli.quiet, templates: cli.templates.clone() };
    let wd = cli.workdir.as_deref();
    match cli.command {
        Command::New(args) => new_spec(args, cli.templates.as_deref()),
        Command::Check { specs, json } => Ok(check(&specs, json, wd)),
        Command::Render { spec, output } => {
            let c = load(&spec, output.as_deref().or(wd))?;
            render(&c, cli.templates.as_deref(), !cli.dry_run)
        }
        Command::Up { spec, no_verify, baseline } => {
            load(&spec, wd)?.up(&ctx, !no_verify, baseline)?;
            Ok(exit::OK)
        }
        Command::Status { spec, json } => {
            let c = load(&spec, wd)?;
            let s = c.status(&ctx);
            if json {
                println!("{}", serde_json::to_string_pretty(&s).expect("status serializes"));
            } else {
                print!("{}", s.text());
            }
            Ok(exit::OK)
        }
        Command::Verify { spec, timeout, json } => {
            let c = load(&spec, wd)?;
            c.verify_and_print(&ctx, Duration::from_secs(timeout), json)?;
            Ok(exit::OK)
        }
        Command::Reset { spec, method, no_verify } => {
            let c = load(&spec, wd)?;
            c.reset(&ctx, method, !no_verify)?;
            Ok(exit::OK)
        }
        Command::Promote { spec, args } => drill(&ctx, &spec, wd, Drill::Promote(args)),
        Command::Switchover { spec, args } => drill(&ctx, &spec, wd, Drill::Switchover(args)),
        Command::Rejoin { spec, args } => drill(&ctx, &spec, wd, Drill::Rejoin(args)),
        Command::Fault { spec, args } => drill(&ctx, &spec, wd, Drill::Fault(args)),
        Command::Backup { spec, args } => drill(&ctx, &spec, wd, Drill::Backup(args)),
        Command::Restore { spec, args } => drill(&ctx, &spec, wd, Drill::Restore(args)),
        Command::Writes { spec, args } => drill(&ctx, &spec, wd, Drill::Writes(args)),
        Command::Upgrade { spec, args } => drill(&ctx, &spec, wd, Drill::Upgrade(args)),
        Command::WritesWorker { dir } => crate::drills::writes_worker(&dir),
        Command::Backups { spec, json } => list_backups(&load(&spec, wd)?, json),
        Command::Destroy { spec } => {
            let c = load(&spec, wd)?;
            c.destroy(&ctx)?;
            Ok(exit::OK)
        }
        Command::Ssh { spec, node, command } => {
            let c = load(&spec, wd)?;
            c.node_named(&node)?;
            c.vagrant(&ctx).ssh(&node, command.as_deref())
        }
        Command::Sql { spec, sql, node } => run_sql(&load(&spec, wd)?, &sql, node.as_deref()),
        Command::Matrix(args) => crate::matrix::run(&ctx, &args),
        Command::Box(BoxCommand::Build(args)) => {
            let name = boxbuild::build(ctx.runner, &args, cli.templates.as_deref(), cli.quiet)?;
            println!("{name}");
            Ok(exit::OK)
        }
        Command::Templates(TemplatesCommand::Export { dir }) => {
            for p in crate::templates::export(&dir)? {
                println!("{}", p.display());
            }
            Ok(exit::OK)
        }
        Command::Schema => {
            println!("{}", crate::spec::json_schema());
            Ok(exit::OK)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "clusterlab", &mut std::io::stdout());
            Ok(exit::OK)
        }
    }
}

/// `clusterlab check`: every spec planned; its plan, or its errors. Exit 2 if any failed.
fn check(specs: &[std::path::PathBuf], json: bool, wd: Option<&Path>) -> i32 {
    let mut failed = 0;
    for s in specs {
        match load(s, wd) {
            Ok(c) if json => println!("{}", serde_json::to_string_pretty(&plan_json(&c)).expect("plan serializes")),
            Ok(c) => println!("{}: ok: {}", s.display(), summary(&c)),
            Err(e) => {
                failed += 1;
                eprintln!("{:?}", miette::Report::new(e));
            }
        }
    }
    if failed > 0 {
        exit::BAD_INPUT
    } else {
        exit::OK
    }
}

/// The plan, and the majors the cluster's box carries once `up` has read
/// them (state.json), for a CI job that picks its upgrade targets.
fn plan_json(c: &Cluster) -> serde_json::Value {
    let mut v = serde_json::to_value(&c.plan).expect("plan serializes");
    if let Some(st) = crate::state::State::load(&c.workdir).filter(|s| !s.box_majors.is_empty()) {
        v["box_majors"] = serde_json::json!(st.box_majors);
    }
    v
}

/// `clusterlab render`: the files written, and what was chosen for this host.
fn render(c: &Cluster, templates: Option<&Path>, real: bool) -> Result<i32> {
    let (files, accel) = c.render(templates, real)?;
    if let Some(a) = accel {
        eprintln!("{a}");
    }
    for p in files {
        println!("{}", p.display());
    }
    Ok(exit::OK)
}

fn list_backups(c: &Cluster, json: bool) -> Result<i32> {
    let list = crate::drills::backups(c)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list).expect("manifests serialize"));
    } else if list.is_empty() {
        println!("no backups yet: `clusterlab backup SPEC` takes one");
    } else {
        for m in list {
            println!("{}", m.summary());
        }
    }
    Ok(exit::OK)
}

/// `clusterlab sql`: SQL on a node (the live leader unless named), rows tab-separated.
fn run_sql(c: &Cluster, sql: &str, node: Option<&str>) -> Result<i32> {
    // The leader is the live one: after a promote, not the spec's.
    let live = c.current_plan()?;
    let n = match node {
        Some(name) => c.node_named(name)?,
        None => live.leader(),
    };
    let mut client = crate::verify::connect(n, &c.workdir.lab_password()?, &c.plan, Duration::from_secs(5))?;
    let messages = client.simple_query(sql).map_err(|e| Error::sql(&n.name, crate::verify::pg_message(&e)))?;
    for m in messages {
        if let postgres::SimpleQueryMessage::Row(row) = m {
            let cols: Vec<&str> = (0..row.len()).map(|i| row.get(i).unwrap_or("")).collect();
            println!("{}", cols.join("\t"));
        }
    }
    Ok(exit::OK)
}

pub fn summary(c: &Cluster) -> String {
    let p = &c.plan;
    let nodes: Vec<String> = p
        .nodes
        .iter()
        .map(|n| match &n.upstream {
            Some(u) => format!("{}<-{}", n.name, u),
            None => format!("{} (leader)", n.name),
        })
        .collect();
    format!(
        "{} PostgreSQL {} on {} ({}), {}{}: {}",
        p.name,
        p.version,
        p.provider,
        p.box_name,
        if p.sync { "sync" } else { "async" },
        if p.slots { ", slots" } else { "" },
        nodes.join(", ")
    )
}

fn new_spec(args: NewArgs, templates: Option<&Path>) -> Result<i32> {
    if !crate::plan::is_hostname(&args.name) {
        return Err(Error::usage(format!("`{}` is not a valid cluster name", args.name), "use lowercase letters, digits and `-`, starting with a letter"));
    }
    let out = args.output.clone().unwrap_or_else(|| {
        if Path::new("clusters").is_dir() {
            Path::new("clusters").join(format!("{}.yaml", args.name))
        } else {
            PathBuf::from(format!("{}.yaml", args.name))
        }
    });
    if out.exists() && !args.force {
        return Err(Error::usage(format!("{} already exists", out.display()), "pass --force to overwrite it, or -o another path"));
    }
    let major = crate::facts::Major::parse(&args.version)
        .ok_or_else(|| Error::usage(format!("`{}` is not a PostgreSQL major", args.version), format!("use one of: {}", crate::facts::MAJORS.join(", "))))?;
    let facts = crate::facts::Facts::for_major(major);
    let box_name = args.box_name.clone().unwrap_or_else(|| facts.default_box());
    let mut ctx = tera::Context::new();
    ctx.insert("file", &out.display().to_string());
    ctx.insert("name", &args.name);
    ctx.insert("version", &facts.major);
    ctx.insert("box", &box_name);
    ctx.insert("provider", &args.provider);
    ctx.insert("network", &args.network);
    ctx.insert("followers", &(0..args.followers).map(|i| format!("pg{}", i + 2)).collect::<Vec<_>>());
    ctx.insert("slots", &!args.no_slots);
    ctx.insert("mode", if args.sync { "sync" } else { "async" });
    let text = tera::Tera::one_off(&crate::templates::template_text("spec.yaml.tera", templates)?, &ctx, false)
        .map_err(|e| Error::Template { name: "spec.yaml.tera".into(), message: e.to_string() })?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::write(&out, &text).map_err(|e| Error::io(&out, e))?;
    // What we write must pass our own check.
    let c = Cluster::load(&out, None)?;
    println!("wrote {}: {}", out.display(), summary(&c));
    Ok(exit::OK)
}

/// A drill from the command line: the same grammar and code as a matrix step's.
fn drill(ctx: &Ctx, spec: &Path, workdir: Option<&Path>, d: Drill) -> Result<i32> {
    let out = d.run(ctx, &load(spec, workdir)?)?;
    if matches!(&d, Drill::Backup(_)) || matches!(&d, Drill::Writes(w) if w.json && w.action == crate::drills::WritesAction::Check) {
        println!("{out}");
    }
    Ok(exit::OK)
}
