#!/usr/bin/env bash
# Every public item of the library crates (atmls, atmls-ds-wire, atmls-ds) has a doc example
# (issue 23). rustdoc's lint for it is nightly-only: without a nightly toolchain this check is
# skipped, and says so. Its builds go to their own target directory (nightly artifacts do not
# mix with stable ones).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "doc-examples: no nightly toolchain here; skipped"
    exit 0
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/nightly-docs"
for crate in atmls atmls-ds-wire atmls-ds; do
    echo "-- $crate"
    cargo +nightly rustdoc -q -p "$crate" --lib --all-features -- \
        -Z unstable-options \
        -Zcrate-attr="feature(rustdoc_missing_doc_code_examples)" \
        -D rustdoc::missing-doc-code-examples
done
echo "doc-examples: every public item has an example"
