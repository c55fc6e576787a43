//! How many cells run at once when `--jobs` does not say.

use crate::cluster::Cluster;

/// MiB the kernel says can be used without swapping.
fn mem_available_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb = text.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?;
    Some(kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok()? / 1024)
}

/// As many cells as fit in available memory: the largest cell's nodes, plus
/// 256 MiB for its vagrant, at least 1 and no more than there are cells.
pub(super) fn default_jobs(clusters: &[&Cluster]) -> usize {
    let cell_mib = clusters.iter().map(|c| c.plan.nodes.len() as u64 * u64::from(c.plan.memory) + 256);
    fit_jobs(mem_available_mib(), cell_mib.max().unwrap_or(1024), clusters.len())
}

fn fit_jobs(available_mib: Option<u64>, cell_mib: u64, cells: usize) -> usize {
    let fit = available_mib.map_or(1, |m| (m / cell_mib.max(1)) as usize);
    fit.clamp(1, cells.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_jobs_fit_memory_and_cells() {
        // Three nodes of 768 MiB plus 256 for vagrant: 2560 MiB a cell.
        assert_eq!(fit_jobs(Some(8000), 2560, 5), 3);
        assert_eq!(fit_jobs(Some(8000), 2560, 2), 2);
        assert_eq!(fit_jobs(Some(1000), 2560, 5), 1);
        assert_eq!(fit_jobs(None, 2560, 5), 1);
        assert!(mem_available_mib().is_some_and(|m| m > 0));
    }
}
