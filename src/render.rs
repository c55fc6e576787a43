//! Plan -> files: renders the Tera templates (embedded, or the user's
//! overrides) into a cluster's working directory.

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::quote;
use crate::templates::{template_text, TEMPLATES};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tera::{Context, Tera, Value};

/// The name Vagrantfile.tera includes the provider's machine part by.
const PROVIDER_PART: &str = "provider.Vagrantfile.tera";

/// One rendered file, relative to the working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: PathBuf,
    pub content: String,
    pub executable: bool,
}

pub struct Renderer {
    tera: Tera,
    sources: HashMap<String, String>,
}

impl Renderer {
    pub fn new(overrides: Option<&Path>) -> Result<Renderer> {
        let mut sources = HashMap::new();
        for (name, _) in TEMPLATES.iter().filter(|(n, _)| n.ends_with(".tera")) {
            sources.insert(name.to_string(), template_text(name, overrides)?);
        }
        let mut tera = Tera::default();
        tera.autoescape_on(vec![]);
        register_filters(&mut tera);
        tera.add_raw_templates(sources.iter().map(|(n, s)| (n.as_str(), s.as_str())))
            .map_err(|e| template_error(&e, &sources))?;
        Ok(Renderer { tera, sources })
    }

    fn render(&self, name: &str, ctx: &Context) -> Result<String> {
        self.tera.render(name, ctx).map_err(|e| template_error(&e, &self.sources))
    }

    /// The common Vagrantfile.tera, each machine's provider part from the
    /// provider's own template (included under one fixed name).
    fn render_vagrantfile(&self, plan: &Plan, ctx: &Context) -> Result<String> {
        let part = plan.provider.vagrantfile_template();
        let mut tera = self.tera.clone();
        tera.add_raw_template(PROVIDER_PART, &self.sources[part]).map_err(|e| template_error(&e, &self.sources))?;
        tera.render("Vagrantfile.tera", ctx).map_err(|e| template_error(&e, &self.sources))
    }

    /// Every file of the working directory that comes from templates.
    pub fn render_plan(&self, plan: &Plan) -> Result<Vec<File>> {
        let ctx = plan_context(plan);
        let mut files = vec![File {
            path: "Vagrantfile".into(),
            content: self.render_vagrantfile(plan, &ctx)?,
            executable: false,
        }];
        // The node control script is the same on every node; it is embedded in
        // each provisioning script and also written out, for reading and linting.
        let ctl = self.render("scripts/pgctl.sh.tera", &ctx)?;
        files.push(File { path: "scripts/clusterlab-pg".into(), content: ctl.clone(), executable: true });
        files.extend(self.node_scripts(plan, &ctx, &ctl, "scripts")?);
        Ok(files)
    }

    /// The scripts that take every node of `plan` (the cluster on its new
    /// major) from the major it runs now: its provisioning, with the upgrade's
    /// steps in between, under `upgrade/`.
    /// Besides, `upgrade/new-cluster.sh`: the leader's new cluster, made
    /// first, while the old one still serves.
    pub fn render_upgrade(&self, plan: &Plan, upgrade: &Upgrade) -> Result<Vec<File>> {
        let mut ctx = plan_context(plan);
        let ctl = self.render("scripts/pgctl.sh.tera", &ctx)?;
        ctx.insert("upgrade", upgrade);
        let mut files = self.node_scripts(plan, &ctx, &ctl, "upgrade")?;
        ctx.insert("node", plan.leader());
        ctx.insert("ctl", &ctl);
        files.push(File { path: PathBuf::from("upgrade/new-cluster.sh"), content: self.render("scripts/new-cluster.sh.tera", &ctx)?, executable: true });
        Ok(files)
    }

    fn node_scripts(&self, plan: &Plan, ctx: &Context, ctl: &str, dir: &str) -> Result<Vec<File>> {
        let mut files = Vec::new();
        for node in &plan.nodes {
            let mut ctx = ctx.clone();
            ctx.insert("node", node);
            ctx.insert("ctl", ctl);
            let template = format!("scripts/{}.sh.tera", node.role.as_str());
            files.push(File {
                path: PathBuf::from(dir).join(format!("{}.sh", node.name)),
                content: self.render(&template, &ctx)?,
                executable: true,
            });
        }
        Ok(files)
    }
}

/// What an upgrade's scripts are rendered with besides the new major's plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Upgrade {
    /// The facts of the major the nodes run now.
    pub from: crate::facts::Facts,
    pub method: crate::plan::UpgradeMethod,
    /// The old cluster's template1, which the new one must match.
    pub template1: Template1,
    /// The addresses of the standbys the leader gives the new cluster by
    /// rsync after pg_upgrade --link (the others are cloned again).
    pub standbys: Vec<String>,
}

/// What pg_upgrade needs the old and the new cluster to share, as the old
/// leader's template1 says, read before anything stops.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Template1 {
    pub encoding: String,
    pub collate: String,
    pub ctype: String,
    pub checksums: bool,
}

fn plan_context(plan: &Plan) -> Context {
    let mut ctx = Context::new();
    ctx.insert("plan", plan);
    ctx.insert("clusterlab_version", env!("CARGO_PKG_VERSION"));
    // Provisioning, not an upgrade (render_upgrade sets it).
    ctx.insert("upgrade", &false);
    ctx
}

fn register_filters(tera: &mut Tera) {
    fn quoting(f: fn(&str) -> String) -> impl tera::Filter {
        move |v: &Value, _: &HashMap<String, Value>| -> tera::Result<Value> {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Null => return Err("cannot quote a missing value".into()),
                other => other.to_string(),
            };
            Ok(Value::String(f(&s)))
        }
    }
    tera.register_filter("sh", quoting(quote::sh));
    tera.register_filter("rb", quoting(quote::rb));
    tera.register_filter("pgconf", quoting(quote::pgconf));
    tera.register_filter("sql", quoting(quote::sql));
}

/// Tera's errors name the template but not always the line; find the line of
/// the first use of an undefined variable ourselves.
fn template_error(e: &tera::Error, sources: &HashMap<String, String>) -> Error {
    use std::error::Error as _;
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    let message = parts.join(": ");
    let name = sources
        .keys()
        .filter(|n| message.contains(&format!("'{n}'")))
        .max_by_key(|n| message.rfind(&format!("'{n}'")))
        .cloned()
        .unwrap_or_else(|| "?".into());
    let line = undefined_variable(&message).and_then(|var| {
        sources.get(&name)?.lines().position(|l| mentions(l, &var)).map(|i| i + 1)
    });
    let name = match line {
        Some(l) => format!("{name}:{l}"),
        None => name,
    };
    Error::Template { name, message }
}

/// Whether `line` uses `var` as a whole name (`plan.nam` is not in `plan.name`).
fn mentions(line: &str, var: &str) -> bool {
    line.match_indices(var).any(|(i, _)| {
        let after = line[i + var.len()..].chars().next();
        let before = line[..i].chars().next_back();
        !after.is_some_and(|c| c.is_alphanumeric() || c == '_') && !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
    })
}

fn undefined_variable(message: &str) -> Option<String> {
    let start = message.find("Variable `")? + "Variable `".len();
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}
