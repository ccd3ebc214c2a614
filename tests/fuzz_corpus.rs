//! Replays the fuzz corpora under `cargo test` (feature `fuzzing`): every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`, and every seed the real encoders
//! make, through the function the libFuzzer target calls (`atmls::fuzzing`, and
//! `atmls_ds::fuzzing` for the service's). Each must return
//! without panicking: a panic is a broken invariant (a crash, a non-canonical decoding, a
//! round trip that differs). The long runs are `scripts/fuzz.sh <target> <seconds>`.
//!
//! `ATMLS_FUZZ_WRITE_SEEDS=1` also writes the seeds to `fuzz/corpus/<target>/`, replacing what
//! was there.

use std::path::{Path, PathBuf};

use atmls::fuzzing::Target;

/// Every target: the library's and the service's.
fn targets() -> Vec<(&'static str, Target)> {
    let ds = atmls_ds::fuzzing::TARGETS.iter();
    atmls::fuzzing::TARGETS.iter().chain(ds).copied().collect()
}

fn target(name: &str) -> Option<Target> {
    targets()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t)
}

fn seeds() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let mut all = atmls::fuzzing::seeds();
    all.extend(atmls_ds::fuzzing::seeds());
    all
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// A file name from the content, as libFuzzer names corpus files (SHA-1 there; any stable
/// digest does here).
fn name_of(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(bytes)[..20])
}

#[test]
fn every_target_has_a_fuzz_binary_and_a_corpus() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for (name, _) in targets() {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
        let src = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&src).unwrap_or_default();
        assert!(
            text.contains(&format!("fuzzing::run(\"{name}\", data)")),
            "{} does not call target {name}",
            src.display()
        );
        assert!(
            !files(&fuzz_dir().join("corpus").join(name)).is_empty(),
            "fuzz/corpus/{name} is empty (ATMLS_FUZZ_WRITE_SEEDS=1 cargo test --features fuzzing --test fuzz_corpus)"
        );
    }
}

#[test]
fn every_fuzz_binary_is_a_target() {
    for file in files(&fuzz_dir().join("fuzz_targets")) {
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        assert!(
            target(name).is_some(),
            "fuzz target {name} is not in atmls::fuzzing::TARGETS nor atmls_ds::fuzzing::TARGETS"
        );
    }
}

#[test]
fn seeds_replay_and_cover_every_target() {
    let write = std::env::var_os("ATMLS_FUZZ_WRITE_SEEDS").is_some();
    let all = seeds();
    for (name, _) in targets() {
        assert!(
            all.iter().any(|(n, s)| *n == name && !s.is_empty()),
            "no seed for {name}"
        );
    }
    for (name, inputs) in all {
        let run = target(name).unwrap_or_else(|| panic!("seed for unknown target {name}"));
        let dir = fuzz_dir().join("corpus").join(name);
        if write {
            // The corpus is the seeds alone (some are random: keys, nonces): replaced, not
            // grown. What a run finds worth keeping goes to fuzz/regressions/.
            for old in files(&dir) {
                std::fs::remove_file(old).unwrap();
            }
        }
        for input in inputs {
            run(&input);
            if write {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join(name_of(&input)), &input).unwrap();
            }
        }
    }
}

#[test]
fn corpus_and_regressions_replay() {
    let mut replayed = 0;
    for (name, run) in targets() {
        for kind in ["corpus", "regressions"] {
            for file in files(&fuzz_dir().join(kind).join(name)) {
                let input = std::fs::read(&file).unwrap();
                // The file's name is in the panic message's backtrace context.
                eprintln!("{}", file.display());
                run(&input);
                replayed += 1;
            }
        }
    }
    assert!(
        replayed >= targets().len(),
        "only {replayed} files replayed"
    );
}
