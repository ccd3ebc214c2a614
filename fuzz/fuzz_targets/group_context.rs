#![no_main]
// The parser and its invariant are in atmls::fuzzing (src/fuzzing/); tests/fuzz_corpus.rs
// replays this target's corpus and regressions through the same function.
libfuzzer_sys::fuzz_target!(|data: &[u8]| atmls::fuzzing::run("group_context", data));
