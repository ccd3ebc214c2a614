#!/usr/bin/env bash
# Installs the lexicon validator (@atproto/lexicon, pinned by package-lock.json) when absent.
set -euo pipefail
cd "$(dirname "$0")"
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
[ -d node_modules/@atproto/lexicon ] && exit 0
echo "== installing the lexicon validator (npm ci)"
npm ci --loglevel=error
