#!/usr/bin/env bash
# Debian packages the build needs beyond Rust: the feature `encrypted-store` builds SQLCipher
# against the system's OpenSSL libcrypto (headers from libssl-dev, found through pkg-config).
# Installed by apt when missing; a no-op otherwise. Called by .ci/run and scripts/test.sh.
set -euo pipefail
missing=()
for p in libssl-dev pkg-config; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (apt)" >&2
    apt-get update -qq >&2
    apt-get install -y -qq "${missing[@]}" >&2
fi
