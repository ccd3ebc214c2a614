#!/usr/bin/env bash
# Installs the local PDS (pinned by package-lock.json) into scripts/pds/node_modules when
# absent. better-sqlite3 compiles from source (its prebuilt download is not reachable), so
# node-gyp is pointed at the system Node headers: it must never download them.
# Needs node 20 + npm, g++, make, python3.
set -euo pipefail
cd "$(dirname "$0")"
export npm_config_nodedir=${npm_config_nodedir:-/usr}
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
if [ -f node_modules/better-sqlite3/build/Release/better_sqlite3.node ] \
  && [ -d node_modules/@atproto/pds ] && [ -d node_modules/@did-plc/server ]; then
  exit 0
fi
for tool in node npm g++ make python3; do
  command -v "$tool" >/dev/null || { echo "scripts/pds/install.sh: $tool is required" >&2; exit 1; }
done
t=$(date +%s)
echo "== installing the local PDS (npm ci, compiles better-sqlite3; about 90 s)"
npm ci --loglevel=error > npm-install.log 2>&1 || { tail -40 npm-install.log >&2; exit 1; }
if [ ! -f node_modules/better-sqlite3/build/Release/better_sqlite3.node ]; then
  npm rebuild better-sqlite3 --foreground-scripts >> npm-install.log 2>&1
fi
node -e "new (require('better-sqlite3'))(':memory:')"
echo "== local PDS installed in $(( $(date +%s) - t )) s"
