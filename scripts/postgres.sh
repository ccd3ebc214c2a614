#!/usr/bin/env bash
# A private PostgreSQL cluster on 127.0.0.1 for the atmls-ds tests.
#   scripts/postgres.sh start   installs PostgreSQL (apt) if missing, starts a cluster on a free
#                               port, prints its URL (postgres://atmls@127.0.0.1:PORT/postgres)
#   scripts/postgres.sh stop    stops it and deletes its data
# State lives in target/atmls-pg/ of this checkout, so checkouts do not collide.
set -euo pipefail
cd "$(dirname "$0")/.."
state_dir="$PWD/target/atmls-pg"
state="$state_dir/state"

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

start() {
  if [ -z "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null)" ]; then
    echo "installing PostgreSQL (apt)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql postgresql-client >&2
  fi
  local bin; bin="$(bindir)"
  if [ -f "$state" ]; then stop; fi
  mkdir -p "$state_dir"
  local d port
  d="$(mktemp -d /tmp/atmls-pg.XXXXXX)"
  chmod 755 "$d"
  if [ "$(id -u)" = 0 ]; then chown postgres "$d"; fi
  port=25432
  while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  as_pg "$bin/initdb" -D "$d/data" -A trust -U atmls >"$state_dir/initdb.log" 2>&1
  as_pg "$bin/pg_ctl" -D "$d/data" \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $d -c max_connections=300 -c fsync=on" \
    -l "$d/log" -w start >&2
  printf '%s %s\n' "$d" "$port" >"$state"
  echo "postgres://atmls@127.0.0.1:$port/postgres"
}

stop() {
  [ -f "$state" ] || return 0
  local d port bin
  read -r d port <"$state"
  bin="$(bindir)"
  as_pg "$bin/pg_ctl" -D "$d/data" -m fast stop >&2 || true
  rm -rf "$d" "$state"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
