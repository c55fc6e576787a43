//! `clusterlab box build`: runs the one offline box recipe
//! (`templates/box/build.sh`, overridable) for a docker image or a libvirt box.

use crate::error::{Error, Result};
use crate::facts::Major;
use crate::render::template_text;
use crate::runner::{check, Cmd, Mode, Runner};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args)]
pub struct BoxArgs {
    /// Debian release to build from.
    #[arg(long, default_value = "bookworm", value_parser = ["bullseye", "bookworm", "trixie"])]
    pub release: String,
    /// PostgreSQL majors from that release to preinstall (bullseye 13, bookworm 15, trixie 17).
    #[arg(long = "postgres", value_delimiter = ',')]
    pub postgres: Vec<String>,
    /// What to build: a libvirt box or a docker image.
    #[arg(long, default_value = "libvirt", value_parser = ["libvirt", "docker"])]
    pub provider: String,
    /// Box or image name (default: clusterlab/<release>-pg<versions>).
    #[arg(long)]
    pub name: Option<String>,
    /// Cache for the downloaded root filesystem and built boxes.
    #[arg(long, env = "CLUSTERLAB_CACHE", default_value = "/var/lib/clusterlab/cache")]
    pub cache: PathBuf,
    /// A tar.gz of PostgreSQL server binaries to add (air-gapped labs, other majors).
    #[arg(long)]
    pub tarball: Option<PathBuf>,
    /// Where the tarball is unpacked inside the image.
    #[arg(long, default_value = "/usr/lib/postgresql")]
    pub tarball_dest: String,
}

/// The default box name for a release and set of majors, as specs name it.
pub fn default_name(release: &str, majors: &[String]) -> String {
    if majors.is_empty() {
        format!("clusterlab/{release}")
    } else {
        format!("clusterlab/{release}-pg{}", majors.join("-pg"))
    }
}

pub fn build(runner: &dyn Runner, args: &BoxArgs, templates: Option<&Path>, quiet: bool) -> Result<String> {
    for v in &args.postgres {
        if Major::parse(v).is_none() {
            return Err(Error::usage(format!("`{v}` is not a PostgreSQL major"), "use e.g. --postgres 15"));
        }
    }
    let name = args.name.clone().unwrap_or_else(|| default_name(&args.release, &args.postgres));
    std::fs::create_dir_all(&args.cache).map_err(|e| Error::io(&args.cache, e))?;
    let script = args.cache.join("build.sh");
    std::fs::write(&script, template_text("box/build.sh", templates)?).map_err(|e| Error::io(&script, e))?;
    let mut cmd = Cmd::new("bash", [script.display().to_string()]);
    cmd.env = vec![
        ("CL_RELEASE".into(), args.release.clone()),
        ("CL_PG_VERSIONS".into(), args.postgres.join(" ")),
        ("CL_PROVIDER".into(), args.provider.clone()),
        ("CL_NAME".into(), name.clone()),
        ("CL_CACHE".into(), args.cache.display().to_string()),
        ("CL_EXTRA_TARBALL".into(), args.tarball.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
        ("CL_EXTRA_TARBALL_DEST".into(), args.tarball_dest.clone()),
    ];
    let log = args.cache.join(format!("build-{}.log", name.replace('/', "_")));
    check(runner, &cmd, &Mode::Stream { log: Some(log.clone()), quiet }, &format!("the box build failed; full output in {}", log.display()))?;
    Ok(name)
}
