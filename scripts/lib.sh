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

# Pinned tool versions.
TEMPORAL_CLI_VERSION="${TEMPORAL_CLI_VERSION:-1.5.1}"

# Defaults shared with src/config/index.ts (keep in step with .env.example).
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

# apt-get install packages non-interactively (CI has no stdin). Runs `apt-get update` once if the install fails.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* yourself"
  log "installing $* with apt-get (one-off)"
  export DEBIAN_FRONTEND=noninteractive
  if ! as_root apt-get install -y -q --no-install-recommends "$@" >"$LOGS/apt-$1.log" 2>&1; then
    as_root apt-get update -q >>"$LOGS/apt-$1.log" 2>&1 || true
    as_root apt-get install -y -q --no-install-recommends "$@" >>"$LOGS/apt-$1.log" 2>&1 ||
      die "apt-get install $* failed; see $LOGS/apt-$1.log"
  fi
}

# pid file helpers: a server is "ours" only while its pid file names a live process.
pid_alive() {
  local f="$1"
  [[ -s "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null
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

mkdir -p "$TOOLS" "$DATA" "$LOGS" "$RUN"
