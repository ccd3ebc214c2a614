//! Fuzz targets (feature `fuzzing`, not a stable API): one function per parser of untrusted
//! input, each taking the fuzzer's bytes. The libFuzzer targets in `fuzz/` call them, and
//! `tests/fuzz_corpus.rs` replays every corpus and regression file through the same functions
//! under `cargo test`, so what a long run found stays fixed. The service's own target
//! (`ds_request`) is `atmls_ds::fuzzing`.
//!
//! Each function's contract is the target's invariant: it never panics on any input and
//! bounds its work (the parsers refuse oversized input before allocating); where a codec has
//! an encoder, what decodes re-encodes to the same bytes or the same value. A panic here is a
//! finding. Inputs that carry a mode byte send the rest to one of several parsers, or seal it
//! under a fixed key first so that the parser behind an AEAD sees the fuzzer's plaintext.

mod content;
mod ds;
mod fixtures;
mod group;
mod identity;
mod records;
mod sealed;
mod seeds;

pub use seeds::seeds;

/// A fuzz target: bytes in, panic only on a broken invariant.
pub type Target = fn(&[u8]);

/// Every target, by the name of its directory in `fuzz/corpus/` and of its binary in `fuzz/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("credential_identity", identity::credential_identity),
    ("leaf_proof", identity::leaf_proof),
    ("key_package", identity::key_package),
    ("record_declaration", records::declaration),
    ("record_device", records::device),
    ("record_key_package", records::key_package),
    ("ds_response", ds::response),
    ("wire_envelope", sealed::wire_envelope),
    ("outer_seal", sealed::outer_seal),
    ("ratchet_tree", sealed::ratchet_tree),
    ("commit_hint", sealed::commit_hint),
    ("group_context", group::group_context),
    ("content_encoded", content::encoded),
    ("content_text", content::text),
    ("content_markdown", content::markdown),
    ("content_reply", content::reply),
    ("content_reaction", content::reaction),
    ("content_read_receipt", content::read_receipt),
    ("content_typing", content::typing),
    ("content_attachment", content::attachment),
    ("content_edit", content::edit),
    ("content_delete", content::delete),
    ("content_group_updated", content::group_updated),
    ("invite_link", sealed::invite_link),
    ("pairing", identity::pairing),
    ("recovery", identity::recovery),
];

/// The target named `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Runs the target `name` on `data` (what each libFuzzer target does). An unknown name is a
/// bug of the fuzz crate, not an input: it panics.
pub fn run(name: &str, data: &[u8]) {
    match target(name) {
        Some(t) => t(data),
        None => panic!("no fuzz target {name}"),
    }
}

/// Splits off the mode byte of a multi-parser target.
fn mode(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(m, rest)| (*m, rest))
}
