#!/usr/bin/env bash
# The single test command: sets up everything the tests need, then runs them all
# (unit, scenario, negative and doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."

# Services the tests need start here, on 127.0.0.1 (later issues: a local PDS for the
# PDS directory, PostgreSQL for the delivery service). Today everything runs in process.

# PostgreSQL for the atmls-ds tests (installed by apt when missing), stopped on exit.
echo "== starting PostgreSQL (scripts/postgres.sh)"
ATMLS_TEST_DATABASE_URL="$(scripts/postgres.sh start)"
export ATMLS_TEST_DATABASE_URL
trap 'scripts/postgres.sh stop' EXIT

echo "== cargo test --all-features (unit, scenario, negative and doc tests)"
cargo test --all-features
echo "== all tests passed"
