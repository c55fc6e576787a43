//! What would block `clusterlab upgrade`, found on the running cluster and
//! changing nothing: the new major missing from a node's box, too little
//! disk for a copy, and what in the old cluster the new major cannot take
//! (https://www.postgresql.org/docs/current/pgupgrade.html): tables `WITH
//! OIDS` and the types abstime, reltime and tinterval (gone in 12, see
//! https://www.postgresql.org/docs/release/12.0/); hash indexes made before
//! 10, whose format changed (https://www.postgresql.org/docs/release/10.0/),
//! which the upgrade rebuilds.

use super::context::DrillCtx;
use crate::error::Result;
use crate::facts::Facts;
use crate::plan::{Role, UpgradeMethod as Method};
use crate::runner::parallel;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub node: String,
    /// What was found.
    pub what: String,
    /// What to do about it.
    pub fix: String,
    /// Whether the upgrade is refused until it is fixed.
    pub blocks: bool,
}

/// The findings, one a line: BLOCKS or NOTE, the node, what, and what to do.
pub fn table(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        out += &format!("{:<6}  {:<6}  {}\n        fix: {}\n", if f.blocks { "BLOCKS" } else { "NOTE" }, f.node, f.what, f.fix);
    }
    out
}

/// The programs missing in DIR on a node (each one checked with `test -x`).
fn missing(d: &DrillCtx, node: &str, dir: &str, programs: &[&str]) -> Result<Vec<String>> {
    let mut args = vec!["sh", "-c", r#"d=$1; shift; for p; do [ -x "$d/$p" ] || echo "$p"; done"#, "sh", dir];
    args.extend_from_slice(programs);
    let out = d.p.exec(d.machine(node), &args)?;
    Ok(out.stdout.split_whitespace().map(str::to_string).collect())
}

/// Every node's box carries the new major (the leader also the programs the
/// method runs); for pg_upgrade, the leader's old major has the programs
/// pg_upgrade runs of it (https://www.postgresql.org/docs/current/pgupgrade.html:
/// the old cluster's bin directory), which server-only builds lack.
pub fn carried(d: &DrillCtx, from: &Facts, new: &Facts, method: Method) -> Result<Vec<Finding>> {
    let nodes: Vec<(&str, Role)> = d.plan.nodes.iter().map(|n| (n.name.as_str(), n.role)).collect();
    let gaps = parallel(&nodes, |(name, role)| {
        let wanted: &[&str] = if *role == Role::Leader { method.programs() } else { &["postgres", "initdb"] };
        missing(d, name, &new.bin_dir, wanted)
    })?;
    let mut out: Vec<Finding> = nodes
        .iter()
        .zip(gaps)
        .filter(|(_, m)| !m.is_empty())
        .map(|((name, _), m)| Finding {
            node: name.to_string(),
            what: format!("PostgreSQL {} is not in this node's box ({} missing in {})", new.major, m.join(", "), new.bin_dir),
            fix: format!(
                "build a box that carries it, e.g. `clusterlab box build --provider {} --postgres {} ... --with {}` (`--with {}=FILE` for a server tarball), name it in the spec's `box:`, `clusterlab destroy` and `up` again",
                d.plan.provider, d.c.plan.version, new.major, new.major
            ),
            blocks: true,
        })
        .collect();
    if matches!(method, Method::Link | Method::Copy) {
        let leader = &d.plan.leader().name;
        let gaps = missing(d, leader, &from.bin_dir, &["postgres", "pg_ctl", "pg_controldata"])?;
        if !gaps.is_empty() {
            out.push(Finding {
                node: leader.clone(),
                what: format!("pg_upgrade runs the old major's {}, which this build of PostgreSQL {} lacks (a server-only build)", gaps.join(", "), from.major),
                fix: format!("use --method dump or logical, or a box whose {} is a full build (Debian's package, or --source)", from.major),
                blocks: true,
            });
        }
    }
    Ok(out)
}

/// One question to every database of the old leader: the SQL lists what it
/// found (one name a row), and each row becomes a finding.
struct Probe {
    sql: String,
    blocks: bool,
    /// What was found.
    what: Describe,
    /// What to do about it.
    fix: Describe,
}

/// A sentence about one row a probe found, from (database, row).
type Describe = Box<dyn Fn(&str, &str) -> String>;

/// Outside the system schemas.
const USER: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema')";

/// The probes for an upgrade from `from` to `new` by `method`.
fn probes(from: &Facts, new: &Facts, method: Method) -> Vec<Probe> {
    let mut p = Vec::new();
    let probe = |sql: String, blocks, what: Describe, fix: Describe| Probe { sql, blocks, what, fix };
    if new.without_oids_and_abstime && !from.without_oids_and_abstime {
        p.push(probe(
            format!("SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relhasoids AND c.relkind = 'r' AND {USER}"),
            true,
            Box::new(|db, t| format!("database {db}: table {t} is WITH OIDS (no table has OIDs from 12)")),
            Box::new(|db, t| format!("ALTER TABLE {t} SET WITHOUT OIDS; (in database {db})")),
        ));
        p.push(probe(
            format!("SELECT a.attrelid::regclass || '.' || quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.atttypid IN ('abstime'::regtype, 'reltime'::regtype, 'tinterval'::regtype) AND NOT a.attisdropped AND c.relkind = 'r' AND {USER}"),
            true,
            Box::new(|db, col| format!("database {db}: column {col} has a type removed in 12")),
            Box::new(|_, _| "ALTER TABLE ... ALTER COLUMN ... TYPE timestamptz (abstime) or interval (reltime), or drop the column".into()),
        ));
    }
    // PostgreSQL defines two per-column options
    // (https://www.postgresql.org/docs/current/sql-altertable.html, SET ( attribute_option ... )):
    // pg_upgrade's schema restore fails on any other (a server build that stores its own).
    let (old, target) = (from.major.clone(), new.major.clone());
    p.push(probe(
        format!("SELECT DISTINCT a.attrelid::regclass || '.' || quote_ident(a.attname) || ' ' || o FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace, unnest(a.attoptions) o WHERE split_part(o, '=', 1) NOT IN ('n_distinct', 'n_distinct_inherited') AND {USER} ORDER BY 1 LIMIT 5"),
        true,
        Box::new(move |db, col| format!("database {db}: column {col}: an attribute option PostgreSQL does not define (only n_distinct and n_distinct_inherited), which PostgreSQL {target} will refuse")),
        Box::new(move |_, _| format!("it comes from the PostgreSQL {old} server's build, which sets it on every column: upgrade from a cluster made by another build of {old} (or another major)")),
    ));
    if method == Method::Logical {
        // https://www.postgresql.org/docs/current/logical-replication-publication.html
        p.push(probe(
            format!("SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AND {USER}"),
            false,
            Box::new(|db, t| format!("database {db}: table {t} has no primary key or replica identity")),
            Box::new(|_, t| format!("nothing for inserts; an UPDATE or DELETE on it fails on the old leader while the upgrade replicates (ALTER TABLE {t} ADD PRIMARY KEY (...) or REPLICA IDENTITY FULL)")),
        ));
    }
    if new.hash_indexes_logged && !from.hash_indexes_logged {
        p.push(probe(
            format!("SELECT c.oid::regclass FROM pg_class c JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'i' AND a.amname = 'hash' AND {USER}"),
            false,
            Box::new(|db, i| format!("database {db}: hash index {i} was made before 10 (its format changed)")),
            Box::new(|_, i| format!("nothing: the upgrade runs REINDEX INDEX {i} once the new leader serves")),
        ));
    }
    p
}

/// What the old cluster holds that the new major refuses or changes, and the leader's disk.
pub fn findings(d: &DrillCtx, from: &Facts, new: &Facts, method: Method) -> Result<Vec<Finding>> {
    let leader = d.plan.leader().name.clone();
    let psql = |db: &str, sql: &str| -> Result<Vec<String>> {
        let out = d.p.exec(d.machine(&leader), &["clusterlab-pg", "psql", "-d", db, "-c", sql])?;
        Ok(out.stdout.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect())
    };
    let probes = probes(from, new, method);
    let mut out = Vec::new();
    for db in psql("postgres", "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")? {
        for probe in &probes {
            for row in psql(&db, &probe.sql)? {
                out.push(Finding { node: leader.clone(), what: (probe.what)(&db, &row), fix: (probe.fix)(&db, &row), blocks: probe.blocks });
            }
        }
    }
    if method != Method::Link {
        // A copy needs the data directory's size again on the same filesystem.
        let script = r#"used=$(du -sk "$1" | cut -f1); free=$(df -Pk "$1" | awk 'NR == 2 { print $4 }'); echo "$used $free""#;
        let df = d.p.exec(d.machine(&leader), &["sh", "-c", script, "sh", &from.data_dir])?;
        let mut kb = df.stdout.split_whitespace().filter_map(|w| w.parse::<u64>().ok());
        if let (Some(used), Some(free)) = (kb.next(), kb.next()) {
            if used > free {
                out_of_space(&mut out, &leader, used, free, method);
            }
        }
    }
    Ok(out)
}

fn out_of_space(out: &mut Vec<Finding>, leader: &str, used: u64, free: u64, method: Method) {
    out.push(Finding {
        node: leader.to_string(),
        what: format!("the data directory holds {} MB, the disk has {} MB free: --method {} needs room for a second copy", used / 1024, free / 1024, method.as_str()),
        fix: "use --method link, or give the machine more disk".into(),
        blocks: true,
    });
}
