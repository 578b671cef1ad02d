#!/usr/bin/env bash
# PostgreSQL for the local stack: `postgres.sh [up|down|status]` (default up).
#
# up: installs PostgreSQL with apt-get if missing, creates a project-local cluster in $DATA/postgres
#     (owned by the `postgres` OS user when we are root: the server refuses to run as root), starts it on
#     127.0.0.1:5432, ensures role `stockautotrader` (CREATEDB: tests create a database per file) and database
#     `stockautotrader`, then applies migrations (src/cli/migrate.ts).
#     If DATABASE_URL points at a server that already answers and is not our cluster, nothing is started:
#     migrations are applied to it and that is all.
# down: stops the cluster only if it is ours and running.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
LOG_TAG=postgres

ACTION="${1:-up}"
PG_PORT_DEFAULT=5432
DEFAULT_URL="postgres://stockautotrader:$PG_PASS_DEFAULT@127.0.0.1:$PG_PORT_DEFAULT/stockautotrader"
URL="${DATABASE_URL:-$DEFAULT_URL}"

# host and port from the URL (postgres://user:pass@host:port/db?...)
if [[ "$URL" =~ ^postgres(ql)?://([^@/]*@)?(\[[^]]+\]|[^:/?]+)(:([0-9]+))?(/([^?]*))? ]]; then
  PG_HOST="${BASH_REMATCH[3]}"
  PG_PORT="${BASH_REMATCH[5]:-5432}"
  PG_DB="${BASH_REMATCH[7]:-stockautotrader}"
else
  die "DATABASE_URL is not a postgres:// URL"
fi
PG_HOST="${PG_HOST#[}"
PG_HOST="${PG_HOST%]}"

PG_DIR="${PG_DIR:-$DATA/postgres}"
SOCK_DIR="$DATA/run/postgres"
PG_LOG="$LOGS/postgres.log"

pg_bin() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [[ -z "$d" ]] && command -v pg_ctl >/dev/null 2>&1; then d="$(dirname "$(command -v pg_ctl)")"; fi
  echo "$d"
}

# Run a command as the cluster's OS user (postgres when we are root, ourselves otherwise).
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

ours_running() {
  local bin
  bin="$(pg_bin)"
  [[ -n "$bin" && -f "$PG_DIR/postmaster.pid" ]] && as_pg "$bin/pg_ctl" -D "$PG_DIR" status >/dev/null 2>&1
}

psql_admin() {
  as_pg "$(pg_bin)/psql" -h "$SOCK_DIR" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt "$@"
}

migrate() {
  local t0
  npm_ready_wait
  t0=$(now_ms)
  (cd "$ROOT" && DATABASE_URL="$URL" "$ROOT/node_modules/.bin/tsx" src/cli/migrate.ts) ||
    die "migrations failed against $PG_HOST:$PG_PORT/$PG_DB"
  log "migrations checked in $(elapsed_s "$t0" "$(now_ms)")s"
}

up() {
  local t0
  t0=$(now_ms)
  if ! ours_running && port_open "$PG_HOST" "$PG_PORT"; then
    log "using the PostgreSQL server already listening on $PG_HOST:$PG_PORT (not started by this project)"
    migrate
    return 0
  fi
  case "$PG_HOST" in 127.0.0.1 | localhost | ::1) ;; *) die "DATABASE_URL host $PG_HOST does not answer on port $PG_PORT" ;; esac

  local bin
  bin="$(pg_bin)"
  if [[ -z "$bin" || ! -x "$bin/initdb" ]]; then
    apt_install postgresql
    bin="$(pg_bin)"
  fi
  [[ -x "$bin/initdb" ]] || die "no initdb found after installing postgresql"

  if [[ $(id -u) -eq 0 ]] && ! runuser -u postgres -- test -x "$(dirname "$PG_DIR")"; then
    die "the postgres OS user cannot reach $(dirname "$PG_DIR"); set PG_DIR to a directory it can use"
  fi
  mkdir -p "$PG_DIR" "$SOCK_DIR"
  if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$PG_DIR" "$SOCK_DIR"; fi
  chmod 700 "$PG_DIR"

  local started=no
  if ! ours_running; then
    if [[ ! -s "$PG_DIR/PG_VERSION" ]]; then
      log "initialising cluster in $PG_DIR"
      as_pg "$bin/initdb" -D "$PG_DIR" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >"$LOGS/postgres-initdb.log" 2>&1 ||
        die "initdb failed; see $LOGS/postgres-initdb.log"
      # Local dev/test tuning: room for per-test-file pools; everything else stays default (durable).
      cat >>"$PG_DIR/postgresql.conf" <<CONF

# --- stockautotrader local stack (scripts/provision/postgres.sh) ---
max_connections = 200
shared_buffers = 128MB
CONF
    fi
    rm -f "$PG_DIR/postmaster.pid" # stale after a killed session (pg_ctl status said not running)
    touch "$PG_LOG"
    if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$PG_LOG"; fi
    local ts
    ts=$(now_ms)
    as_pg "$bin/pg_ctl" -D "$PG_DIR" -l "$PG_LOG" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $SOCK_DIR ${PG_EXTRA_OPTS:-}" start >/dev/null ||
      die "PostgreSQL did not start; see $PG_LOG"
    wait_for_port 127.0.0.1 "$PG_PORT" 30 || die "PostgreSQL is not listening on 127.0.0.1:$PG_PORT; see $PG_LOG"
    log "PostgreSQL started in $(elapsed_s "$ts" "$(now_ms)")s (127.0.0.1:$PG_PORT, data $PG_DIR)"
    started=yes
  else
    log "PostgreSQL already running (ours, 127.0.0.1:$PG_PORT)"
  fi

  # Role and database (idempotent). The password comes from the URL, default stockautotrader-local.
  local user pass
  user="stockautotrader"
  pass="$PG_PASS_DEFAULT"
  if [[ "$URL" =~ ^postgres(ql)?://([^:@/]+)(:([^@/]*))?@ ]]; then
    user="${BASH_REMATCH[2]}"
    pass="${BASH_REMATCH[4]:-$pass}"
  fi
  psql_admin -v u="$user" -v p="$pass" -v db="$PG_DB" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'u', :'p')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'u', :'p') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'u')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
  migrate
  log "PostgreSQL ready in $(elapsed_s "$t0" "$(now_ms)")s ($([[ $started == yes ]] && echo started || echo already running))"
}

down() {
  if ours_running; then
    log "stopping PostgreSQL"
    as_pg "$(pg_bin)/pg_ctl" -D "$PG_DIR" -m fast -w -t 60 stop >/dev/null || warn "pg_ctl stop failed"
  else
    log "PostgreSQL: not running (or not ours); nothing to stop"
  fi
}

status() {
  if ours_running; then echo "postgres: running (ours) 127.0.0.1:$PG_PORT"
  elif port_open "$PG_HOST" "$PG_PORT"; then echo "postgres: external $PG_HOST:$PG_PORT"
  else echo "postgres: stopped"; fi
}

case "$ACTION" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 [up|down|status]" ;;
esac
