#!/usr/bin/env bash
# The single test command: sets up everything the tests need, then runs them all
# (unit, scenario, negative and doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."

# vendor/openmls must be exactly openmls 0.9.2 plus vendor/patches/ (no unrecorded edit to it).
echo "== scripts/openmls-patches.sh check (vendor/openmls = openmls 0.9.2 + vendor/patches/)"
bash scripts/openmls-patches.sh check
bash scripts/system-deps.sh

# Services the tests need are installed here when absent. The PDS tests (feature `pds`)
# start the reference PDS (@atproto/pds with an in-memory PLC directory) once per test
# binary on free 127.0.0.1 ports, and it stops when the binary exits (scripts/pds/).
# They fail, never skip, when it is missing.
bash scripts/pds/install.sh
bash scripts/lexicon/install.sh

# PostgreSQL for the atmls-ds tests (installed by apt when missing), stopped on exit.
echo "== starting PostgreSQL (scripts/postgres.sh)"
ATMLS_TEST_DATABASE_URL="$(scripts/postgres.sh start)"
export ATMLS_TEST_DATABASE_URL
trap 'scripts/postgres.sh stop' EXIT

echo "== cargo test --workspace --all-features (unit, scenario, negative and doc tests)"
# The library, the delivery service (crates/atmls-ds), its wire contract and the CLI.
cargo test --workspace --exclude atmls-openmls --all-features --no-fail-fast
# The RFC 9420 test vectors (vendor/rfc9420-vectors) through openmls's own known-answer tests,
# built from the patched crate; the passive-client ones also run through atmls's storage in
# tests/rfc9420_passive_client.rs, above.
echo "== scripts/rfc9420-vectors.sh (RFC 9420 test vectors, openmls KATs on the patched openmls)"
bash scripts/rfc9420-vectors.sh
# Under CI the debug build (some 9 GB of test binaries) is done with before the release build
# starts: a CI run once died in the release link with its disk full (ld: Bus error).
if [ "${CI:-}" = 1 ]; then
    echo "== CI: removing the finished debug and KAT builds to make room for the release build"
    rm -rf target/debug target/rfc9420-vectors/openmls/target target/nightly-docs
fi
# A 10,000-member group (spec/large-groups.md), in release mode: in a debug build it would take
# most of an hour. No timing assertions; the benchmark measures (benches/large_group.rs).
echo "== cargo test --release --all-features --test large_group_10k"
cargo test --release --all-features --test large_group_10k
echo "== all tests passed"
