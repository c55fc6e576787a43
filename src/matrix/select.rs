//! `--cell` and `--filter`: which of the matrix's cells run.

use super::args::MatrixArgs;
use super::cell::Cell;
use super::load::Matrix;
use crate::cluster::Cluster;
use crate::error::{Error, Result};

/// The cells named by --cell, or matching any --filter; all without either.
pub(super) fn select<'a>(matrix: &Matrix, all: &[(&'a Cell, &'a Cluster)], args: &MatrixArgs) -> Result<Vec<(&'a Cell, &'a Cluster)>> {
    let names = || all.iter().map(|(c, _)| c.name.as_str()).collect::<Vec<_>>().join(", ");
    if let Some(name) = &args.cell {
        return match all.iter().find(|(c, _)| &c.name == name) {
            Some(pair) => Ok(vec![*pair]),
            None => Err(Error::usage(format!("{} has no cell `{name}`", matrix.path.display()), format!("cells: {}", names()))),
        };
    }
    if args.filter.is_empty() {
        return Ok(all.to_vec());
    }
    let picked: Vec<_> = all.iter().filter(|(c, _)| args.filter.iter().any(|p| name_matches(&c.name, p))).copied().collect();
    if picked.is_empty() {
        return Err(Error::usage(format!("no cell of {} matches {}", matrix.path.display(), args.filter.join(", ")), format!("cells: {}", names())));
    }
    Ok(picked)
}

/// `*` matches any run of characters; a pattern without `*` matches as a substring.
fn name_matches(name: &str, pattern: &str) -> bool {
    if !pattern.contains('*') {
        return name.contains(pattern);
    }
    let (p, s) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut si) = (0, 0);
    // Where the last `*` was, and how much of the name it has taken so far.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_substrings_or_globs() {
        assert!(name_matches("pg15-f2-slots", "f2"));
        assert!(!name_matches("pg15-f2-slots", "f1"));
        assert!(name_matches("pg15-f2-slots", "pg1*-slots"));
        assert!(name_matches("pg15-f2-slots", "*slots"));
        assert!(!name_matches("pg15-f2-noslots-sync", "*slots"));
        assert!(name_matches("pg15-f2-noslots-sync", "pg*-*-*"));
        assert!(!name_matches("pg15-f2-slots", "pg13*"));
        assert!(name_matches("abab", "*ab"));
    }
}
