//! No import circles in `src/`: if a.rs uses b.rs, b.rs does not use a.rs,
//! directly or through others. Read from the source text: every `crate::`
//! and `super::` path, and a parent's paths into its child modules, outside
//! `#[cfg(test)]` code, name the file that holds what they name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `a/b.rs` and `a/b/mod.rs` are module `a::b`; `lib.rs` is the root.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The file that holds the longest module prefix of `path`.
fn file_of(src: &Path, path: &[String]) -> Option<PathBuf> {
    for n in (1..=path.len()).rev() {
        let base = src.join(path[..n].join("/"));
        for f in [base.with_extension("rs"), base.join("mod.rs")] {
            if f.is_file() {
                return Some(f);
            }
        }
    }
    None
}

/// The identifiers `a::b::c` that start at `text` (after the `crate::` or `super::`).
fn path_at(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let ident: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if ident.is_empty() {
            break;
        }
        rest = &rest[ident.len()..];
        out.push(ident);
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    out
}

/// The code without comments and without `#[cfg(test)]` items (tests sit at the end).
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap();
    text.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n")
}

fn edges(src: &Path) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut all = Vec::new();
    files(src, &mut all);
    let mut graph = BTreeMap::new();
    for file in &all {
        let module = module_of(src, file);
        if module.is_empty() {
            continue; // lib.rs and main.rs declare the modules; they use nothing back
        }
        let text = code(&std::fs::read_to_string(file).unwrap());
        let mut targets = BTreeSet::new();
        for (i, _) in text.match_indices("crate::") {
            targets.extend(file_of(src, &path_at(&text[i + 7..])));
        }
        for (i, _) in text.match_indices("super::") {
            if text[..i].ends_with("super::") {
                continue;
            }
            // A file's module is `module` (a mod.rs is its folder's): each `super` drops one name.
            let mut rest = &text[i..];
            let mut base = module.clone();
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
            base.extend(path_at(rest));
            targets.extend(file_of(src, &base));
        }
        // A file that declares child modules (a mod.rs, or plan.rs for plan/) uses them by bare paths.
        {
            let dir = file.parent().unwrap();
            for child in text.lines().filter_map(|l| l.trim().strip_prefix("mod ").or_else(|| l.trim().strip_prefix("pub mod "))).map(|l| l.trim_end_matches(';')) {
                let needle = format!("{child}::");
                let used = text.match_indices(&needle).any(|(i, _)| !text[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':'));
                if used {
                    targets.extend(file_of(src, &[module.clone(), vec![child.to_string()]].concat()).filter(|f| f.starts_with(dir) && f != file));
                }
            }
        }
        targets.remove(file);
        graph.insert(file.clone(), targets);
    }
    graph
}

/// One cycle through `start`, if there is one.
fn cycle_from(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>, start: &PathBuf) -> Option<Vec<PathBuf>> {
    fn walk(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>, start: &PathBuf, at: &PathBuf, path: &mut Vec<PathBuf>, seen: &mut BTreeSet<PathBuf>) -> bool {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.clone()];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_file_in_src_uses_a_file_that_uses_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = edges(&src);
    assert!(graph.len() > 20, "read the sources");
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|f| cycle_from(&graph, f))
        .map(|c| c.iter().map(|f| f.strip_prefix(&src).unwrap().display().to_string()).collect::<Vec<_>>().join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "import circles:\n{}", cycles.join("\n"));
}

#[test]
fn the_checker_sees_a_circle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("m")).unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::B;\n").unwrap();
    std::fs::write(src.join("b.rs"), "pub fn f() { crate::m::x::g() }\n#[cfg(test)]\nuse crate::a::A;\n").unwrap();
    std::fs::write(src.join("m/mod.rs"), "mod x;\npub use x::g;\n").unwrap();
    std::fs::write(src.join("m/x.rs"), "use super::super::a::A; // crate::b\n").unwrap();
    let graph = edges(src);
    assert!(cycle_from(&graph, &src.join("a.rs")).is_some(), "{graph:?}");
    std::fs::write(src.join("m/x.rs"), "// use super::super::a::A;\n").unwrap();
    assert!(cycle_from(&edges(src), &src.join("a.rs")).is_none());
}
