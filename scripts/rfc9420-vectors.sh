#!/usr/bin/env bash
# RFC 9420 test vectors (vendor/rfc9420-vectors, see its README) against atmls's patched openmls:
# openmls's own known-answer tests, built from the patched sources, and only those (not openmls's
# whole suite). The passive-client vectors also run through atmls's storage provider in
# tests/rfc9420_passive_client.rs (part of `cargo test`).
#
# The tests build from a copy of vendor/openmls under target/, so the vendored crate stays the
# published one plus vendor/patches/. The copy gets the vectors as its test_vectors/ (the
# KAT code reads them from there, some at compile time), the dev-dependency the published
# manifest dropped (upstream's openmls depends on itself with `test-utils` for its tests, whose
# code names the crate `openmls::`) and a `[workspace]` table of its own (it lies inside
# atmls's directory). `test-utils` is on only in this separate build, in its own target
# directory: it never reaches atmls's.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
crate=target/rfc9420-vectors/openmls
mkdir -p "$crate"

# Sources copied with their modification times (cp -a), so a rerun rebuilds only what changed;
# directories are replaced whole so that a file deleted from vendor/openmls is deleted here too.
for d in src benches examples tests; do
    rm -rf "${crate:?}/$d"
    cp -a "vendor/openmls/$d" "$crate/$d"
done
cp -a vendor/openmls/README.md "$crate/"
# The lock only when vendor/openmls's is newer: cargo adds the test-only packages to the copy's,
# which a rerun keeps (no index update).
cp -a -u vendor/openmls/Cargo.lock "$crate/"
ln -sfn "$root/vendor/rfc9420-vectors" "$crate/test_vectors"
manifest=$(mktemp)
{
    # Without the dev-dependencies only openmls's benchmarks and examples use (a quarter of a
    # cold build's CPU time, criterion above all): no test in the library names them.
    awk '/^\[/ { skip = ($0 ~ /^\[dev-dependencies\.(criterion|clap|indicatif|flate2)\]$/) }
         !skip' vendor/openmls/Cargo.toml
    printf '\n[dev-dependencies.openmls]\npackage = "atmls-openmls"\npath = "."\nfeatures = ["test-utils"]\n'
    # Its own workspace: the copy lies inside atmls's directory.
    printf '\n[workspace]\n'
} >"$manifest"
# Rewritten only when it changed, so cargo sees an unchanged manifest on a rerun.
if cmp -s "$manifest" "$crate/Cargo.toml"; then rm "$manifest"; else mv "$manifest" "$crate/Cargo.toml"; fi

# One test per vector file: (file, test path). Each reads every vector of its file and skips
# those of ciphersuites the provider (RustCrypto: suites 1, 2 and 3) does not support. Tests
# written with openmls's `openmls_test` attribute are named after the provider and ciphersuite
# too (`<path>_rustcrypto_<suite>`); the default test build has only the mandatory suite, and
# they do not use it beyond picking the provider, so each runs once.
kats=(
    "tree-math binary_tree::array_representation::kat_treemath::read_test_vectors_tm"
    "crypto-basics ciphersuite::tests_and_kats::kat_crypto_basics::read_test_vectors"
    "secret-tree tree::tests_and_kats::kats::secret_tree::read_test_vectors_st"
    "message-protection tree::tests_and_kats::kats::kat_message_protection::read_test_vectors_mp"
    "kat_encryption_openmls tree::tests_and_kats::kats::kat_encryption::read_test_vectors_encryption"
    "key-schedule schedule::tests_and_kats::kats::key_schedule::read_test_vectors_key_schedule"
    "psk_secret schedule::tests_and_kats::kats::psk_secret::read_test_vectors_ps"
    "tree-validation treesync::tests_and_kats::kats::kat_tree_validation::read_test_vectors_tree_validation"
    "tree-operations treesync::tests_and_kats::kats::kat_tree_operations::read_test_vectors_tree_operations"
    "treekem treesync::tests_and_kats::kats::kat_treekem::read_test_vectors_treekem"
    "transcript-hashes group::tests_and_kats::kats::transcript_hashes::read_test_vectors_transcript"
    "welcome group::mls_group::tests_and_kats::kats::welcome::test_read_vectors"
    "messages group::tests_and_kats::kats::messages::read_test_vectors_messages"
    "passive-client-* group::mls_group::tests_and_kats::kats::passive_client::test_read_vectors"
    "deserialization kat_vl::read_test_vectors_deserialize"
)
filters=()
for k in "${kats[@]}"; do filters+=("${k#* }"); done

# Dependencies optimised, as in atmls's dev profile: the crypto in a debug build made the
# passive-client and TreeKEM vectors several times slower. openmls itself stays a debug build
# (debug assertions on, as in openmls's own CI).
run=(cargo test --manifest-path "$crate/Cargo.toml" --lib --features test-utils
    --config 'profile.dev.package."*".opt-level=2')
"${run[@]}" --no-run
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"${run[@]}" -- "${filters[@]}" \
    2>&1 | tee "$out" | grep -E '^test |^test result'

# Each KAT must have run (a renamed test would otherwise match no filter and pass unseen).
for k in "${kats[@]}"; do
    test_path=${k#* }
    if ! grep -qE "^test ${test_path}(_rustcrypto_[A-Za-z0-9_]+)? \.\.\. ok$" "$out"; then
        echo "rfc9420-vectors: no passing test for ${k%% *} (${test_path})" >&2
        exit 1
    fi
done
