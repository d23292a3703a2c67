//! Runs every fuzz target's property over its committed seed corpus (`fuzz/corpus/<target>`),
//! so the targets keep compiling and no seed — including any crash `make fuzz` once found and
//! that was added as a seed — fails again.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod checks;

#[test]
fn every_seed_passes_its_target() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, check) in checks::TARGETS {
        let dir = root.join(name);
        let seeds: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(!seeds.is_empty(), "{name} has no seeds");
        for seed in seeds {
            let data = std::fs::read(&seed).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{} fails {name}", seed.display());
        }
    }
}
