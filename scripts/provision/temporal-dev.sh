#!/usr/bin/env bash
# Temporal dev server for the local stack: `temporal-dev.sh [up|down|status]` (default up).
#
# up: runs `temporal server start-dev` (CLI from scripts/provision/temporal-cli.sh: 1.9.1 from the PyPI wheel, or
#     1.5.1 built by the go install fallback; both accept every flag below) on 127.0.0.1:7233 with the
#     Web UI on :8233 and state in $DATA/temporal/temporal.sqlite (survives restarts), in the background
#     (nohup, log $DATA/logs/temporal.log, pid $DATA/run/temporal.pid), waits for `operator cluster health`,
#     then makes sure the search attributes the trade workflows use exist (idempotent).
#     If TEMPORAL_ADDRESS already answers and is not our server, nothing is started; the search attributes
#     are still checked/created there.
# down: stops our server only.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
LOG_TAG=temporal

ACTION="${1:-up}"
ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:7233}"
split_hostport "$ADDRESS" T_HOST T_PORT
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
UI_PORT="${TEMPORAL_UI_PORT:-8233}"
METRICS_PORT="${TEMPORAL_METRICS_PORT:-8000}"
PIDFILE="$RUN/temporal.pid"
DB_DIR="$DATA/temporal"
SEARCH_ATTRIBUTES=("${TEMPORAL_SEARCH_ATTRIBUTES[@]}")

ours_running() { pid_alive "$PIDFILE" start-dev; }

# The CLI version that created the store, written when the store is created.
STORE_VERSION="$DB_DIR/temporal.sqlite.created-by"

# `temporal server start-dev` creates the SQLite schema of its own server version for a new store but does not
# migrate an existing one: a store made by an older server (the go-install route's CLI 1.5.1, or before the
# upgrade to 1.9.1) lacks newer tables, and what needs them fails at run time (schedules: "no such table:
# current_chasm_executions"). Say so, with the way out; never move a store with open trades in it unasked.
warn_if_store_from_another_server() {
  local cli=$1 have want
  STORE_IS_NEW=no
  [[ -f $DB_DIR/temporal.sqlite ]] || { STORE_IS_NEW=yes; return 0; }
  want=$("$cli" --version)
  have=$(cat "$STORE_VERSION" 2>/dev/null || echo "an older server (before this check)")
  [[ $have == "$want" ]] && return 0
  log "WARNING: the dev server's store $DB_DIR/temporal.sqlite was created by $have, not by this CLI ($want)."
  log "WARNING: start-dev does not migrate a SQLite store: features newer than the store fail (e.g. schedules)."
  log "WARNING: for a fresh store, once no trade is open: npm run stack:down && mv $DB_DIR $DB_DIR.old && npm run stack:up"
  log "WARNING: (the ledger is in PostgreSQL and is kept; only the Temporal histories stay behind in $DB_DIR.old)"
}

up() {
  local t0 cli
  t0=$(now_ms)
  cli="$(bash "$ROOT/scripts/provision/temporal-cli.sh")"
  if ! ours_running && port_open "$T_HOST" "$T_PORT"; then
    log "using the Temporal server already listening on $ADDRESS (not started by this project)"
    "$cli" operator cluster health --address "$ADDRESS" --command-timeout 10s >/dev/null ||
      die "$ADDRESS accepts connections but is not a healthy Temporal frontend"
    ensure_search_attributes "$cli" "$ADDRESS" "$NAMESPACE"
    return 0
  fi
  case "$T_HOST" in 127.0.0.1 | localhost) ;; *) die "TEMPORAL_ADDRESS $ADDRESS does not answer" ;; esac

  local started=no
  if ! ours_running; then
    mkdir -p "$DB_DIR"
    warn_if_store_from_another_server "$cli"
    local args=(
      server start-dev
      --ip 127.0.0.1 --port "$T_PORT" --ui-port "$UI_PORT"
      --namespace "$NAMESPACE"
      --db-filename "$DB_DIR/temporal.sqlite"
      --sqlite-pragma journal_mode=WAL --sqlite-pragma synchronous=NORMAL
      --log-level warn --metrics-port "$METRICS_PORT" # server metrics for Prometheus (docs/monitoring.md)
      # Same dynamic config the SDK's test harness uses; version check off (it phones home).
      --dynamic-config-value frontend.enableServerVersionCheck=false
      --dynamic-config-value frontend.enableUpdateWorkflowExecution=true
      --dynamic-config-value frontend.enableUpdateWorkflowExecutionAsyncAccepted=true
      # Performance (docs/benchmarks.md, issue 12). Eager activity execution: an activity scheduled by a
      # workflow task is handed straight back to the worker that completed it (still recorded, timed out and
      # retried the same way), instead of a round trip through matching: about half the signal -> order latency.
      --dynamic-config-value system.enableActivityEagerExecution=true
      # The dev server otherwise re-reads cluster metadata and the namespace on every search-attribute read:
      # half of all SQLite calls per trade. Caveat: a search attribute registered while the server runs
      # (`temporal operator search-attribute create`) becomes usable after the server's next periodic cache
      # refresh instead of at once; ours are registered at start (--search-attribute below).
      --dynamic-config-value system.forceSearchAttributesCacheRefreshOnRead=false
    )
    # CLI >= 1.6 (the wheel route's 1.9.1): the Web UI would otherwise fetch a newsfeed from the internet.
    if "$cli" server start-dev --help 2>&1 | grep -q -- '--ui-disable-news-fetch'; then
      args+=(--ui-disable-news-fetch)
    fi
    local sa
    for sa in "${SEARCH_ATTRIBUTES[@]}"; do args+=(--search-attribute "$sa"); done
    local ts
    ts=$(now_ms)
    nohup "$cli" "${args[@]}" </dev/null >>"$LOGS/temporal.log" 2>&1 &
    echo $! >"$PIDFILE"
    if ! wait_for_port 127.0.0.1 "$T_PORT" 60 "$(cat "$PIDFILE")"; then
      tail -20 "$LOGS/temporal.log" >&2 || true
      rm -f "$PIDFILE"
      die "Temporal dev server did not start; see $LOGS/temporal.log"
    fi
    local i
    for ((i = 0; i < 60; i++)); do
      "$cli" operator cluster health --address "$ADDRESS" --command-timeout 5s >/dev/null 2>&1 && break
      sleep 0.5
    done
    ((i < 60)) || die "Temporal dev server is listening but not healthy; see $LOGS/temporal.log"
    [[ $STORE_IS_NEW == no ]] || "$cli" --version >"$STORE_VERSION"
    log "Temporal dev server started in $(elapsed_s "$ts" "$(now_ms)")s ($ADDRESS, db $DB_DIR/temporal.sqlite, $("$cli" --version | sed 's/^temporal version //'))"
    started=yes
  else
    log "Temporal dev server already running (ours, $ADDRESS)"
  fi
  ensure_search_attributes "$cli" "$ADDRESS" "$NAMESPACE"
  log "Temporal ready in $(elapsed_s "$t0" "$(now_ms)")s ($([[ $started == yes ]] && echo started || echo already running)); Web UI http://localhost:$UI_PORT"
}

down() {
  if ours_running; then
    stop_pidfile "$PIDFILE" "Temporal dev server" 30
  else
    rm -f "$PIDFILE"
    log "Temporal dev server: not running (or not ours); nothing to stop"
  fi
}

status() {
  if ours_running; then echo "temporal: running (ours) $ADDRESS, UI http://localhost:$UI_PORT"
  elif port_open "$T_HOST" "$T_PORT"; then echo "temporal: external $ADDRESS"
  else echo "temporal: stopped"; fi
}

case "$ACTION" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 [up|down|status]" ;;
esac
