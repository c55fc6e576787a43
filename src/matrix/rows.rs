//! A `same_rows` step: a table's rows must be the same on every node of the
//! live topology, and the same as at the cell's previous `same_rows` step.
//! The proof a data-moving drill (an upgrade, a failover) wants: a count and
//! an md5 of the rows as text, in order, read on each node from the host.

use crate::cluster::Cluster;
use crate::runner::parallel;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Where a cell keeps each table's last checksum (working directory, gone with it).
const RECORD: &str = "same-rows.json";

/// `schema.table` or `table`, each part quoted as an identifier.
fn ident(table: &str) -> String {
    table.split('.').map(|p| format!("\"{}\"", p.replace('"', "\"\""))).collect::<Vec<_>>().join(".")
}

/// "COUNT MD5" of the table on every node of the live plan, leader first.
fn checksums(cluster: &Cluster, plan: &crate::plan::Plan, password: &str, table: &str) -> Result<Vec<String>, String> {
    let sql = format!("SELECT count(*) || ' ' || md5(coalesce(string_agg(r, E'\\n' ORDER BY r), '')) FROM (SELECT x::text AS r FROM {} x) s", ident(table));
    parallel(&plan.nodes, |n| {
        let mut c = crate::verify::connect(n, password, plan, Duration::from_secs(10))?;
        c.query_one(sql.as_str(), &[]).map(|row| row.get::<_, String>(0)).map_err(|e| crate::error::Error::Verify(format!("{}: {}", n.name, crate::verify::pg_message(&e))))
    })
    .map_err(|e| format!("reading {table}: {e} (is {} up? `clusterlab status SPEC`)", cluster.plan.name))
}

pub(super) fn same_rows(cluster: &Cluster, tables: &[String]) -> Result<String, String> {
    let plan = cluster.current_plan().map_err(|e| e.to_string())?;
    let password = cluster.workdir.lab_password().map_err(|e| e.to_string())?;
    let record = cluster.workdir.path(RECORD);
    let mut before: BTreeMap<String, String> = std::fs::read_to_string(&record).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let names: Vec<&str> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
    let mut lines = Vec::new();
    for table in tables {
        // Followers may still be replaying the last writes: they get 30 s to agree.
        let deadline = Instant::now() + Duration::from_secs(30);
        let sums = loop {
            // A follower that has not replayed the CREATE yet has no table: it too gets the time.
            let sums = match checksums(cluster, &plan, &password, table) {
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
                Ok(sums) => sums,
            };
            if sums.iter().all(|s| *s == sums[0]) {
                break sums;
            }
            if Instant::now() > deadline {
                let each: Vec<String> = names.iter().zip(&sums).map(|(n, s)| format!("{n} {s}")).collect();
                return Err(format!("table {table} differs between nodes (count md5): {}", each.join(", ")));
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let now = &sums[0];
        let was = before.insert(table.clone(), now.clone());
        if let Some(was) = was.filter(|w| w != now) {
            return Err(format!("table {table} changed since the previous same_rows step (count md5): {was} then, {now} now"));
        }
        let (count, md5) = now.split_once(' ').unwrap_or((now, ""));
        lines.push(format!("{table}: {count} rows, md5 {md5}, the same on {}", names.join(", ")));
    }
    let text = serde_json::to_string(&before).expect("a map of strings serializes");
    std::fs::write(&record, text).map_err(|e| format!("{}: {e}", record.display()))?;
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_names_are_quoted_part_by_part() {
        assert_eq!(super::ident("accounts"), "\"accounts\"");
        assert_eq!(super::ident("app.Accounts"), "\"app\".\"Accounts\"");
        assert_eq!(super::ident("a\"b"), "\"a\"\"b\"");
    }
}
