#!/usr/bin/env bash
# The test command: everything the tests need is set up here.
# (The real-PDS and PostgreSQL issues will start those services here, on 127.0.0.1.)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== cargo test --all-features (unit, scenario, negative and doc tests)"
cargo test --all-features
