#!/usr/bin/env bash
# Creates an account on the local PDS (scripts/pds/pds-local.js) and an app password for it,
# and prints them as shell assignments for the atmls CLI:
#   eval "$(scripts/pds/account.sh alice)"   # sets ATMLS_HANDLE=alice.test, ATMLS_APP_PASSWORD=…
# PDS_URL defaults to the script's default port (http://127.0.0.1:2583). Needs curl and node.
set -euo pipefail
name=${1:?usage: scripts/pds/account.sh <name> (the handle becomes <name>.test)}
pds=${PDS_URL:-http://127.0.0.1:2583}
json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s);if(!v[process.argv[1]]){console.error(s);process.exit(1)}console.log(v[process.argv[1]])})' "$1"; }
account=$(curl -sS -X POST "$pds/xrpc/com.atproto.server.createAccount" \
  -H 'Content-Type: application/json' \
  -d "{\"handle\":\"$name.test\",\"email\":\"$name@example.invalid\",\"password\":\"$(head -c 18 /dev/urandom | base64)\"}")
access=$(printf '%s' "$account" | json accessJwt)
app=$(curl -sS -X POST "$pds/xrpc/com.atproto.server.createAppPassword" \
  -H 'Content-Type: application/json' -H "Authorization: Bearer $access" \
  -d '{"name":"atmls"}' | json password)
echo "export ATMLS_HANDLE=$name.test ATMLS_APP_PASSWORD=$app"
