#![no_main]
// The parser and its invariant are in atmls_ds::fuzzing (crates/atmls-ds/src/fuzzing.rs);
// tests/fuzz_corpus.rs replays this target's corpus and regressions through the same function.
libfuzzer_sys::fuzz_target!(|data: &[u8]| atmls_ds::fuzzing::run("ds_request", data));
