#!/usr/bin/env bash
# Measure the first run and the warm run of `npm start` and `npm test` on a fresh clone, per provisioning route:
#
#   scripts/bench-first-run.sh [--route auto|fallback] [--command start|test|both] [--keep]
#   npm run bench:first-run -- --route fallback --command start
#
# For each command: `git clone` of this checkout's HEAD into a scratch dir (no node_modules, empty .tools, empty
# .data), then the command twice — first run (cold) and warm run (tools and node_modules cached, data kept, stack
# stopped in between so the servers start again) — timing each to its exit; for `npm start` also to the ledger
# summary line. Cold means: empty .tools, pip run with PIP_NO_CACHE_DIR=1 and, for the fallback route, empty
# private Go module/build caches and an empty private Maven repository (one set per command, so the second
# command's first run is as cold as the first's). NOT cold here: the npm cache (~/.npm), and
# the apt packages (postgresql, rabbitmq-server, java, maven) when already installed: this script never removes
# system packages, so their install time is not in the figures (see docs/operations.md).
#
# Everything runs on private ports with its own data (BENCH_PORT_BASE, default 27000, plus: Temporal 233/UI 234/metrics 235,
# RabbitMQ 672/673/674 as node bench<base>@localhost, PostgreSQL 432, venue 787; metrics on free ports; all must
# be free), so a stack already running on the default ports is neither used nor disturbed. Output: each run's log in the scratch dir, and a table at the end.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG_TAG=bench-first-run

route=auto
commands=(start test)
keep=no
while (($#)); do
  case "$1" in
    --route)
      route="${2:?--route needs auto|wheel|fallback}"
      shift
      ;;
    --command)
      case "${2:?--command needs start|test|both}" in
        start | test) commands=("$2") ;;
        both) commands=(start test) ;;
        *) die "--command must be start, test or both" ;;
      esac
      shift
      ;;
    --keep) keep=yes ;;
    -h | --help)
      sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
TEMPORAL_TOOLS_ROUTE="$route" tools_route >/dev/null

B="${BENCH_PORT_BASE:-27000}"
for port in $((B + 233)) $((B + 234)) $((B + 235)) $((B + 672)) $((B + 673)) $((B + 674)) $((B + 432)) $((B + 787)); do
  ! port_open 127.0.0.1 "$port" || die "port $port is in use: the benchmark needs its private ports free"
done
work="$(mktemp -d /tmp/sat-bench-first-run-XXXXXX)"
chmod 755 "$work" # the postgres OS user must reach the clone's .data/postgres
# Like CI, the clones get shared/ beside them (replay data, reference docs): SHARED_DIR, default ../shared.
shared="${SHARED_DIR:-$ROOT/../shared}"
[[ -d "$shared" ]] || die "no shared/ directory at $shared (set SHARED_DIR)"
ln -s "$(cd "$shared" && pwd)" "$work/shared"
log "scratch dir $work (route $route; commands ${commands[*]})"

bench_env() {
  local clone="$1"
  env -u TOOLS -u DATA -u ROOT -u TEMPORAL_TEST_SERVER_PATH -u TEMPORAL_CLI \
    TEMPORAL_TOOLS_ROUTE="$route" PIP_NO_CACHE_DIR=1 \
    TEMPORAL_ADDRESS=127.0.0.1:$((B + 233)) TEMPORAL_UI_PORT=$((B + 234)) TEMPORAL_METRICS_PORT=$((B + 235)) \
    RABBITMQ_PORT=$((B + 672)) RABBITMQ_MANAGEMENT_PORT=$((B + 673)) RABBITMQ_DIST_PORT=$((B + 674)) RABBITMQ_NODENAME=bench$B@localhost \
    DATABASE_URL="postgres://stockautotrader:$PG_PASS_DEFAULT@127.0.0.1:$((B + 432))/stockautotrader" \
    SIM_EXCHANGE_PORT=$((B + 787)) DATAFLOW_METRICS_PORT=0 QUANT_METRICS_PORT=0 INTAKE_METRICS_PORT=0 \
    WORKER_METRICS_PORT=0 EXCHANGE_SIM_METRICS_PORT=0 WORKER_SDK_METRICS_PORT=0 \
    GOMODCACHE="$clone.cache/go/mod" GOCACHE="$clone.cache/go/build" GOFLAGS=-trimpath \
    MAVEN_OPTS="-Dmaven.repo.local=$clone.cache/m2" \
    "${@:2}"
}

# run_timed LABEL CLONE CMD...: runs CMD in CLONE, prints "seconds-to-exit seconds-to-summary exit-code".
run_timed() {
  local label="$1" clone="$2" t0 rc=0 summary_s=-
  shift 2
  t0=$(now_ms)
  (cd "$clone" && bench_env "$clone" "$@") >"$work/$label.log" 2>&1 </dev/null || rc=$?
  local total
  total="$(elapsed_s "$t0" "$(now_ms)")"
  # The pipeline prints "summary after N s" when the ledger summary is complete; its log lines carry no wall
  # clock, so the time to the summary is the exit time minus the stop after it (a few hundred ms): use the exit.
  if grep -q 'summary after' "$work/$label.log"; then summary_s="$total"; fi
  echo "$total $summary_s $rc"
}

declare -A results
for c in "${commands[@]}"; do
  clone="$work/clone-$c"
  git clone -q "$ROOT" "$clone"
  case "$c" in
    start) cmd=(npm start) ;;
    test) cmd=(npm test) ;;
  esac
  for phase in first warm; do
    log "npm $c, $phase run (route $route) …"
    read -r total summary rc < <(run_timed "$c-$phase" "$clone" "${cmd[@]}")
    results["$c-$phase"]="$total $summary $rc"
    log "npm $c, $phase run: ${total}s, exit $rc (log $work/$c-$phase.log)"
    grep -E '\[provision\] (provisioned in|.* done in)|stack ready in|after npm start|summary after|^tests: |total [0-9.]+s \(exit' "$work/$c-$phase.log" |
      sed 's/^/    /' >&2 || true
    (cd "$clone" && bench_env "$clone" bash scripts/stack-down.sh) >>"$work/$c-stack-down.log" 2>&1 || true
  done
done

printf '\n| route | command | first run (s) | warm run (s) | exit codes |\n|---|---|---|---|---|\n'
for c in "${commands[@]}"; do
  read -r f_total _ f_rc <<<"${results[$c-first]}"
  read -r w_total _ w_rc <<<"${results[$c-warm]}"
  printf '| %s | npm %s | %s | %s | %s, %s |\n' "$route" "$c" "$f_total" "$w_total" "$f_rc" "$w_rc"
done
if [[ $keep == no ]]; then
  chmod -R u+w "$work"/clone-*.cache 2>/dev/null || true
  rm -rf "$work"/clone-*
  log "run logs kept in $work (clones and caches removed; --keep keeps them)"
fi
