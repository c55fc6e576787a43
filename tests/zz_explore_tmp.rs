use std::path::Path;
#[test]
fn dump() {
    let mut files: Vec<_> = std::fs::read_dir("tests/bad-specs").unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x=="yaml")).collect();
    files.sort();
    for p in files {
        let bytes = std::fs::read(&p).unwrap();
        let r = std::panic::catch_unwind(|| {
            let (spec, src) = clusterlab::spec::parse_bytes(&p, bytes)?;
            clusterlab::plan::build(&spec, &src).map(|_| ())
        });
        match r {
            Ok(Err(e)) => println!("{}\n  D: {}\n  H: {:?}\n  span: {:?}", p.display(), e, e.hint, e.span),
            Ok(Ok(())) => println!("{}\n  ACCEPTED", p.display()),
            Err(_) => println!("{}\n  PANIC", p.display()),
        }
    }
}
