//! Several matrix files, one cluster: cells of different files that need
//! the same cluster (the same spec but for name and network) run one after
//! another on the first one's, reset to its known state between them. A
//! cluster costs 20-40 s to bring up on docker and minutes on VMs; a reset
//! costs about a second.

use std::collections::HashMap;

/// The cells (indexes into `keys`, the cells' share keys) that share a
/// cluster, each group in the order given; the groups with the most cells
/// first, so that the longest runs start first when several run at once.
pub(super) fn groups(keys: &[&str]) -> Vec<Vec<usize>> {
    let mut by_key: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match by_key.get(key) {
            Some(&g) => groups[g].push(i),
            None => {
                by_key.insert(key, groups.len());
                groups.push(vec![i]);
            }
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_with_one_key_share_and_the_largest_group_comes_first() {
        assert_eq!(groups(&["a", "b", "c"]), [vec![0], vec![1], vec![2]]);
        assert_eq!(groups(&["a", "b", "b", "a", "b"]), [vec![1, 2, 4], vec![0, 3]]);
        assert!(groups(&[]).is_empty());
    }
}
