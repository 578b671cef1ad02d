#!/usr/bin/env bash
# The cluster profile's Temporal: the real Temporal server (not the dev server) on PostgreSQL persistence and
# visibility, with its Web UI.   temporal-server.sh [up|down|status|build|built]   (default up)
#
# build: `go install go.temporal.io/server/cmd/server@v$TEMPORAL_SERVER_VERSION` (1.29.1, the server CLI 1.5.1
#        embeds) and its schema tool (`cmd/tools/sql`), in one go install, into $TOOLS/go/temporal-server-<v>/
#        (~90 s alone on 2 cores the first time, ~4 min beside `npm test`, seconds once Go's build cache is warm;
#        scripts/test.sh starts it first), plus the PostgreSQL schema files from the module, so later runs need
#        neither the Go module cache nor the network. The Web UI server
#        (github.com/temporalio/ui-server/v2, $TEMPORAL_UI_SERVER_VERSION, the one the CLI embeds) likewise into
#        $TOOLS/go/temporal-ui-<v>/ unless CLUSTER_TEMPORAL_UI=off. Prints nothing on stdout.
# built: exit 0 if the server and its schema tool are built (scripts/test.sh plans a fresh machine's run by it).
# up:    build (if needed); wait for PostgreSQL (DATABASE_URL's server, the stack's); create the databases
#        `temporal` and `temporal_visibility` and set up / upgrade their schemas (idempotent: create-database
#        skips an existing database, setup-schema -v 0.0 skips a versioned one, update-schema applies only the
#        missing versions); generate the config ($DATA/temporal-cluster/config/cluster.yaml: 4 history shards,
#        all four services in one process on ports beside the dev server's, scripts/cluster/env.sh); start the
#        server (pid $RUN/temporal-server.pid, log $LOGS/temporal-server.log); wait for `operator cluster health`;
#        create the namespace and register the search attributes (idempotent); start the Web UI on :8333.
# down:  stop the server and the UI (SIGTERM, then SIGKILL after 30 s). The databases are kept.
# stop / start: the server alone, as built (no build, no UI): the cluster tier's mid-stream restart.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
. "$ROOT/scripts/cluster/env.sh"
LOG_TAG=temporal-server

ACTION="${1:-up}"
V="$TEMPORAL_SERVER_VERSION"
SRV_DIR="$TOOLS/go/temporal-server-$V"
UI_DIR="$TOOLS/go/temporal-ui-$TEMPORAL_UI_SERVER_VERSION"
BASE="$DATA/temporal-cluster"
PIDFILE="$RUN/temporal-server.pid"
UI_PIDFILE="$RUN/temporal-ui.pid"
ADDRESS="127.0.0.1:$CLUSTER_TEMPORAL_PORT"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
# Workflow histories are kept this long after a trade closes (the dev server's default is 1 day too).
RETENTION="${CLUSTER_TEMPORAL_RETENTION:-24h}"
UI_ENABLED="${CLUSTER_TEMPORAL_UI:-on}"

stack_env # DATABASE_URL of the stack's PostgreSQL
if [[ "$DATABASE_URL" =~ ^postgres(ql)?://([^:@/]+)(:([^@/]*))?@([^:/?]+)(:([0-9]+))? ]]; then
  PG_USER="${BASH_REMATCH[2]}"
  PG_PASS="${BASH_REMATCH[4]}"
  PG_HOST="${BASH_REMATCH[5]}"
  PG_PORT="${BASH_REMATCH[7]:-5432}"
else
  die "DATABASE_URL is not a postgres://user:password@host:port/db URL"
fi

# go_build DIR PKG@VERSION=BIN...: go install the packages (one module, one version) into DIR, each renamed to its
# BIN (scratch GOBIN + rename: an interrupted build never leaves half a binary). The missing ones only, in one
# go install: one action graph, so the packages they share are compiled once and their links run side by side
# (the schema tool's own go install after the server's was 2.7 s more on the first run's critical path).
go_build() {
  local dir="$1" t0 scratch build_log spec pkgs=() bins=() i
  shift
  for spec in "$@"; do
    [[ -x "$dir/${spec##*=}" ]] && continue
    pkgs+=("${spec%=*}")
    bins+=("${spec##*=}")
  done
  ((${#pkgs[@]})) || return 0
  command -v go >/dev/null 2>&1 ||
    die "the Temporal server is built with Go and no go toolchain is installed (Go >= 1.23: https://go.dev/dl/)"
  mkdir -p "$dir"
  build_log="$LOGS/$(basename "$dir")-build.log"
  t0=$(now_ms)
  log "building ${pkgs[*]} with go install (one-off; log $build_log)"
  scratch="$(mktemp -d "$dir/.build-XXXXXX")"
  # Niced: under `npm test` the first build (~165 CPU-s on a cold cache) runs beside the other tiers' tests, which
  # mostly wait on servers; at equal priority it took half the CPU from those tests and stretched them by ~100 s,
  # niced it takes the CPU they leave idle. What it costs, measured with an empty build cache (docs/operations.md):
  #  - -ldflags '-s -w': no symbol table, no DWARF in the binary (Go's own tracebacks still name every function:
  #    they read the pclntab, which stays);
  #  - -gcflags all=-dwarf=false: so the compiler does not generate the DWARF that -w then throws away: the same
  #    code, 185-190 instead of 209 CPU-s;
  #  - -gcflags all=-c=1 and GOMAXPROCS=1 for the toolchain's processes (with -p set back to one package per
  #    core): `go install` already compiles a package per core, so each compiler's own concurrency (its backend
  #    goroutines, its collector's parallel marking) only added overhead: 163-164 instead of 185-190 CPU-s, and
  #    no slower (a build's output does not depend on either; the server itself runs with its own GOMAXPROCS);
  #  - GOGC=400, a lazier collector for the compiler (memory is plentiful): 200 instead of 252 CPU-s; 1600 saves
  #    no more.
  if ! GOBIN="$scratch" GOGC=400 GOMAXPROCS=1 nice -n 10 go install -p "$(nproc)" -ldflags='-s -w' \
    '-gcflags=all=-dwarf=false -c=1' "${pkgs[@]}" \
    >"$build_log" 2>&1; then
    rm -rf "$scratch"
    die "go install ${pkgs[*]} failed after $(elapsed_s "$t0" "$(now_ms)")s: $(grep -v '^go: downloading' "$build_log" | tail -1 | cut -c1-300) (log $build_log)"
  fi
  # go install names each binary after its package's last path element (cmd/server -> server).
  for i in "${!pkgs[@]}"; do
    spec="${pkgs[$i]%@*}"
    [[ -x "$scratch/${spec##*/}" ]] || {
      rm -rf "$scratch"
      die "go install ${pkgs[$i]} left no ${spec##*/} binary (log $build_log)"
    }
  done
  for i in "${!pkgs[@]}"; do
    spec="${pkgs[$i]%@*}"
    mv "$scratch/${spec##*/}" "$dir/${bins[$i]}"
  done
  rm -rf "$scratch"
  log "built ${bins[*]} in $(elapsed_s "$t0" "$(now_ms)")s"
}

built() { [[ -x "$SRV_DIR/temporal-server" && -x "$SRV_DIR/temporal-sql-tool" ]]; }

build() {
  mkdir -p "$SRV_DIR"
  exec {lock}>"$SRV_DIR/.lock"
  flock -w 1200 "$lock" || die "could not lock $SRV_DIR/.lock"
  go_build "$SRV_DIR" "go.temporal.io/server/cmd/server@v$V=temporal-server" \
    "go.temporal.io/server/cmd/tools/sql@v$V=temporal-sql-tool"
  if [[ ! -d "$SRV_DIR/schema/postgresql/v12" ]]; then
    local mod
    mod="$(go env GOMODCACHE)/go.temporal.io/server@v$V"
    [[ -d "$mod/schema/postgresql/v12" ]] || (cd "$SRV_DIR" && go mod download "go.temporal.io/server@v$V" >/dev/null 2>&1) || true
    [[ -d "$mod/schema/postgresql/v12" ]] || die "the schema files of server v$V are not in $mod"
    mkdir -p "$SRV_DIR/schema/postgresql"
    cp -r "$mod/schema/postgresql/v12" "$SRV_DIR/schema/postgresql/"
    chmod -R u+w "$SRV_DIR/schema"
  fi
  flock -u "$lock"
  if [[ $UI_ENABLED != off ]]; then
    mkdir -p "$UI_DIR"
    exec {uilock}>"$UI_DIR/.lock"
    flock -w 1200 "$uilock" || die "could not lock $UI_DIR/.lock"
    # The UI is a convenience: a failed build is reported, the server runs without it.
    (go_build "$UI_DIR" "github.com/temporalio/ui-server/v2/cmd/server@v$TEMPORAL_UI_SERVER_VERSION=temporal-ui") ||
      warn "no Web UI for the cluster profile (the build failed; the server does not need it)"
    flock -u "$uilock"
  fi
}

sql_tool() {
  "$SRV_DIR/temporal-sql-tool" --plugin postgres12 --endpoint "$PG_HOST" --port "$PG_PORT" \
    --user "$PG_USER" --password "$PG_PASS" "$@"
}

# Create and set up / upgrade one database (each step is idempotent, so this runs on every `up`).
schema() {
  local db="$1" dir="$2" slog="$LOGS/temporal-server-schema.log"
  {
    sql_tool --database "$db" create-database &&
      sql_tool --database "$db" setup-schema -v 0.0 &&
      sql_tool --database "$db" update-schema -d "$SRV_DIR/schema/postgresql/v12/$dir/versioned"
  } >>"$slog" 2>&1 || die "schema set-up of $db failed; see $slog"
}

write_config() {
  mkdir -p "$BASE/config"
  # Credentials stay in this git-ignored, owner-only file (the same local password as DATABASE_URL).
  umask 077
  ds() {
    cat <<YAML
      sql:
        pluginName: postgres12
        databaseName: "$1"
        connectAddr: "$PG_HOST:$PG_PORT"
        connectProtocol: tcp
        user: "$PG_USER"
        password: "$PG_PASS"
        maxConns: $2
        maxIdleConns: $2
        maxConnLifetime: 1h
YAML
  }
  cat >"$BASE/config/cluster.yaml" <<YAML
# Generated by scripts/provision/temporal-server.sh from the module's config/development-postgres12.yaml.
# One process runs all four services here; docs/scaling.md shows how they split over machines.
log:
  stdout: true
  level: warn
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  # Fixed for the life of the cluster (changing it needs a new cluster): 4 on one machine, 512+ in production.
  numHistoryShards: $CLUSTER_TEMPORAL_SHARDS
  datastores:
    postgres-default:
$(ds "$CLUSTER_TEMPORAL_DB" 20)
    postgres-visibility:
$(ds "$CLUSTER_TEMPORAL_VISIBILITY_DB" 5)
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: "127.0.0.1:$CLUSTER_TEMPORAL_METRICS_PORT"
services:
  frontend:
    rpc:
      grpcPort: $CLUSTER_TEMPORAL_PORT
      membershipPort: $((CLUSTER_TEMPORAL_PORT - 300))
      httpPort: $((CLUSTER_TEMPORAL_PORT + 10))
      bindOnLocalHost: true
  history:
    rpc:
      grpcPort: $((CLUSTER_TEMPORAL_PORT + 1))
      membershipPort: $((CLUSTER_TEMPORAL_PORT - 299))
      bindOnLocalHost: true
  matching:
    rpc:
      grpcPort: $((CLUSTER_TEMPORAL_PORT + 2))
      membershipPort: $((CLUSTER_TEMPORAL_PORT - 298))
      bindOnLocalHost: true
  worker:
    rpc:
      grpcPort: $((CLUSTER_TEMPORAL_PORT + 6))
      membershipPort: $((CLUSTER_TEMPORAL_PORT - 294))
      bindOnLocalHost: true
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:$CLUSTER_TEMPORAL_PORT"
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: "$BASE/config/dynamicconfig.yaml"
  pollInterval: 10s
YAML
  # The dev server's settings (scripts/provision/temporal-dev.sh), so both profiles are measured alike.
  cat >"$BASE/config/dynamicconfig.yaml" <<YAML
# Generated by scripts/provision/temporal-server.sh
frontend.enableServerVersionCheck:
  - value: false
frontend.enableUpdateWorkflowExecution:
  - value: true
frontend.enableUpdateWorkflowExecutionAsyncAccepted:
  - value: true
system.enableActivityEagerExecution:
  - value: true
YAML
  mkdir -p "$BASE/ui-config"
  cat >"$BASE/ui-config/ui.yaml" <<YAML
# Generated by scripts/provision/temporal-server.sh: the Web UI of the cluster profile's server.
temporalGrpcAddress: "127.0.0.1:$CLUSTER_TEMPORAL_PORT"
host: 127.0.0.1
port: $CLUSTER_TEMPORAL_UI_PORT
enableUi: true
defaultNamespace: $NAMESPACE
notifyOnNewVersion: false
hideLogs: true
cors:
  cookieInsecure: true
  allowOrigins:
    - "http://localhost:$CLUSTER_TEMPORAL_UI_PORT"
    - "http://127.0.0.1:$CLUSTER_TEMPORAL_UI_PORT"
YAML
  umask 022
}

ours_running() { pid_alive "$PIDFILE" temporal-server; }
ui_running() { pid_alive "$UI_PIDFILE" temporal-ui; }

healthy() { "$1" operator cluster health --address "$ADDRESS" --command-timeout 5s >/dev/null 2>&1; }

ensure_namespace() {
  local cli="$1" i
  if ! "$cli" operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1; then
    log "creating namespace $NAMESPACE (retention $RETENTION)"
    "$cli" operator namespace create --address "$ADDRESS" --namespace "$NAMESPACE" --retention "$RETENTION" \
      >/dev/null 2>&1 || true
  fi
  # A new namespace reaches the frontend's namespace cache within ~10 s (`describe` reads the database and succeeds
  # at once); until then starts and search-attribute calls fail "Namespace default is not found".
  for ((i = 0; i < 120; i++)); do
    "$cli" operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  die "namespace $NAMESPACE did not become available on $ADDRESS"
}

start_ui() {
  [[ $UI_ENABLED != off && -x "$UI_DIR/temporal-ui" ]] || return 0
  if ui_running; then return 0; fi
  port_open 127.0.0.1 "$CLUSTER_TEMPORAL_UI_PORT" && {
    warn "port $CLUSTER_TEMPORAL_UI_PORT is taken; the cluster profile's Web UI is not started"
    return 0
  }
  nohup "$UI_DIR/temporal-ui" --root "$BASE" --config ui-config --env ui start </dev/null >>"$LOGS/temporal-ui.log" 2>&1 &
  echo $! >"$UI_PIDFILE"
  wait_for_port 127.0.0.1 "$CLUSTER_TEMPORAL_UI_PORT" 30 "$(cat "$UI_PIDFILE")" ||
    warn "the Web UI did not start; see $LOGS/temporal-ui.log"
}

up() {
  local t0 cli started=no
  t0=$(now_ms)
  if [[ $ACTION == start ]]; then
    built || die "not built yet: run $0 up (or build)"
    UI_ENABLED=off
  else
    build
  fi
  cli="$(bash "$ROOT/scripts/provision/temporal-cli.sh")"
  if ! ours_running; then
    port_open 127.0.0.1 "$CLUSTER_TEMPORAL_PORT" &&
      die "port $CLUSTER_TEMPORAL_PORT is taken by something that is not this profile's Temporal server"
    # stack-up.sh starts PostgreSQL in parallel with us.
    wait_for_port "$PG_HOST" "$PG_PORT" 180 || die "PostgreSQL ($PG_HOST:$PG_PORT) is not up"
    local ts
    ts=$(now_ms)
    schema "$CLUSTER_TEMPORAL_DB" temporal
    schema "$CLUSTER_TEMPORAL_VISIBILITY_DB" visibility
    log "schemas of $CLUSTER_TEMPORAL_DB and $CLUSTER_TEMPORAL_VISIBILITY_DB up to date in $(elapsed_s "$ts" "$(now_ms)")s"
    write_config
    ts=$(now_ms)
    nohup "$SRV_DIR/temporal-server" --root "$BASE" --config config --env cluster --allow-no-auth start \
      </dev/null >>"$LOGS/temporal-server.log" 2>&1 &
    echo $! >"$PIDFILE"
    local i
    for ((i = 0; i < 240; i++)); do
      healthy "$cli" && break
      if ! ours_running; then
        tail -20 "$LOGS/temporal-server.log" >&2 || true
        die "the Temporal server exited; see $LOGS/temporal-server.log"
      fi
      sleep 0.5
    done
    ((i < 240)) || die "the Temporal server is not healthy after 120 s; see $LOGS/temporal-server.log"
    log "Temporal server v$V started in $(elapsed_s "$ts" "$(now_ms)")s ($ADDRESS, PostgreSQL $PG_HOST:$PG_PORT/$CLUSTER_TEMPORAL_DB, $CLUSTER_TEMPORAL_SHARDS shards)"
    started=yes
  else
    healthy "$cli" || die "our Temporal server (pid $(cat "$PIDFILE")) is running but not healthy"
    log "Temporal server already running (ours, $ADDRESS)"
  fi
  ensure_namespace "$cli"
  ensure_search_attributes "$cli" "$ADDRESS" "$NAMESPACE"
  start_ui
  log "Temporal server ready in $(elapsed_s "$t0" "$(now_ms)")s ($([[ $started == yes ]] && echo started || echo already running))$(ui_running && echo "; Web UI http://localhost:$CLUSTER_TEMPORAL_UI_PORT")"
}

down() {
  # Only a live UI of ours (the pid file's process is temporal-ui): never a recycled pid.
  if [[ $ACTION != stop ]] && ui_running; then stop_pidfile "$UI_PIDFILE" "Temporal Web UI" 10; fi
  ui_running || rm -f "$UI_PIDFILE"
  if ours_running; then
    stop_pidfile "$PIDFILE" "Temporal server" 30
  else
    rm -f "$PIDFILE"
    log "Temporal server: not running (or not ours); nothing to stop"
  fi
}

status() {
  if ours_running; then echo "temporal-server: running (ours) $ADDRESS$(ui_running && echo ", UI http://localhost:$CLUSTER_TEMPORAL_UI_PORT")"
  elif port_open 127.0.0.1 "$CLUSTER_TEMPORAL_PORT"; then echo "temporal-server: external $ADDRESS"
  else echo "temporal-server: stopped"; fi
}

case "$ACTION" in
  up | start) up ;;
  down | stop) down ;;
  status) status ;;
  build) build ;;
  built) built ;;
  *) die "usage: $0 [up|down|status|build|built|stop|start]" ;;
esac
